"""The flow of a packet: capture -> decode -> flow table -> TLS -> records.

:class:`Dissector` is the only stateful part. It takes ``(ts_ns, linktype, data)`` tuples from
any capture source and yields :class:`~alpnsniff.records.Handshake` records as they complete.

The hot path is a peek and a look-up: for Ethernet, Linux SLL/SLL2 and raw IP frames carrying
unfragmented IPv4/IPv6 TCP, the flow key is sliced straight out of the frame and looked up in
the set of connections whose facts are known (or that are not TLS); a hit costs nothing more.
Everything else goes through the full decoder (:mod:`alpnsniff.net`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .capture import CaptureStats, open_capture
from .keys.keylog import KeyLog
from .keystore import KeyStore
from .net.decode import PacketDecoder
from .net.segment import Segment
from .quic.versions import looks_like_quic_long_header, version_info
from .quicflow import QuicFlow
from .records import Handshake
from .tcpflow import TcpConnection

SYN = 0x02
RST = 0x04
ACK = 0x10

# Connections in handshake (or probing) state tracked at once. Each costs a few hundred bytes
# plus its buffered handshake bytes; beyond this the least recently active are evicted (their
# waiting ClientHellos are reported as unseen, and the eviction counted).
MAX_ACTIVE_CONNECTIONS = 50_000
# A connection silent this long (capture time) is evicted: handshakes take milliseconds to
# seconds; two minutes matches the usual TCP idle timeouts of flow meters.
IDLE_TIMEOUT_NS = 120 * 1_000_000_000
SWEEP_INTERVAL_NS = 10 * 1_000_000_000
# Flow keys remembered as "facts known / not TLS", in two generations: when the young one
# holds this many, the old one is dropped. ~40 MB at most; a forgotten connection that is
# still running is looked at once more and forgotten again (its data is not a handshake).
SKIP_GENERATION = 200_000
# Error messages kept for the report (all are counted in stats; the text of the first few helps).
MAX_ERRORS_KEPT = 100

# UDP ports that carry tunnels the decoder unwraps (VXLAN, GENEVE, GTP-U, Teredo).
TUNNEL_UDP_PORTS = frozenset({4789, 6081, 2152, 3544})

_IPV4 = b"\x08\x00"
_IPV6 = b"\x86\xdd"
_NOT_FRAGMENTED = (b"\x00\x00", b"\x40\x00")  # flags+offset: none, or DF only
# Offset of the IP header for link types whose header has a fixed size and names its payload.
# linktype -> (ip offset, offset of the 2-byte protocol field or -1 for "IP by version")
_FIXED_LINK = {1: (14, 12), 113: (16, 14), 276: (20, 0), 101: (0, -1), 228: (0, -1), 229: (0, -1)}


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

    def __init__(self, shard: int = 0, shards: int = 1, keys: KeyStore | None = None) -> None:
        # Sharding: with ``shards`` > 1 this dissector keeps only the flows whose symmetric
        # port hash (low byte of sport XOR low byte of dport, modulo shards) is ``shard``;
        # events that belong to no flow (decode skips) are counted by shard 0 alone.
        if not 0 <= shard < shards:
            raise ValueError(f"shard {shard} of {shards}")
        self.shard = shard
        self.shards = shards
        self.keys = keys  # secrets for the decryption stage (None: none given, no cost)
        self.stats: Counter[str] = Counter()
        self.decoder = PacketDecoder()
        self.active: dict[bytes, TcpConnection] = {}
        # flow key -> the client's SYN sequence number (-1: unknown), for known connections
        self.skip_young: dict[bytes, int] = {}
        self.skip_old: dict[bytes, int] = {}
        self.quic_active: dict[bytes, QuicFlow] = {}
        self.udp_skip: set[bytes] = set()  # UDP flows known not to be QUIC
        # QUIC connections whose facts are known: client key -> the DCIDs its client used or
        # may use, server key -> None. A client Initial with another DCID opens a new one.
        self.quic_done: dict[bytes, frozenset[bytes] | None] = {}
        self.frame = 0
        self.last_sweep = 0
        self.errors: list[str] = []  # the first MAX_ERRORS_KEPT dissection errors, for the report

    # ------------------------------------------------------------------ hot loop
    def run(self, packets: Iterable[tuple[int, int, bytes]]) -> Iterator[Handshake]:
        stats = self.stats
        young = self.skip_young
        old = self.skip_old
        udp_skip = self.udp_skip
        fixed_link = _FIXED_LINK
        not_fragmented = _NOT_FRAGMENTED
        tunnel_ports = TUNNEL_UDP_PORTS
        frame = self.frame
        fast_skipped = 0
        empty_skipped = 0
        udp_skipped = 0
        other_shard = 0
        shard = self.shard
        shards = self.shards
        slow = self._slow
        try:
            for ts_ns, linktype, data in packets:
                frame += 1
                link = fixed_link.get(linktype)
                if link is not None:
                    ip, proto_at = link
                    if proto_at >= 0:
                        ethertype = data[proto_at : proto_at + 2]
                        version = 4 if ethertype == _IPV4 else 6 if ethertype == _IPV6 else 0
                    else:
                        version = data[ip] >> 4 if len(data) > ip else 0
                    if version == 4:
                        # (a frame cut inside the IPv4 header goes to the full decoder,
                        # which says how it is cut short)
                        if len(data) >= ip + 20 and data[ip + 6 : ip + 8] in not_fragmented:
                            proto = data[ip + 9]
                            l4 = ip + ((data[ip] & 15) << 2)
                            if proto == 6 and len(data) >= l4 + 14:
                                if shards > 1 and (data[l4 + 1] ^ data[l4 + 3]) % shards != shard:
                                    other_shard += 1
                                    continue
                                key = data[ip + 12 : ip + 20] + data[l4 : l4 + 4]
                                if (key in young or key in old) and not data[l4 + 13] & SYN:
                                    fast_skipped += 1
                                    continue
                                # no payload and no SYN: nothing a handshake needs
                                if not data[l4 + 13] & SYN and (
                                    (data[ip + 2] << 8 | data[ip + 3])
                                    <= l4 - ip + ((data[l4 + 12] >> 4) << 2)
                                ):
                                    empty_skipped += 1
                                    continue
                            elif proto == 17 and len(data) > l4 + 8:
                                ports = data[l4 : l4 + 4]
                                if (ports[0] << 8 | ports[1]) not in tunnel_ports and (
                                    ports[2] << 8 | ports[3]
                                ) not in tunnel_ports:
                                    if shards > 1 and (ports[1] ^ ports[3]) % shards != shard:
                                        other_shard += 1
                                        continue
                                    # only a QUIC long header (form bit set) can open a
                                    # connection or carry a hello
                                    if not data[l4 + 8] & 0x80:
                                        udp_skipped += 1
                                        continue
                                    if data[ip + 12 : ip + 20] + ports in udp_skip:
                                        udp_skipped += 1
                                        continue
                    elif version == 6:
                        proto = data[ip + 6] if len(data) > ip + 6 else -1
                        if proto == 6 and len(data) >= ip + 54:
                            if shards > 1 and (data[ip + 41] ^ data[ip + 43]) % shards != shard:
                                other_shard += 1
                                continue
                            key = data[ip + 8 : ip + 40] + data[ip + 40 : ip + 44]
                            if (key in young or key in old) and not data[ip + 53] & SYN:
                                fast_skipped += 1
                                continue
                            if not data[ip + 53] & SYN and (
                                (data[ip + 4] << 8 | data[ip + 5]) <= (data[ip + 52] >> 4) << 2
                            ):
                                empty_skipped += 1
                                continue
                        elif proto == 17 and len(data) > ip + 48:
                            ports = data[ip + 40 : ip + 44]
                            if (ports[0] << 8 | ports[1]) not in tunnel_ports and (
                                ports[2] << 8 | ports[3]
                            ) not in tunnel_ports:
                                if shards > 1 and (ports[1] ^ ports[3]) % shards != shard:
                                    other_shard += 1
                                    continue
                                if not data[ip + 48] & 0x80:
                                    udp_skipped += 1
                                    continue
                                if data[ip + 8 : ip + 40] + ports in udp_skip:
                                    udp_skipped += 1
                                    continue
                self.frame = frame
                records = slow(ts_ns, linktype, data, frame)
                if records:
                    yield from records
                young = self.skip_young
                old = self.skip_old
                udp_skip = self.udp_skip
        finally:
            self.frame = frame
            stats["packets_fast_skipped"] += fast_skipped
            stats["tcp_empty_skipped"] += empty_skipped
            stats["udp_skipped"] += udp_skipped
            stats["packets_other_shard"] += other_shard

    # ------------------------------------------------------------------ slow path
    def _slow(self, ts_ns: int, linktype: int, data: bytes, frame: int) -> list[Handshake]:
        stats = self.stats
        seg = self.decoder.decode(linktype, data, ts_ns)
        if isinstance(seg, str):
            if self.shard == 0:
                stats["skipped_" + seg.split(":", 1)[0]] += 1
            return []
        sport = seg.sport
        dport = seg.dport
        if self.shards > 1 and ((sport ^ dport) & 255) % self.shards != self.shard:
            stats["packets_other_shard"] += 1
            return []
        ports = bytes((sport >> 8, sport & 255, dport >> 8, dport & 255))
        key = seg.src + seg.dst + ports
        if seg.proto != 6:
            return self._udp(key, seg, frame, ts_ns)
        flags = seg.flags
        new_connection = flags & SYN and not flags & ACK
        known_isn = self.skip_young.get(key, self.skip_old.get(key))
        if known_isn is not None:
            if not new_connection or seg.seq == known_isn:
                # (a SYN with the known connection's own sequence number is a retransmission,
                # or the same packets again in a file that repeats them)
                stats["packets_slow_skipped"] += 1
                return []
            # the 5-tuple is reused by a new connection: forget the old one's verdict
            self._unskip(key)
            stats["tcp_port_reuse"] += 1
        out: list[Handshake] = []
        if ts_ns - self.last_sweep > SWEEP_INTERVAL_NS:
            out.extend(self._sweep(ts_ns))
        conn = self.active.get(key)
        if conn is not None and new_connection and (conn.pending or not conn.probing):
            # a SYN on a connection that already carried data: a new connection
            stats["tcp_port_reuse"] += 1
            out.extend(self._forget(conn))
            conn = None
        if conn is None:
            if flags & RST or not (seg.payload or flags & SYN):
                stats["tcp_unknown_no_payload"] += 1
                return out
            conn = TcpConnection(key, stats, self.keys)
            self.active[key] = conn
            self.active[_reverse_key(key)] = conn
            stats["tcp_connections"] += 1
            if len(self.active) > 2 * MAX_ACTIVE_CONNECTIONS:
                out.extend(self._evict_oldest())
        out.extend(conn.on_segment(key, seg, frame, ts_ns))
        if conn.done or conn.not_tls:
            if conn.not_tls:
                stats["tcp_not_tls"] += 1
            out.extend(self._retire(conn))
        return out

    def _udp(self, key: bytes, seg: Segment, frame: int, ts_ns: int) -> list[Handshake]:
        stats = self.stats
        payload = seg.payload
        if not payload or not payload[0] & 0x80 or key in self.udp_skip:
            stats["udp_skipped"] += 1
            return []
        out: list[Handshake] = []
        if ts_ns - self.last_sweep > SWEEP_INTERVAL_NS:
            out.extend(self._sweep(ts_ns))
        if key in self.quic_done:
            if not self._quic_reopens(key, payload):
                stats["quic_packets_after_facts"] += 1
                return out
            stats["quic_5tuple_reuse"] += 1
        flow = self.quic_active.get(key)
        if flow is None:
            if not looks_like_quic_long_header(payload):
                stats["udp_not_quic"] += 1
                self._skip_udp(key, _reverse_key(key))
                return out
            flow = QuicFlow(key, seg, stats, self.keys)
            self.quic_active[key] = flow
            self.quic_active[_reverse_key(key)] = flow
            stats["quic_connections"] += 1
            if len(self.quic_active) > 2 * MAX_ACTIVE_CONNECTIONS:
                out.extend(self._evict_oldest())
        out.extend(flow.on_datagram(key, seg, frame, ts_ns))
        if flow.done:
            out.extend(self._retire_quic(flow))
        return out

    def _skip_udp(self, key: bytes, rkey: bytes) -> None:
        udp_skip = self.udp_skip
        if len(udp_skip) >= SKIP_GENERATION:
            udp_skip.clear()  # the fast path holds this set: clear it in place
            self.stats["udp_skip_set_cleared"] += 1
        udp_skip.add(key)
        udp_skip.add(rkey)

    def _quic_reopens(self, key: bytes, payload: bytes) -> bool:
        """A client Initial with a new DCID on the 5-tuple of a finished QUIC connection."""
        known = self.quic_done[key]
        if known is None or len(payload) < 7:
            return False  # the server's side, or too short for a long header
        info = version_info(int.from_bytes(payload[1:5], "big"))
        if info is None or payload[0] & 0x30 != info.initial_type_bits:
            return False
        dcid = payload[6 : 6 + payload[5]]
        if dcid in known:
            return False  # a late Initial (an ACK, a retransmission) of the finished connection
        self.quic_done.pop(key, None)
        self.quic_done.pop(_reverse_key(key), None)
        return True

    def _retire_quic(self, flow: QuicFlow, *, judged: bool = True) -> list[Handshake]:
        """Forget a QUIC flow; ``judged`` (facts known) remembers it as done."""
        key = flow.client_key
        rkey = _reverse_key(key)
        self.quic_active.pop(key, None)
        self.quic_active.pop(rkey, None)
        if judged:
            done = self.quic_done
            if len(done) >= SKIP_GENERATION:
                done.clear()
                self.stats["quic_done_set_cleared"] += 1
            done[key] = frozenset(flow.known_dcids)
            done[rkey] = None
        return flow.flush()

    def _unskip(self, key: bytes) -> None:
        rkey = _reverse_key(key)
        for skip in (self.skip_young, self.skip_old):
            skip.pop(key, None)
            skip.pop(rkey, None)

    def _forget(self, conn: TcpConnection) -> list[Handshake]:
        """Drop a connection without a verdict (evicted): its next packet starts afresh."""
        key_a = conn.key_a
        self.active.pop(key_a, None)
        self.active.pop(_reverse_key(key_a), None)
        if conn.probing and not conn.pending:
            self.stats["tcp_evicted_while_probing"] += 1
        return conn.flush()

    def _retire(self, conn: TcpConnection) -> list[Handshake]:
        """Forget a connection: its keys go to the skip set, waiting records leave as unseen."""
        young = self.skip_young
        key_a = conn.key_a
        # both directions, whether or not each has sent anything yet
        rkey = _reverse_key(key_a)
        self.active.pop(key_a, None)
        self.active.pop(rkey, None)
        young[key_a] = young[rkey] = conn.client_isn
        if len(young) >= SKIP_GENERATION:
            self.skip_old = young
            self.skip_young = {}
            self.stats["skip_generations_dropped"] += 1
        room = MAX_ERRORS_KEPT - len(self.errors)
        if conn.errors and room > 0:
            self.errors.extend(conn.errors[:room])
        return conn.flush()

    def _sweep(self, now: int) -> list[Handshake]:
        """Evict connections idle for IDLE_TIMEOUT_NS before ``now`` (this packet's time).

        Evicted connections are forgotten, not judged: a packet of theirs that comes later
        (after a pause, or after a timestamp that jumped) starts them afresh.
        """
        self.last_sweep = now
        horizon = now - IDLE_TIMEOUT_NS
        idle = {id(c): c for c in self.active.values() if c.last_ts < horizon}
        out: list[Handshake] = []
        for conn in idle.values():
            self.stats["tcp_evicted_idle"] += 1
            out.extend(self._forget(conn))
        idle_quic = {id(f): f for f in self.quic_active.values() if f.last_ts < horizon}
        for flow in idle_quic.values():
            self.stats["quic_evicted_idle"] += 1
            out.extend(self._retire_quic(flow, judged=False))
        return out

    def _evict_oldest(self) -> list[Handshake]:
        out: list[Handshake] = []
        if len(self.active) > 2 * MAX_ACTIVE_CONNECTIONS:
            conns = sorted({id(c): c for c in self.active.values()}.values(), key=_last_ts)
            for conn in conns[: max(1, len(conns) // 10)]:
                self.stats["tcp_evicted_table_full"] += 1
                out.extend(self._forget(conn))
        if len(self.quic_active) > 2 * MAX_ACTIVE_CONNECTIONS:
            flows = sorted({id(f): f for f in self.quic_active.values()}.values(), key=_last_ts)
            for flow in flows[: max(1, len(flows) // 10)]:
                self.stats["quic_evicted_table_full"] += 1
                out.extend(self._retire_quic(flow, judged=False))
        return out

    def finish(self) -> list[Handshake]:
        """End of input: every connection still waiting reports what it has."""
        out: list[Handshake] = []
        for conn in {id(c): c for c in self.active.values()}.values():
            if conn.probing and not conn.pending and any(d.held for d in conn.dirs.values()):
                # data seen, no TLS found yet, budget not spent: say so rather than vanish
                self.stats["tcp_still_probing_at_end"] += 1
            out.extend(conn.flush())
        for flow in {id(f): f for f in self.quic_active.values()}.values():
            out.extend(flow.flush())
        self.active.clear()
        self.quic_active.clear()
        return out


def _last_ts(flow: TcpConnection | QuicFlow) -> int:
    return flow.last_ts


def _reverse_key(key: bytes) -> bytes:
    half = (len(key) - 4) // 2
    return key[half : 2 * half] + key[:half] + key[-2:] + key[-4:-2]


def dissect(packets: Iterable[tuple[int, int, bytes]], dissector: Dissector) -> Iterator[Handshake]:
    """Every record the packets give, the waiting ones at the end included."""
    yield from dissector.run(packets)
    yield from dissector.finish()


Packets = Iterator[tuple[int, int, bytes]]


def analyze_file(
    path: str | os.PathLike[str],
    *,
    shard: int = 0,
    shards: int = 1,
    watch: Callable[[Packets], Packets] | None = None,
    keylog: KeyLog | None = None,
) -> RunResult:
    """Read one capture to its end (one shard of its flows); records sorted by frame.

    ``keylog`` holds TLS secrets (NSS key log format) for the decryption stage; the
    capture's own Decryption Secrets Blocks are added to it as they are read.

    ``watch`` wraps the packet stream (a progress bar, say) without touching it.
    """
    with open_capture(path) as source:
        keys = KeyStore.for_capture(keylog, source.format, source.secrets)
        dissector = Dissector(shard, shards, keys)
        packets: Packets = source.packets()
        if watch is not None:
            packets = watch(packets)
        handshakes = list(dissect(packets, dissector))
        capture_stats = source.stats
    handshakes.sort(key=_frame)
    stats = dissector.stats
    stats["packets"] = capture_stats.packets
    if keys is not None:
        for name, count in keys.keylog.stats.items():
            if count and name in ("malformed", "sessions", "dsb_blocks", "unknown_label"):
                stats[f"keylog_{name}"] = count
    return RunResult(str(path), handshakes, stats, capture_stats, dissector.errors)


def _frame(record: Handshake) -> int:
    return record.frame
