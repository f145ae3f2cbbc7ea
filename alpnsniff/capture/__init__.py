"""Capture layer: pcap, pcapng, compressed files, stdin. I/O only, no decoding.

``open_capture(source)`` recognises compression and format by their magic bytes and returns
a :class:`CaptureSource` whose ``packets()`` yields ``(ts_ns, linktype, data)``.
"""

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
    "MAX_BLOCK_LEN",
    "MAX_CAPLEN",
    "MAX_INTERFACES",
    "MAX_SECRETS_BYTES",
    "CaptureSource",
    "CaptureStats",
    "open_capture",
]
