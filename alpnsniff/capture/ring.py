"""A live interface through a PACKET_MMAP TPACKET_V3 ring: each retired block is a batch.

The kernel fills blocks of a ring shared with us (``mmap``) and retires one when it is full
or when ``timeout_ms`` has passed since it opened; a retired block's packets are handed on as
one :class:`~alpnsniff.capture.batch.PacketBatch` (the block's bytes copied once, so that the
block goes back to the kernel at once), exactly as a file's chunk is. The ring is polled
with a timeout, so an idle link never blocks a signal or a stop; on each quiet poll the
source hands on an empty batch carrying the current time (``now_ns``), so that the run's
idle timeout works on a quiet link (``Dissector.tick``).

The socket is opened with protocol 0 (it takes no packet until bound), gets its kernel
filter (:mod:`~alpnsniff.capture.kernel_filter`: the default drops pure TCP ACKs, which the
dissector never looks at; frames are cut to the snap length), then the ring, then is bound
to the interface: no frame reaches the ring unjudged, and none from another interface.

Counts: ``kernel_packets`` and ``kernel_drops`` from ``PACKET_STATISTICS`` (reading them
resets the kernel's counters, so they are added up here; the kernel's ``tp_packets``
includes the drops, not the frames the filter refused), ``kernel_freezes`` (blocks the
kernel found still ours) and ``snap_cut`` (frames longer on the wire than the snap length).

Linux only; needs CAP_NET_RAW. ``alpnsniff live`` and ``alpnsniff.sniff`` read it.
"""

from __future__ import annotations

import errno
import mmap
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from ..errors import CaptureError
from .batch import PacketBatch, flatten
from .bpf import BpfError
from .kernel_filter import MAX_SNAPLEN, attach_filter, default_filter
from .stats import CaptureStats

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_FANOUT = 18
# a fanout group's mode: by the flow's hash (the kernel's symmetric hash: both directions of
# a connection reach the same socket), IP fragments put back together before hashing
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
PACKET_FANOUT_FLAG_UNIQUEID = 0x2000  # the kernel picks an id no other group has
NEW_FANOUT_GROUP = -1  # fanout_group: start a group of our own (its id: fanout_group after)
PACKET_VERSION = 10
TPACKET_V3 = 2
PACKET_MR_PROMISC = 1
ETH_P_ALL = 0x0003
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
# The interface's hardware type (ARPHRD_*, /sys/class/net/IFACE/type) -> the link type of the
# frames a packet socket reads on it: Ethernet (and loopback, which gets a zeroed Ethernet
# header), or none at all (tun, WireGuard: the frame starts with IP).
_LINKTYPE_OF_ARPHRD = {1: LINKTYPE_ETHERNET, 772: LINKTYPE_ETHERNET, 65534: LINKTYPE_RAW}

# The ring: 64 blocks of 1 MiB (a burst of 64 MiB before the kernel drops), as the issue's
# probe found default buffers lose bursts. Frames are at most this big (a jumbo frame fits).
BLOCK_SIZE = 1 << 20
BLOCK_COUNT = 64
FRAME_SIZE = 1 << 16
TIMEOUT_MS = 100

_BLOCK_HEADER = struct.Struct("=IIIIIQ")  # version, offset_to_priv, status, num_pkts, first, len
_PACKET_HEADER = struct.Struct("=IIIIIIHH")  # next, sec, nsec, snaplen, len, status, mac, net
_FIRST_STAMP = struct.Struct("=III")  # a packet header's next, sec, nsec
_STATS_V3 = struct.Struct("=III")  # tp_packets, tp_drops, tp_freeze_q_cnt


def _linktype_of(interface: str) -> int:
    """The link type of ``interface``'s frames, from its hardware type."""
    if not interface or "/" in interface or interface in (".", ".."):
        raise CaptureError(f"{interface!r}: no such interface")
    try:
        arphrd = int(Path("/sys/class/net", interface, "type").read_text(encoding="ascii"))
    except FileNotFoundError:
        raise CaptureError(f"{interface}: no such interface") from None
    except (OSError, ValueError) as exc:
        raise CaptureError(f"{interface}: cannot read its hardware type: {exc}") from None
    linktype = _LINKTYPE_OF_ARPHRD.get(arphrd)
    if linktype is None:
        raise CaptureError(f"{interface}: hardware type {arphrd} is not supported for capture yet")
    return linktype


class RingSource:
    """A :class:`~alpnsniff.capture.base.Source` on one interface (see the module docstring).

    ``should_stop`` is looked at between blocks and on every quiet poll: once it returns
    True, :meth:`batches` hands on the block still open (the kernel retires it within
    ``timeout_ms``) and ends. Each quiet poll hands on an empty batch with ``now_ns``.
    """

    carries_secrets = False

    def __init__(
        self,
        interface: str,
        *,
        promiscuous: bool = True,
        kernel_filter: str | None = None,
        snaplen: int = MAX_SNAPLEN,
        block_size: int = BLOCK_SIZE,
        block_count: int = BLOCK_COUNT,
        timeout_ms: int = TIMEOUT_MS,
        should_stop: Callable[[], bool] = lambda: False,
        fanout_group: int | None = None,
    ) -> None:
        self.name = interface
        # a member of this PACKET_FANOUT group (--jobs): the kernel splits the interface's
        # packets between the group's sockets by flow, each socket its own ring and counts
        self.fanout_group = fanout_group
        self.linktype = _linktype_of(interface)
        # what the kernel runs before the ring: the expression given, else the default (what
        # the dissector never looks at is dropped); "" keeps every frame. Frames are cut to
        # ``snaplen`` bytes (the program's return value), as tcpdump -s does
        self.kernel_filter = (
            default_filter(self.linktype) if kernel_filter is None else kernel_filter
        )
        self.snaplen = snaplen
        self.snap_cut = 0  # frames the snap length cut (tp_snaplen < tp_len)
        self.stats = CaptureStats()
        self.stats.interfaces.append((self.linktype, 1_000_000_000))
        self.secrets: list[tuple[int, bytes]] = []
        self.kernel_packets = 0
        self.kernel_drops = 0
        self.kernel_freezes = 0
        self._block_size = block_size
        self._block_count = block_count
        self._timeout_ms = timeout_ms
        self._should_stop = should_stop
        self._started = False
        self._index = 0  # the ring's block to look at next
        try:
            # protocol 0: the socket takes no packet until bind() names the interface and
            # ETH_P_ALL (opened with ETH_P_ALL it would take every interface's until then)
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise CaptureError(
                f"{interface}: capture not permitted (needs CAP_NET_RAW: run as root, or "
                "setcap cap_net_raw+ep on the Python binary)"
            ) from None
        try:
            self._ring = self._open(interface, promiscuous)
        except BaseException:
            self._sock.close()
            raise

    def _open(self, interface: str, promiscuous: bool) -> mmap.mmap:
        sock = self._sock
        try:
            ifindex = socket.if_nametoindex(interface)
        except OSError:
            raise CaptureError(f"{interface}: no such interface") from None
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        try:  # before the ring and bind(): no frame is judged by anything else
            attach_filter(sock, self.kernel_filter, self.linktype, self.snaplen)
        except BpfError as exc:
            raise CaptureError(f"{interface}: {exc}") from None
        frames = self._block_size // FRAME_SIZE * self._block_count
        request = struct.pack(
            "=IIIIIII",
            self._block_size,
            self._block_count,
            FRAME_SIZE,
            frames,
            self._timeout_ms,
            0,  # no private area per block
            0,  # no feature request (rx hash)
        )
        try:
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
        except OSError as exc:
            raise CaptureError(f"{interface}: cannot set up the capture ring: {exc}") from None
        ring = mmap.mmap(
            sock.fileno(),
            self._block_size * self._block_count,
            mmap.MAP_SHARED,
            mmap.PROT_READ | mmap.PROT_WRITE,
        )
        sock.bind((interface, ETH_P_ALL))  # (host order: Python swaps it)
        if self.fanout_group is not None:  # (only once bound)
            mode = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG
            group = self.fanout_group
            if group == NEW_FANOUT_GROUP:  # (no other run's group can be joined by mistake)
                mode |= PACKET_FANOUT_FLAG_UNIQUEID
                group = 0
            try:
                arg = struct.pack("=I", (group & 0xFFFF) | mode << 16)  # (above INT_MAX)
                sock.setsockopt(SOL_PACKET, PACKET_FANOUT, arg)
                self.fanout_group = sock.getsockopt(SOL_PACKET, PACKET_FANOUT) & 0xFFFF
            except OSError as exc:
                raise CaptureError(f"{interface}: cannot join the fanout group: {exc}") from None
        if promiscuous:
            mreq = struct.pack("=iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        return ring

    def batches(self) -> Iterator[PacketBatch]:
        """The retired blocks' packets in ring order, until ``should_stop`` says so."""
        if self._started:
            raise RuntimeError(f"{self.name}: the packets can be iterated only once")
        self._started = True
        return self._walk()

    def packets(self) -> Iterator[tuple[int, int, bytes]]:
        return flatten(self.batches())

    def fileno(self) -> int:
        """The socket's descriptor, to poll (readable once a block is retired)."""
        return self._sock.fileno()

    def block_ready(self) -> bool:
        """Whether the kernel has retired the block to be read next."""
        status = _BLOCK_HEADER.unpack_from(self._ring, self._index * self._block_size)[2]
        return bool(status & TP_STATUS_USER)

    def next_block(self, until_ns: int = 0) -> PacketBatch | None:
        """The next retired block's packets (possibly none), handing the block back to the
        kernel; None while the kernel still fills it, or (``until_ns``, a stop's time) when
        its first packet came after that: what came after a stop is left."""
        ring = self._ring
        at = self._index * self._block_size
        _v, _priv, status, num_pkts, first, used = _BLOCK_HEADER.unpack_from(ring, at)
        if not status & TP_STATUS_USER:
            return None
        if until_ns and num_pkts and first + _PACKET_HEADER.size <= min(used, self._block_size):
            _n, sec, nsec = _FIRST_STAMP.unpack_from(ring, at + first)
            if sec * 1_000_000_000 + nsec > until_ns:
                return None
        block = ring[at : at + min(used, self._block_size)]
        batch = self._batch(block, num_pkts, first, self.linktype)
        ring[at + 8 : at + 12] = b"\x00\x00\x00\x00"  # the block goes back to the kernel
        self._index = (self._index + 1) % self._block_count
        self.stats.packets += len(batch)
        self.stats.bytes += sum(batch.lengths)
        return batch

    def _walk(self) -> Iterator[PacketBatch]:
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN | select.POLLERR)
        timeout_s = self._timeout_ms / 1000
        # the packets the ring has not handed on are at most this old (the open block's)
        lag_ns = 2 * self._timeout_ms * 1_000_000
        stop_ns = 0  # once stopped: when (what came later is left in the ring)
        drain_until = 0.0  # ... and until when the open block's retirement is awaited
        next_stats = 0.0
        try:
            while True:
                now = time.monotonic()
                if not stop_ns and self._should_stop():
                    # the packets up to the stop are handed on, the block still open
                    # included (the kernel retires it within its timeout), and no more:
                    # under overload the ring never runs dry
                    stop_ns = time.time_ns()
                    drain_until = now + 2 * timeout_s
                if now >= next_stats:  # (the drops, as they happen: once a second)
                    self.read_kernel_stats()
                    next_stats = now + 1.0
                batch = self.next_block(stop_ns)
                if batch is not None:
                    if len(batch):
                        yield batch
                    continue
                if stop_ns and (self.block_ready() or now >= drain_until):
                    return  # (a block retired after the stop: all before it was read)
                try:
                    ready = poller.poll(self._timeout_ms)
                except InterruptedError:
                    ready = []
                if not ready and not stop_ns:  # the link is quiet: the time, for idle flows
                    yield PacketBatch(b"", now_ns=time.time_ns() - lag_ns)
        finally:
            self.read_kernel_stats()

    def _batch(self, block: bytes, num_pkts: int, first: int, linktype: int) -> PacketBatch:
        """The packets of a block's copy (its used bytes, copied once)."""
        batch = PacketBatch(block)
        pos = first
        cut = 0
        for _ in range(num_pkts):
            if pos + _PACKET_HEADER.size > len(block):
                break
            nxt, sec, nsec, snaplen, wire, _st, mac, _net = _PACKET_HEADER.unpack_from(block, pos)
            if pos + mac + snaplen > len(block):
                break
            batch.starts.append(pos + mac)
            batch.lengths.append(snaplen)
            batch.stamps.append(sec * 1_000_000_000 + nsec)
            batch.linktypes.append(linktype)
            if wire > snaplen:
                cut += 1
            if not nxt:
                break
            pos += nxt
        self.snap_cut += cut
        return batch

    def read_kernel_stats(self) -> None:
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS_V3.size)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            return
        packets, drops, freezes = _STATS_V3.unpack(raw)
        # (reading resets them; tp_packets counts the dropped packets too)
        self.kernel_packets += packets
        self.kernel_drops += drops
        self.kernel_freezes += freezes

    def close(self) -> None:
        self._ring.close()
        self._sock.close()

    def __enter__(self) -> RingSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
