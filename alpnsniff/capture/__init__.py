"""Capture layer: pcap, pcapng, compressed files, stdin, live interfaces. I/O only, no
decoding.

``open_capture(source)`` recognises compression and format by their magic bytes and returns
a :class:`CaptureSource` whose ``batches()`` yields a :class:`PacketBatch` per chunk read
(``packets()``: ``(ts_ns, linktype, data)`` per packet).

:class:`Source` (:mod:`~alpnsniff.capture.base`) is what any capture source offers the
pipeline - ``name``, ``stats``, ``batches()`` / ``packets()``, the in-band ``secrets`` and whether it
``carries_secrets`` at all, ``close()`` and the context manager - so that the pipeline and
the key store depend on that protocol, not on a format name. :class:`CaptureSource` (a
file or standard input) satisfies it, and so do the live sources: ``ring.RingSource`` (one
interface) and ``merge.MergedRings`` (several, merged by time), opened by ``live.open_live``.
"""

from .base import Source
from .batch import FILTERED_OUT, PacketBatch, batch_of, flatten
from .bpf import BpfError, BpfFilter, compile_frame_filter
from .source import CaptureSource, open_capture
from .stats import (
    CHUNK_SIZE,
    MAX_BLOCK_LEN,
    MAX_CAPLEN,
    MAX_INTERFACES,
    MAX_SECRETS_BYTES,
    CaptureStats,
)

__all__ = [
    "CHUNK_SIZE",
    "FILTERED_OUT",
    "MAX_BLOCK_LEN",
    "MAX_CAPLEN",
    "MAX_INTERFACES",
    "MAX_SECRETS_BYTES",
    "BpfError",
    "BpfFilter",
    "CaptureSource",
    "CaptureStats",
    "PacketBatch",
    "Source",
    "batch_of",
    "compile_frame_filter",
    "flatten",
    "open_capture",
]
