"""Opening a capture: a path, ``-`` (standard input) or an open binary stream.

Compression (gzip, xz, bzip2, and zstd when the ``zstandard`` module is importable) and the
format (pcap or pcapng) are both recognised by their magic bytes, never by the file name.
Nothing seeks, so a pipe (``tcpdump -w - | alpnsniff read -``) works: the bytes read to
recognise the file are kept and handed on. Every way a file can fail to open ends in a
:class:`CaptureError` with one line for the user.

A :class:`CaptureSource` is a :class:`~alpnsniff.capture.base.Source`: a pcapng file
carries secrets in-band (``carries_secrets`` True, its Decryption Secrets Blocks appended
to ``secrets`` while its packets are read), a pcap file does not.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import sys
import zlib
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, cast

from ..errors import CaptureError
from .batch import PacketBatch
from .pcap import FILE_HEADER_LEN, PCAP_MAGICS, PcapHeader, parse_pcap_header, pcap_batches
from .pcapng import PCAPNG_MAGIC, SHB_MIN_LEN, pcapng_batches, shb_byte_order
from .stats import CHUNK_SIZE, CaptureStats, FileRefill, ReadFn, Refill, stream_refill

if TYPE_CHECKING:
    from .base import Source

# Bytes needed to recognise the format: the longest fixed header we check (pcap's 24 bytes,
# the pcapng section header's 28).
_HEAD_LEN = max(FILE_HEADER_LEN, SHB_MIN_LEN)

_COMPRESSION_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)

# What the decompressors raise on bad or cut-short input.
_DECOMPRESS_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError)


class _Prefixed(io.RawIOBase):
    """A read-only stream: some bytes already read, then the rest of another stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def _open_zstd(name: str, raw: BinaryIO) -> BinaryIO:
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise CaptureError(
            f"{name}: zstd-compressed, but the zstandard module is not installed"
            " (pip install zstandard, or decompress it first: zstd -d)"
        ) from None
    reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return reader


def _decompressor(name: str, kind: str, raw: BinaryIO) -> BinaryIO:
    if kind == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind == "xz":
        return cast(BinaryIO, lzma.LZMAFile(raw, "rb"))
    if kind == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(raw, "rb"))
    return _open_zstd(name, raw)


def _read_at_least(read: ReadFn, have: bytes, n: int) -> bytes:
    """``have`` plus reads until it is ``n`` bytes long or the stream ends (a pipe may hand
    over a few bytes at a time)."""
    parts = [have]
    total = len(have)
    while total < n:
        chunk = read(CHUNK_SIZE)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def _open_path(source: str | os.PathLike[str]) -> tuple[str, BinaryIO]:
    name = os.fsdecode(source)
    try:
        return name, open(name, "rb")  # closed by CaptureSource.close()
    except FileNotFoundError:
        raise CaptureError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{name}: is a directory") from None
    except PermissionError:
        raise CaptureError(f"{name}: permission denied") from None
    except OSError as exc:
        raise CaptureError(f"{name}: {exc.strerror or exc}") from None


def open_capture(source: str | os.PathLike[str] | BinaryIO) -> CaptureSource:
    """Open a pcap or pcapng capture, compressed or not, for reading its packets.

    ``source`` is a path, ``"-"`` for standard input, or a binary stream open for reading
    (not closed by :meth:`CaptureSource.close`, nor is standard input: their owner closes
    them). Raises :class:`CaptureError` with one line when it is not a readable capture.
    """
    owned: BinaryIO | None = None
    if isinstance(source, str) and source == "-":
        name, raw = "<stdin>", sys.stdin.buffer
    elif isinstance(source, str | os.PathLike):
        name, raw = _open_path(source)
        owned = raw
    else:
        raw = source
        stream_name = getattr(source, "name", None)
        name = stream_name if isinstance(stream_name, str) else "<stream>"
    try:
        return _open_stream(name, raw, owned)
    except BaseException:
        if owned is not None:
            owned.close()
        raise


def _reader(name: str, stream: BinaryIO, stats: CaptureStats, raw_file: bool) -> ReadFn:
    """A read function that turns I/O and decompression errors into the end of the stream,
    recording why in ``stats.error``.

    Everything is read with ``read1`` where the stream has it. A raw file or pipe gives what
    one system call returns (a live pipe hands over what it has instead of blocking until a
    chunk is full). A decompressor is asked repeatedly until the chunk is full, so that the
    data decompressed before a bad or cut-short part is handed over before the error.
    """
    read1: ReadFn = getattr(stream, "read1", stream.read)
    failed = False

    def read(n: int) -> bytes:
        nonlocal failed
        if failed:
            return b""
        try:
            return read1(n)
        except _DECOMPRESS_ERRORS as exc:
            failed = True
            if stats.error is None:
                stats.error = f"{name}: read error, stopped there: {exc}"
            return b""

    if raw_file:
        return read

    def read_full(n: int) -> bytes:
        parts = []
        have = 0
        while have < n:
            part = read(n - have)
            if not part:
                break
            parts.append(part)
            have += len(part)
        return b"".join(parts)

    return read_full


def _open_stream(name: str, raw: BinaryIO, owned: BinaryIO | None) -> CaptureSource:
    stats = CaptureStats()
    read = _reader(name, raw, stats, raw_file=True)
    head = _read_at_least(read, b"", _HEAD_LEN)
    if stats.error is not None and len(head) < _HEAD_LEN:
        raise CaptureError(stats.error)
    if not head:
        raise CaptureError(f"{name}: empty file")
    compression = None
    for magic, kind in _COMPRESSION_MAGICS:
        if head.startswith(magic):
            compression = kind
            break
    stream = raw
    if compression is not None:
        stream = _decompressor(name, compression, _Prefixed(head, raw))  # type: ignore[arg-type]
        read = _reader(name, stream, stats, raw_file=False)
        head = _read_at_least(read, b"", _HEAD_LEN)
        if stats.error is not None and len(head) < _HEAD_LEN:
            stream.close()
            why = stats.error.removeprefix(f"{name}: read error, stopped there: ")
            raise CaptureError(f"{name}: bad {compression} data ({why})")
        if not head:
            stream.close()
            raise CaptureError(f"{name}: empty file once {compression}-decompressed")
    magic = head[:4]
    try:
        if magic in PCAP_MAGICS:
            return CaptureSource(
                name, "pcap", stream, owned, read, head, stats, compression,
                pcap_header=parse_pcap_header(name, head),
            )  # fmt: skip
        if magic == PCAPNG_MAGIC:
            return CaptureSource(
                name, "pcapng", stream, owned, read, head, stats, compression,
                pcapng_order=shb_byte_order(name, head),
            )  # fmt: skip
        what = f"{compression}-compressed, but " if compression else ""
        raise CaptureError(
            f"{name}: {what}not a pcap or pcapng file (starts with {head[:4].hex(' ')})"
        )
    except BaseException:
        if stream is not raw:
            stream.close()
        raise


class CaptureSource:
    """An open capture: its format, its packets (once, in file order), and counts.

    A :class:`~alpnsniff.capture.base.Source`. A context manager; :meth:`close` closes
    what :func:`open_capture` opened.
    """

    name: str
    format: str
    compression: str | None
    stats: CaptureStats
    secrets: list[tuple[int, bytes]]
    carries_secrets: bool

    def __init__(
        self,
        name: str,
        fmt: str,
        stream: BinaryIO,
        owned: BinaryIO | None,
        read: ReadFn,
        head: bytes,
        stats: CaptureStats,
        compression: str | None,
        *,
        pcap_header: PcapHeader | None = None,
        pcapng_order: str = "<",
    ) -> None:
        self.name = name
        self.format = fmt
        """"pcap" or "pcapng"."""
        self.compression = compression
        """"gzip", "xz", "bzip2", "zstd", or None."""
        self.stats = stats
        self.secrets = []
        """pcapng Decryption Secrets Blocks as (secrets type, data), in file order; filled
        while packets are read (a DSB comes before the packets that need it)."""
        self.carries_secrets = fmt == "pcapng"
        """True for pcapng (it may hold DSBs), False for pcap (:attr:`secrets` stays empty)."""
        self.pcap_header = pcap_header
        self._stream = stream
        self._owned = owned
        self._read = read
        self._head = head
        self._pcapng_order = pcapng_order
        self._started = False
        if pcap_header is not None:
            units = 1_000_000_000 if pcap_header.frac_ns == 1 else 1_000_000
            stats.interfaces.append((pcap_header.linktype, units))

    def batches(self) -> Iterator[PacketBatch]:
        """The packets in file order, a :class:`~alpnsniff.capture.batch.PacketBatch` per
        chunk read: ``ts_ns`` integer nanoseconds since the Unix epoch (UTC), the captured
        bytes of each frame where they lie in the chunk.

        Reading stops early (never raising) at a corrupt record or a read error, counted in
        :attr:`stats` with one line in ``stats.error``. Can be called once (this or
        :meth:`packets`).
        """
        if self._started:
            raise RuntimeError(f"{self.name}: the packets can be iterated only once")
        self._started = True
        head, self._head = self._head, b""
        more = self._refill(len(head))
        if self.pcap_header is not None:
            return pcap_batches(more, head, self.pcap_header, self.stats, self.name)
        return pcapng_batches(more, head, self._pcapng_order, self.stats, self.secrets, self.name)

    def _refill(self, head_len: int) -> Refill:
        """Positioned reads for a regular, uncompressed file that alpnsniff opened (read
        from its start); the stream's own reads for everything else."""
        owned = self._owned
        if owned is not None and self.compression is None and owned is self._stream:
            try:
                fd = owned.fileno()
                regular = stat.S_ISREG(os.fstat(fd).st_mode)
            except (OSError, ValueError):
                regular = False
            if regular:
                return FileRefill(fd, head_len, self.name, self.stats)
        return stream_refill(self._read)

    def packets(self) -> Iterator[tuple[int, int, bytes]]:
        """``(ts_ns, linktype, data)`` per packet, in file order: :meth:`batches`, one packet
        at a time (for a consumer that wants them so; the pipeline takes the batches). When
        the consumer stops early, :attr:`stats` counts the packets it was given."""
        return self._one_by_one(self.batches())

    def _one_by_one(self, batches: Iterator[PacketBatch]) -> Iterator[tuple[int, int, bytes]]:
        stats = self.stats
        left = left_bytes = 0  # of the batch being handed out
        try:
            for batch in batches:
                left = len(batch)
                left_bytes = sum(batch.lengths)
                for packet in batch.packets():
                    left -= 1
                    left_bytes -= len(packet[2])
                    yield packet
        finally:
            if left:  # stopped inside a batch: the reader counted all of it
                close = getattr(batches, "close", None)
                if close is not None:
                    close()  # (its own count is final once it is closed)
                stats.packets -= left
                stats.bytes -= left_bytes

    def close(self) -> None:
        """Close the decompressor and the file that :func:`open_capture` opened."""
        if self.compression is not None:
            self._stream.close()
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CaptureSource {self.name!r} {self.format}>"


if TYPE_CHECKING:

    def _is_a_source(source: CaptureSource) -> Source:
        return source  # mypy checks here that CaptureSource satisfies Source
