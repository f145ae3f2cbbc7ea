"""Packets side by side in one buffer: the unit every capture source hands the pipeline.

A file is read a chunk (1 MiB) at a time and a live ring hands over a block at a time. The
packets of a chunk stay where they lie; a :class:`PacketBatch` says where each one starts,
how long it is, when it was captured and its link type. That keeps the per-packet cost of
reading to the record header's few fields: the pipeline's hot loop reads the header bytes
its peek needs straight out of the buffer and slices a packet out only when it goes further
(one packet in twenty on the benchmark), and whatever looks at the stream as a whole (a
signal, a parallel run's stop, a progress bar) looks once a batch, not once a packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# The most packets one batch holds: a reader hands a chunk's packets on in batches of at most
# this many, so that whatever looks once a batch (a parallel run's stop) knows how far past
# its last look a consumer can be.
MAX_BATCH_PACKETS = 4096

# The link type of the placeholder a frame the capture filter dropped becomes: it keeps its
# frame number and is counted, never looked at (no LINKTYPE is negative).
FILTERED_OUT = -1
# ... and of a frame the duplicate stage (capture/dedup.py) found to be a copy of one just seen
DUPLICATE = -2


@dataclass(slots=True, eq=False)
class PacketBatch:
    """Packet ``i`` is ``buf[starts[i] : starts[i] + lengths[i]]``, captured at ``stamps[i]``
    (integer nanoseconds since the Unix epoch, UTC), of link type ``linktypes[i]``
    (a LINKTYPE_* value, or :data:`FILTERED_OUT`). The four lists have one entry per packet,
    in capture order. ``now_ns``, when not 0, is the time the run has come to (a live source's
    clock), and the batch may hold no packet at all."""

    buf: bytes
    starts: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    linktypes: list[int] = field(default_factory=list)
    # a live source's clock (ns since the epoch) when it handed the batch on, 0 for a file:
    # a quiet link hands on empty batches with it, so that idle flows leave by time
    now_ns: int = 0
    # the capture interface of each packet not on interface 0, by its index in the batch
    # (a pcapng's interface, counted over its sections; a live run's -i index): sparse, as
    # most captures have one interface and their batches none of it
    interfaces: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.starts)

    def data(self, i: int) -> bytes:
        """The captured bytes of packet ``i``."""
        start = self.starts[i]
        return self.buf[start : start + self.lengths[i]]

    def packets(self) -> Iterator[tuple[int, int, bytes]]:
        """``(ts_ns, linktype, data)`` per packet."""
        buf = self.buf
        for start, length, ts_ns, linktype in zip(
            self.starts, self.lengths, self.stamps, self.linktypes, strict=True
        ):
            yield ts_ns, linktype, buf[start : start + length]

    def head(self, n: int) -> PacketBatch:
        """The first ``n`` packets (the same buffer)."""
        return PacketBatch(
            self.buf,
            self.starts[:n],
            self.lengths[:n],
            self.stamps[:n],
            self.linktypes[:n],
            interfaces={i: v for i, v in self.interfaces.items() if i < n},
        )


def fresh_batch(buf: bytes) -> tuple[PacketBatch, list[int], list[int], list[int], list[int]]:
    """An empty batch on ``buf`` and its four lists (starts, lengths, stamps, link types),
    for a reader's record loop to keep in locals and append to."""
    batch = PacketBatch(buf)
    return batch, batch.starts, batch.lengths, batch.stamps, batch.linktypes


def batch_of(packets: Iterable[tuple[int, int, bytes]]) -> PacketBatch:
    """One batch of ``(ts_ns, linktype, data)`` packets (their bytes copied side by side)."""
    batch = PacketBatch(b"")
    parts = []
    at = 0
    for ts_ns, linktype, data in packets:
        parts.append(data)
        batch.starts.append(at)
        batch.lengths.append(len(data))
        batch.stamps.append(ts_ns)
        batch.linktypes.append(linktype)
        at += len(data)
    batch.buf = b"".join(parts)
    return batch


def first_packets(batches: Iterable[PacketBatch], n: int) -> Iterator[PacketBatch]:
    """The batches up to the ``n``-th packet (the batch that holds it cut there)."""
    left = n
    for batch in batches:
        if left <= 0:
            return
        if len(batch) > left:
            yield batch.head(left)
            return
        left -= len(batch)
        yield batch


def flatten(batches: Iterable[PacketBatch]) -> Iterator[tuple[int, int, bytes]]:
    """``(ts_ns, linktype, data)`` per packet of the batches."""
    for batch in batches:
        yield from batch.packets()
