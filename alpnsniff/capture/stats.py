"""What reading a capture counted, and the limits that keep reading bounded.

Every limit is a named constant with its reason; a record that breaks one stops the reading
(counted in :class:`CaptureStats` and described in one line in ``error``), it is never a crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

# Largest captured length of one packet we accept. tcpdump's default snap length and
# Wireshark's limit for ordinary link types (WTAP_MAX_PACKET_SIZE_STANDARD): a record header
# that claims more is corrupt, and believing it would make us buffer (and skip) garbage.
MAX_CAPLEN = 262_144

# Largest pcapng block we buffer whole. A packet block holds at most MAX_CAPLEN bytes of data
# plus options; a Decryption Secrets Block holds a key log (16 MiB is ~80,000 TLS sessions).
# A larger length field is taken as corrupt, so memory stays bounded by this plus one chunk.
MAX_BLOCK_LEN = 16 * 1024 * 1024

# Interfaces described in one file (all sections together). Real captures have a few dozen at
# most (OPB interface ids are 16-bit); a cap keeps a file of IDBs from growing memory forever.
MAX_INTERFACES = 65_536

# Total bytes of Decryption Secrets Blocks kept in ``CaptureSource.secrets``. Further DSBs are
# counted in ``skipped_blocks`` instead of being kept, so secrets cannot exhaust memory.
MAX_SECRETS_BYTES = 64 * 1024 * 1024

# How much we ask the file (or pipe, or decompressor) for at a time. Large enough that the
# per-chunk work (one read, one concatenation of the partial record left over) is negligible;
# small enough that memory is bounded by a few MiB whatever the file size.
CHUNK_SIZE = 1024 * 1024

# A function that returns up to n more bytes of the (decompressed) capture, b"" at the end.
ReadFn = Callable[[int], bytes]
# (tail, need) -> the unparsed tail plus more of the capture, at least ``need`` bytes in all
# unless the capture ends first; ``tail`` itself (the same object) at the end. What the
# record loops call at the end of each chunk.
Refill = Callable[[bytes, int], bytes]


@dataclass(slots=True)
class CaptureStats:
    """Counts kept while a capture is read.

    The packet and byte counts are brought up to date at each chunk boundary (every ~1 MiB)
    and when the batch iterator ends or is closed, not after every packet (that would cost
    the hot loop two attribute stores per packet).
    """

    packets: int = 0
    """Packets handed on (a batch's packets count once the batch is handed on; ``packets()``
    takes back those of a batch its consumer did not take)."""
    bytes: int = 0
    """Captured bytes of those packets (sum of the caplens)."""
    truncated_records: int = 0
    """1 if the last record was cut short by the end of the file (counted, not raised)."""
    corrupt_records: int = 0
    """1 if reading stopped at a record header that cannot be right; ``error`` says where."""
    skipped_blocks: int = 0
    """pcapng blocks not used: name resolution, statistics, custom, unknown types, and DSBs
    beyond MAX_SECRETS_BYTES."""
    interfaces: list[tuple[int, int]] = field(default_factory=list)
    """(linktype, timestamp units per second) of each interface, in the order described;
    a pcap file has one: (linktype, 1_000_000) or (linktype, 1_000_000_000). Every pcapng
    section starts a new list of interfaces; this one holds all sections' in order."""
    error: str | None = None
    """One line saying why reading stopped before the end of the file, if it did."""


def refill(read: ReadFn, tail: bytes, need: int) -> bytes:
    """Return ``tail`` plus more of the stream: at least ``need`` bytes in all unless the
    stream ends first. At least one read is made. The result is ``tail`` itself at the end.
    """
    parts = [tail]
    have = len(tail)
    while True:
        chunk = read(CHUNK_SIZE)
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
        if have >= need:
            break
    return tail if len(parts) == 1 else b"".join(parts)


def stream_refill(read: ReadFn) -> Refill:
    """The refill of a stream (a pipe, a decompressor, a file object given by the caller)."""

    def more(tail: bytes, need: int) -> bytes:
        return refill(read, tail, need)

    return more


class FileRefill:
    """The refill of a regular file alpnsniff opened: each chunk is read at its offset with
    ``os.pread``, starting again at the unparsed tail, so the chunk arrives whole in one copy
    (a stream's refill reads a fresh chunk and joins the tail to it: a second copy of the
    whole file, measured at ~0.25 s on the 818 MB benchmark file). A read error ends the
    capture, recorded in ``stats.error`` as for a stream."""

    def __init__(self, fd: int, offset: int, name: str, stats: CaptureStats) -> None:
        self.fd = fd
        self.offset = offset  # file offset just past the bytes handed out so far
        self.name = name
        self.stats = stats

    def __call__(self, tail: bytes, need: int) -> bytes:
        start = self.offset - len(tail)
        try:
            chunk = os.pread(self.fd, max(CHUNK_SIZE, need), start)
        except OSError as exc:
            if self.stats.error is None:
                self.stats.error = f"{self.name}: read error, stopped there: {exc}"
            return tail
        if len(chunk) <= len(tail):
            return tail
        self.offset = start + len(chunk)
        return chunk
