"""Several live interfaces read as one capture, their packets merged by time.

A span port often delivers each direction of a link on its own port (one port mirrors what
the client side sends, another what the server side sends), or a monitoring host has one
port per switch. ``alpnsniff live -i A -i B`` reads a ring on each
(:class:`~alpnsniff.capture.ring.RingSource`) and hands on one stream, in timestamp order,
so that a connection's two directions meet in one flow, as ``mergecap`` would merge two files.
Each packet keeps the index of its interface (``PacketBatch.interfaces``: 0 for the first
``-i``), which the per-interface counts use.

Merging live streams needs a watermark: a ring retires a block when it is full or when its
timeout (100 ms) has passed since the block opened, so the packets a ring has not handed on
yet are at most about two timeouts old. A packet is handed on once every ring has either
handed on a later one or been quiet for that long; until then it waits (bounded by the
rings' own size: what waits is at most two timeouts of traffic). At a stop every ring hands
on the block still open, and what waits is handed on, in order.

Counts: each ring's ``kernel_packets``, ``kernel_drops`` and ``kernel_freezes`` are added up
here (``kernel_drops_if<N>`` per interface in the CLI's stats).
"""

from __future__ import annotations

import select
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import TracebackType

from ..errors import CaptureError
from .batch import MAX_BATCH_PACKETS, PacketBatch, flatten
from .ring import RingSource
from .stats import CaptureStats

# A packet waits for the other interfaces' packets of its time at most this long (ns) after
# the clock has passed it: two of the rings' block timeouts, and a margin for scheduling.
_HOLD_MARGIN_NS = 50_000_000


class MergedRings:
    """A :class:`~alpnsniff.capture.base.Source` over several rings (see the module
    docstring); ``should_stop`` as for one ring."""

    carries_secrets = False

    def __init__(
        self,
        rings: list[RingSource],
        *,
        should_stop: Callable[[], bool] = lambda: False,
        timeout_ms: int = 100,
    ) -> None:
        if not rings:
            raise CaptureError("no interface to capture on")
        self.rings = rings
        self.name = ",".join(ring.name for ring in rings)
        self.stats = CaptureStats()
        for ring in rings:
            self.stats.interfaces.extend(ring.stats.interfaces)
        self.secrets: list[tuple[int, bytes]] = []
        self._should_stop = should_stop
        self._timeout_ms = timeout_ms
        self._hold_ns = 2 * timeout_ms * 1_000_000 + _HOLD_MARGIN_NS
        self._started = False

    # the kernel's counts, over every ring
    @property
    def kernel_packets(self) -> int:
        return sum(ring.kernel_packets for ring in self.rings)

    @property
    def kernel_drops(self) -> int:
        return sum(ring.kernel_drops for ring in self.rings)

    @property
    def kernel_freezes(self) -> int:
        return sum(ring.kernel_freezes for ring in self.rings)

    @property
    def snap_cut(self) -> int:
        return sum(ring.snap_cut for ring in self.rings)

    def batches(self) -> Iterator[PacketBatch]:
        if self._started:
            raise RuntimeError(f"{self.name}: the packets can be iterated only once")
        self._started = True
        return self._walk()

    def packets(self) -> Iterator[tuple[int, int, bytes]]:
        return flatten(self.batches())

    def _walk(self) -> Iterator[PacketBatch]:
        rings = self.rings
        poller = select.poll()
        for ring in rings:
            poller.register(ring.fileno(), select.POLLIN | select.POLLERR)
        # per ring: its packets not handed on yet, (ts_ns, data, linktype), in its order
        waiting: list[deque[tuple[int, bytes, int]]] = [deque() for _ in rings]
        latest = [0] * len(rings)  # per ring: the time of the last packet it handed over
        stop_ns = 0  # once stopped: when (what came later is left in the rings)
        drain_until = 0.0
        next_stats = 0.0
        try:
            while True:
                now = time.monotonic()
                # the clock is read before the rings are: a packet a ring hands over after
                # this cannot be older than the hold time before it
                now_ns = time.time_ns()
                if not stop_ns and self._should_stop():
                    stop_ns = now_ns
                    drain_until = now + 2 * self._timeout_ms / 1000
                if now >= next_stats:
                    for ring in rings:
                        ring.read_kernel_stats()
                    next_stats = now + 1.0
                got = False
                for n, ring in enumerate(rings):
                    batch = ring.next_block(stop_ns)
                    while batch is not None:
                        got = True
                        for ts_ns, linktype, data in batch.packets():
                            waiting[n].append((ts_ns, data, linktype))
                        if batch.stamps:
                            latest[n] = max(latest[n], batch.stamps[-1])
                        batch = ring.next_block(stop_ns)
                # stopped, and every ring has handed on what came before the stop (or its open
                # block was given its time): the rest, in order, and the end
                if (
                    stop_ns
                    and not got
                    and (now >= drain_until or all(ring.block_ready() for ring in rings))
                ):
                    yield from self._merged(waiting, None)
                    return
                # a ring quiet for the hold time cannot hand on anything older than that
                horizon = min(max(t, now_ns - self._hold_ns) for t in latest)
                out = list(self._merged(waiting, horizon))
                yield from out
                if got:
                    continue
                try:
                    ready = poller.poll(self._timeout_ms)
                except InterruptedError:
                    ready = []
                if not ready and not out and not stop_ns:
                    yield PacketBatch(b"", now_ns=horizon)  # every link is quiet: the time
        finally:
            for ring in rings:
                ring.read_kernel_stats()

    def _merged(
        self, waiting: list[deque[tuple[int, bytes, int]]], horizon: int | None
    ) -> Iterator[PacketBatch]:
        """The waiting packets up to ``horizon`` (all of them: None), in time order (ties:
        the lower interface index first), in batches of at most MAX_BATCH_PACKETS."""
        parts: list[bytes] = []
        batch = PacketBatch(b"")
        at = 0
        while True:
            pick = -1
            best = 0
            for n, queue in enumerate(waiting):
                if queue and (pick < 0 or queue[0][0] < best):
                    pick = n
                    best = queue[0][0]
            if pick < 0 or (horizon is not None and best > horizon):
                break
            ts_ns, data, linktype = waiting[pick].popleft()
            if pick:
                batch.interfaces[len(batch.starts)] = pick
            batch.starts.append(at)
            batch.lengths.append(len(data))
            batch.stamps.append(ts_ns)
            batch.linktypes.append(linktype)
            parts.append(data)
            at += len(data)
            self.stats.packets += 1
            self.stats.bytes += len(data)
            if len(batch.starts) >= MAX_BATCH_PACKETS:
                batch.buf = b"".join(parts)
                yield batch
                parts = []
                batch = PacketBatch(b"")
                at = 0
        if batch.starts:
            batch.buf = b"".join(parts)
            yield batch

    def close(self) -> None:
        for ring in self.rings:
            ring.close()

    def __enter__(self) -> MergedRings:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
