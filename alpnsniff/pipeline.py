"""The flow of a packet: capture -> decode -> flow table -> TLS / QUIC -> records.

:class:`Dissector` takes ``(ts_ns, linktype, data)`` tuples from any capture source and
yields :class:`~alpnsniff.records.Handshake` records as they complete; its state lives in one
:class:`~alpnsniff.flows.table.FlowTable`. :class:`CaptureRun` is the one way a capture is
read to its end — by the CLI, by ``alpnsniff.read`` / ``analyze`` and by each process of a
parallel run — so every count of the run is the same whichever way it is read.

The hot path is a peek and a look-up: for Ethernet, Linux SLL/SLL2 and raw IP frames carrying
unfragmented IPv4/IPv6 TCP or UDP, the flow key is sliced straight out of the frame and looked
up among the remembered keys of finished connections; a hit costs nothing more. Everything
else goes through the full decoder (:mod:`alpnsniff.net`) and the flow table.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from .capture import CaptureStats, Source, open_capture
from .capture.batch import FILTERED_OUT, PacketBatch, batch_of
from .capture.dedup import Dedup
from .flows.answers import OfferLedger
from .flows.table import (
    IDLE_TIMEOUT_NS,
    MAX_ERRORS_KEPT,
    MISSING,
    FlowTable,
    describe_error,
    shard_of,
)
from .flows.tcp import TcpFlow
from .flows.transports import UDP_FIRST_BYTES, recognise_udp, recognised_not_dissected
from .keys.keylog import KeyLog
from .keys.store import KeyStore
from .net.decode import PacketDecoder
from .net.segment import Segment
from .net.tunnels import TUNNEL_UDP_PORTS  # (the hot loop hands their datagrams to the decoder)
from .records import Handshake

SYN: Final = 0x02
RST: Final = 0x04
ACK: Final = 0x10

_IPV4: Final = 0x0800
_IPV6: Final = 0x86DD
# Offset of the IP header for link types whose header has a fixed size and names its payload.
# linktype -> (ip offset, offset of the 2-byte protocol field or -1 for "IP by version")
_FIXED_LINK = {1: (14, 12), 113: (16, 14), 276: (20, 0), 101: (0, -1), 228: (0, -1), 229: (0, -1)}

Batches = Iterator[PacketBatch]
# A capture filter: (linktype, frame bytes) -> keep the frame?
FrameFilter = Callable[[int, bytes], bool]


@dataclass
class RunResult:
    """What one capture gave: its records in frame order and every count of the run."""

    name: str
    handshakes: list[Handshake]
    stats: Counter[str]
    capture: CaptureStats | None = None
    errors: list[str] = field(default_factory=list)


class Dissector:
    """Packets in, handshake records out. One per capture (frame numbers restart)."""

    def __init__(
        self,
        shard: int = 0,
        shards: int = 1,
        keys: KeyStore | None = None,
        frame_filter: FrameFilter | None = None,
        idle_timeout_ns: int = IDLE_TIMEOUT_NS,
        dedup: Dedup | None = None,
    ) -> None:
        # Sharding: with ``shards`` > 1 this dissector keeps only the flows whose
        # ``flows.table.shard_of`` is ``shard`` (the hot loop computes the same inline, from
        # the ports' low bytes); packets that belong to no flow (decoder skips) are counted
        # by shard 0 alone.
        if not 0 <= shard < shards:
            raise ValueError(f"shard {shard} of {shards}")
        self.shard = shard
        self.shards = shards
        self.keys = keys  # secrets for the decryption stage (None: none given, no cost)
        # a capture filter (BPF): frames it rejects are counted and numbered, never looked at
        self.frame_filter = frame_filter
        # the duplicate stage (mirror copies of one packet): what it marks is counted, never
        # looked at, and keeps its frame number
        self.dedup = dedup
        self.stats: Counter[str] = Counter()
        self.decoder = PacketDecoder()
        # what the decoder counted (tunnels, shims, fragments) for this shard's packets
        self.decoder_stats: Counter[str] = Counter()
        self.table = FlowTable(self.stats, idle_timeout_ns=idle_timeout_ns)
        # the frames of the ClientHellos still waiting: how far the records can leave in
        # frame order (CaptureRun.records)
        self.ledger = OfferLedger()
        self._tcp_known = self.table.remembered[6]
        self._udp_known = self.table.remembered[17]
        self.frame = 0
        self.errors: list[str] = []  # internal errors (the flows' errors are in the table's)
        # a sharded run: the packet being handled was found to be this shard's (an exception
        # before that is counted by shard 0 alone, like every packet of no flow)
        self._owned = False

    # ------------------------------------------------------------------ hot loop
    def run(self, packets: Iterable[tuple[int, int, bytes]]) -> Iterator[Handshake]:
        """Records as they complete, from ``(ts_ns, linktype, data)`` packets: each is
        dissected before the next is asked for (a batch of one), for a caller that feeds
        packets one by one. A capture source's batches go to :meth:`run_batches`."""
        return self.run_batches(batch_of((packet,)) for packet in packets)

    def run_batches(self, batches: Iterable[PacketBatch]) -> Iterator[Handshake]:
        """Records as they complete. Long because it is the hot loop, and written for what
        mypyc compiles well (the compiled build runs it): every packet of a connection whose
        facts are known costs a few byte reads straight out of the batch's buffer, one slice
        for the key and two dict look-ups, with no call and no copy of the packet (it is
        sliced out only for the slow path). No exception of one packet ends the run: it is
        counted as ``internal_error`` and the first messages are kept."""
        stats = self.stats
        tcp_known = self.table.remembered[6]
        udp_known = self.table.remembered[17]
        young = tcp_known.young
        old = tcp_known.old
        uyoung = udp_known.young
        uold = udp_known.old
        udp_first = UDP_FIRST_BYTES
        fixed_link = _FIXED_LINK
        tunnel_ports = TUNNEL_UDP_PORTS
        missing = MISSING
        frame = self.frame
        fast_skipped = 0
        empty_skipped = 0
        udp_skipped = 0
        other_shard = 0
        shard = self.shard
        shards = self.shards
        slow = self._slow
        keep = self.frame_filter
        dedup = self.dedup
        try:
            for batch in batches:
                if batch.now_ns:  # a live source's clock: flows idle by then leave
                    self.frame = frame
                    yield from self.tick(batch.now_ns)
                if keep is not None:
                    _drop_filtered(batch, keep)
                if dedup is not None:
                    dedup.filter(batch)
                buf = batch.buf
                starts = batch.starts
                lengths = batch.lengths
                linktypes = batch.linktypes
                for i in range(len(starts)):
                    frame += 1
                    at = starts[i]
                    n = lengths[i]
                    linktype = linktypes[i]
                    try:
                        link = fixed_link.get(linktype)
                        if link is not None:
                            # offsets into the frame: buf[at + x] is the frame's byte x, read
                            # only where x < n (past n lies the next packet)
                            ip, proto_at = link
                            ipa = at + ip
                            if proto_at >= 0:
                                version = 0
                                if n >= proto_at + 2:
                                    ethertype = buf[at + proto_at] << 8 | buf[at + proto_at + 1]
                                    if ethertype == _IPV4:
                                        version = 4
                                    elif ethertype == _IPV6:
                                        version = 6
                            else:
                                version = buf[ipa] >> 4 if n > ip else 0
                            if version == 4:
                                # (a frame cut inside the IPv4 header goes to the full decoder,
                                # which says how it is cut short)
                                # flags and fragment offset: none, or DF alone
                                if n >= ip + 20 and not (buf[ipa + 6] & 0xBF or buf[ipa + 7]):
                                    proto = buf[ipa + 9]
                                    l4 = ip + ((buf[ipa] & 15) << 2)
                                    l4a = at + l4
                                    if proto == 6 and n >= l4 + 14:
                                        if (
                                            shards > 1
                                            and (buf[l4a + 1] ^ buf[l4a + 3]) % shards != shard
                                        ):
                                            other_shard += 1
                                            continue
                                        key = buf[ipa + 12 : ipa + 20] + buf[l4a : l4a + 4]
                                        syn = buf[l4a + 13] & SYN
                                        if not syn and (key in young or key in old):
                                            fast_skipped += 1
                                            continue
                                        # no payload and no SYN: nothing a handshake needs
                                        if not syn and (
                                            (buf[ipa + 2] << 8 | buf[ipa + 3])
                                            <= l4 - ip + ((buf[l4a + 12] >> 4) << 2)
                                        ):
                                            empty_skipped += 1
                                            continue
                                    elif proto == 17 and n > l4 + 8:
                                        sport = buf[l4a] << 8 | buf[l4a + 1]
                                        dport = buf[l4a + 2] << 8 | buf[l4a + 3]
                                        if sport not in tunnel_ports and dport not in tunnel_ports:
                                            if (
                                                shards > 1
                                                and ((sport ^ dport) & 255) % shards != shard
                                            ):
                                                other_shard += 1
                                                continue
                                            # only a datagram that starts like a UDP transport
                                            # we dissect (a QUIC long header) can open a flow
                                            if not udp_first[buf[l4a + 8]]:
                                                udp_skipped += 1
                                                continue
                                            key = buf[ipa + 12 : ipa + 20] + buf[l4a : l4a + 4]
                                            known = uyoung.get(key, missing)
                                            if known is missing:
                                                known = uold.get(key, missing)
                                            if known is None:  # remembered as none of ours
                                                udp_skipped += 1
                                                continue
                            elif version == 6:
                                proto = buf[ipa + 6] if n > ip + 6 else -1
                                if proto == 6 and n >= ip + 54:
                                    if (
                                        shards > 1
                                        and (buf[ipa + 41] ^ buf[ipa + 43]) % shards != shard
                                    ):
                                        other_shard += 1
                                        continue
                                    key = buf[ipa + 8 : ipa + 44]
                                    syn = buf[ipa + 53] & SYN
                                    if not syn and (key in young or key in old):
                                        fast_skipped += 1
                                        continue
                                    if not syn and (
                                        (buf[ipa + 4] << 8 | buf[ipa + 5])
                                        <= (buf[ipa + 52] >> 4) << 2
                                    ):
                                        empty_skipped += 1
                                        continue
                                elif proto == 17 and n > ip + 48:
                                    sport = buf[ipa + 40] << 8 | buf[ipa + 41]
                                    dport = buf[ipa + 42] << 8 | buf[ipa + 43]
                                    if sport not in tunnel_ports and dport not in tunnel_ports:
                                        if shards > 1 and ((sport ^ dport) & 255) % shards != shard:
                                            other_shard += 1
                                            continue
                                        if not udp_first[buf[ipa + 48]]:
                                            udp_skipped += 1
                                            continue
                                        key = buf[ipa + 8 : ipa + 44]
                                        known = uyoung.get(key, missing)
                                        if known is missing:
                                            known = uold.get(key, missing)
                                        if known is None:
                                            udp_skipped += 1
                                            continue
                        self.frame = frame
                        interfaces = batch.interfaces
                        records = slow(
                            batch.stamps[i],
                            linktype,
                            buf[at : at + n],
                            frame,
                            interfaces.get(i, 0) if interfaces else 0,
                        )
                    except Exception as err:  # one packet never ends the run: counted, kept
                        self.decoder.stats.clear()  # what the decoder counted of it is not kept
                        if shards == 1 or shard == 0 or self._owned:
                            self._internal_error(frame, err)
                        self._owned = False
                        records = []
                    # a generation may have turned
                    young = tcp_known.young
                    old = tcp_known.old
                    uyoung = udp_known.young
                    uold = udp_known.old
                    if records:
                        yield from records
        finally:
            self.frame = frame
            stats["packets_fast_skipped"] += fast_skipped
            stats["tcp_empty_skipped"] += empty_skipped
            stats["udp_skipped"] += udp_skipped
            stats["packets_other_shard"] += other_shard

    def _internal_error(self, frame: int, err: Exception) -> None:
        self.stats["internal_error"] += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(f"frame {frame}: internal error: {describe_error(err)}")

    # ------------------------------------------------------------------ slow path
    def _slow(
        self, ts_ns: int, linktype: int, data: bytes, frame: int, interface: int
    ) -> list[Handshake]:
        stats = self.stats
        if linktype < 0:
            stats["packets_filtered_out" if linktype == FILTERED_OUT else "packets_duplicate"] += 1
            return []
        decoder_counts = self.decoder.stats
        seg = self.decoder.decode(linktype, data, ts_ns)
        if isinstance(seg, str):
            if self.shard == 0:  # a packet of no flow: shard 0 counts it
                stats["skipped_" + seg.split(":", 1)[0]] += 1
                if decoder_counts:
                    self.decoder_stats.update(decoder_counts)
            decoder_counts.clear()
            return []
        seg.interface = interface
        sport = seg.sport
        dport = seg.dport
        if self.shards > 1:
            if shard_of(sport, dport, self.shards) != self.shard:
                stats["packets_other_shard"] += 1
                decoder_counts.clear()
                return []
            # an exception from here on is this shard's to count (before, shard 0 counts it)
            self._owned = True
        if decoder_counts:
            self.decoder_stats.update(decoder_counts)
            decoder_counts.clear()
        key = seg.src + seg.dst + bytes((sport >> 8, sport & 255, dport >> 8, dport & 255))
        out = (
            self._tcp(key, seg, frame, ts_ns)
            if seg.proto == 6
            else self._udp(key, seg, frame, ts_ns)
        )
        self._owned = False
        return out

    def _tcp(self, key: bytes, seg: Segment, frame: int, ts_ns: int) -> list[Handshake]:
        stats = self.stats
        table = self.table
        flags = seg.flags
        new_connection = flags & SYN and not flags & ACK
        known_isn = self._tcp_known.get(key)
        if known_isn is not MISSING:
            if not new_connection or seg.seq == known_isn:
                # (a SYN with the known connection's own sequence number is a retransmission,
                # or the same packets again in a file that repeats them)
                stats["packets_slow_skipped"] += 1
                return []
            # the 5-tuple is reused by a new connection: forget the old one's verdict
            table.unremember(6, key)
            stats["tcp_port_reuse"] += 1
        out = table.tick(ts_ns)
        flow = table.get(6, key)
        if (
            flow is not None
            and new_connection
            and isinstance(flow, TcpFlow)
            and flow.carried_data()
        ):
            # a SYN on a connection that already carried data: a new connection
            stats["tcp_port_reuse"] += 1
            out.extend(table.evict(flow))
            flow = None
        if flow is None:
            if flags & RST or not (seg.payload or flags & SYN):
                stats["tcp_unknown_no_payload"] += 1
                return out
            flow = new_flow = TcpFlow(key, stats, self.keys, self.ledger)
            stats["tcp_connections"] += 1
            out.extend(table.add(6, new_flow))
        out.extend(flow.on_packet(key, seg, frame, ts_ns))
        out.extend(table.after_packet(flow, bool(seg.payload)))
        return out

    def _udp(self, key: bytes, seg: Segment, frame: int, ts_ns: int) -> list[Handshake]:
        stats = self.stats
        table = self.table
        payload = seg.payload
        if not payload or not UDP_FIRST_BYTES[payload[0]]:
            stats["udp_skipped"] += 1
            return []
        known = self._udp_known.get(key)
        if known is not MISSING:
            if known is None:
                stats["udp_skipped"] += 1
                return []
            transport = recognise_udp(payload)
            if transport is None or not transport.reopens(known, payload):
                # a late packet of a finished connection (an ACK, a retransmission)
                stats["quic_packets_after_facts"] += 1
                return []
            table.unremember(17, key)
            stats[f"{transport.name}_5tuple_reuse"] += 1
        out = table.tick(ts_ns)
        flow = table.get(17, key)
        if flow is None:
            transport = recognise_udp(payload)
            if transport is None:
                seen = recognised_not_dissected(payload)
                stats[f"{seen}_connections_not_dissected" if seen else "udp_not_quic"] += 1
                table.remember(17, key, None, None)
                return out
            flow = transport.new_flow(key, seg, stats, self.keys, self.ledger)
            stats[f"{transport.name}_connections"] += 1
            out.extend(table.add(17, flow))
        out.extend(flow.on_packet(key, seg, frame, ts_ns))
        out.extend(table.after_packet(flow))
        return out

    # ------------------------------------------------------------------ time and end
    def tick(self, now_ns: int) -> list[Handshake]:
        """Time has come to ``now_ns`` without a packet (a quiet live link): flows idle for
        the idle timeout leave, their waiting records as ``unseen``."""
        return self.table.tick(now_ns)

    def finish(self) -> list[Handshake]:
        """End of input: every connection still waiting reports what it has."""
        return self.table.finish()

    def all_errors(self) -> list[str]:
        """The first errors of the run, for the report: internal ones first."""
        return (self.errors + self.table.errors)[:MAX_ERRORS_KEPT]


def _drop_filtered(batch: PacketBatch, keep: FrameFilter) -> None:
    """Make the frames the capture filter rejects :data:`FILTERED_OUT` placeholders, in
    place: they keep their numbers, and a run without a filter pays nothing for it."""
    buf = batch.buf
    starts = batch.starts
    lengths = batch.lengths
    linktypes = batch.linktypes
    for i in range(len(starts)):
        at = starts[i]
        if not keep(linktypes[i], buf[at : at + lengths[i]]):
            linktypes[i] = FILTERED_OUT


def dissect(packets: Iterable[tuple[int, int, bytes]], dissector: Dissector) -> Iterator[Handshake]:
    """Every record the packets give, the waiting ones at the end included."""
    yield from dissector.run(packets)
    yield from dissector.finish()


def dissect_batches(batches: Iterable[PacketBatch], dissector: Dissector) -> Iterator[Handshake]:
    """Every record the batches give, the waiting ones at the end included."""
    yield from dissector.run_batches(batches)
    yield from dissector.finish()


# Counts that describe the capture, not a shard's flows: every process of a parallel run
# reads the whole file and counts them alike (merged by taking one, not by adding).
PER_CAPTURE_STATS = frozenset(
    {"packets", "truncated_records", "corrupt_records", "packets_filtered_out", "packets_duplicate"}
)
PER_CAPTURE_PREFIXES = ("keylog_",)
_KEYLOG_STATS = ("malformed", "sessions", "dsb_blocks", "unknown_label")


def add_run_stats(total: Counter[str], stats: Mapping[str, int], *, shared_keylog: bool) -> None:
    """Add one capture's counts to a run's. The ``keylog_`` counts describe the key log, not
    the capture: with one key log shared by every capture (``--keylog``) each capture reports
    the log as it stands (its lines, and every capture's DSBs taken in so far), so the run's
    count is the largest, never the sum; without one, each capture's DSBs are its own, summed."""
    for name, count in stats.items():
        if shared_keylog and name.startswith(PER_CAPTURE_PREFIXES):
            total[name] = max(total[name], count)
        else:
            total[name] += count


class CaptureRun:
    """One capture read to its end: the one way the CLI, ``alpnsniff.read`` and each process
    of a parallel run read a capture, so their counts agree.

    Iterate :meth:`records` (once) for the records as they complete; then :meth:`result`
    has every count: the dissector's, the decoder's (``decode_*``: tunnels, shims,
    fragments), the capture's (packets, truncated or corrupt records) and the key log's.
    """

    def __init__(
        self,
        source: Source,
        *,
        keylog: KeyLog | None = None,
        shard: int = 0,
        shards: int = 1,
        watch: Callable[[Batches], Batches] | None = None,
        frame_filter: FrameFilter | None = None,
        idle_timeout_ns: int = IDLE_TIMEOUT_NS,
        dedup: bool = False,
    ) -> None:
        self.source = source
        self.keys = KeyStore.for_capture(keylog, source)
        self.dissector = Dissector(
            shard, shards, self.keys, frame_filter, idle_timeout_ns, Dedup() if dedup else None
        )
        self._watch = watch

    def records(self) -> Iterator[Handshake]:
        """The records in frame order (the ClientHello's frame), each as soon as no
        ClientHello of an earlier frame still waits: streamed, and in the same order as a
        parallel run's (which sorts), whatever ``--jobs``."""
        batches: Batches = iter(self.source.batches())
        if self._watch is not None:
            batches = self._watch(batches)
        dissector = self.dissector
        ledger = dissector.ledger
        held: list[tuple[int, int, Handshake]] = []  # (frame, arrival, record), a heap
        for arrival, h in enumerate(dissect_batches(batches, dissector)):
            heapq.heappush(held, (h.frame, arrival, h))
            low = ledger.low_water()
            while held and (low is None or held[0][0] < low):
                yield heapq.heappop(held)[2]
        while held:
            yield heapq.heappop(held)[2]

    def result(self, handshakes: list[Handshake]) -> RunResult:
        """The run's result once :meth:`records` is exhausted (``handshakes``: the records
        the caller kept, if any)."""
        dissector = self.dissector
        stats = Counter(dissector.stats)
        for name, count in dissector.decoder_stats.items():
            stats["decode_" + name] += count
        capture = self.source.stats
        # the packets dissected: all the reader gave unless a watch stopped early
        stats["packets"] = dissector.frame
        if capture.truncated_records:
            stats["truncated_records"] = capture.truncated_records
        if capture.corrupt_records:
            stats["corrupt_records"] = capture.corrupt_records
        if self.keys is not None:
            self.keys.take_in_band()  # a DSB no look-up needed still counts
            for name, count in self.keys.keylog.stats.items():
                if count and name in _KEYLOG_STATS:
                    stats[f"keylog_{name}"] = count
        stats = +stats  # counts that stayed 0 say nothing
        errors = dissector.all_errors()
        if capture.error:  # why reading stopped early: first, as the CLI says it
            errors.insert(0, capture.error)
        elif capture.truncated_records:
            errors.insert(0, f"{self.source.name}: the last packet record is cut short")
        return RunResult(self.source.name, handshakes, stats, capture, errors)


def analyze_file(
    path: str | os.PathLike[str] | BinaryIO,
    *,
    shard: int = 0,
    shards: int = 1,
    watch: Callable[[Batches], Batches] | None = None,
    keylog: KeyLog | None = None,
    frame_filter: FrameFilter | None = None,
    idle_timeout_ns: int = IDLE_TIMEOUT_NS,
    dedup: bool = False,
) -> RunResult:
    """Read one capture to its end (one shard of its flows); records in frame order.

    ``path`` is a path or a binary stream open for reading (left open; the result is named
    after its ``name``). ``keylog`` holds TLS secrets (NSS key log format) for the decryption
    stage; the capture's own Decryption Secrets Blocks are added to it as they are read.

    ``watch`` wraps the stream of packet batches (a progress bar, say) without touching it.
    """
    with open_capture(path) as source:
        run = CaptureRun(
            source,
            keylog=keylog,
            shard=shard,
            shards=shards,
            watch=watch,
            frame_filter=frame_filter,
            idle_timeout_ns=idle_timeout_ns,
            dedup=dedup,
        )
        result = run.result(list(run.records()))  # (records() is in frame order)
    if isinstance(path, str | os.PathLike):
        result.name = str(path)  # the path as given ("-", not "<stdin>")
    return result
