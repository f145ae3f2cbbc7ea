"""``--rotate SIZE|TIME``: the rows of a long run in a series of files, each one complete.

:func:`parse_rotation` reads the option: a size, ``500k``, ``100M``, ``1G``, ``2T`` (binary
units: k = 1,024 bytes, M = 1,024², …; ``KiB``, ``MiB``, ``GiB``, ``TiB`` too), or a time,
``30s``, ``15m``, ``1h``, ``1d`` (lowercase ``m`` is minutes, uppercase ``M`` mebibytes). A
whole number and one unit; anything else is a :class:`ValueError` saying what is taken.

:class:`RotatingWriter` writes ndjson, CSV (each file with its header row) or Parquet (row
groups, :class:`~alpnsniff.sinks.parquet_stream.ParquetStream`). Each file is written under
a temporary name and renamed when it is complete (:class:`~alpnsniff.sinks.output.
AtomicOutput`): a file under its final name is always whole and valid, the last one too once
:meth:`RotatingWriter.close` has run (the CLI calls it at SIGINT/SIGTERM as at the end).

- **By size**: a file is closed once the bytes written reach SIZE (after the row that
  reaches it: a file is at most one row over; Parquet: after the row group that reaches it,
  as the size of a Parquet file is known only group by group), and the next is opened with
  the next record.
- **By time**: slots of the interval, aligned to the epoch in UTC as Zeek aligns its
  rotation (``1h``: on the hour; ``1d``: at 00:00 UTC; ``15m``: at :00, :15, :30, :45). The
  clock is the caller's: the capture time of each record, and :meth:`RotatingWriter.tick`,
  which closes a slot's file when no record comes. A record goes to the file of the slot
  the clock is in when it arrives: a record is written when its handshake is settled (the
  server's answer, or the idle timeout for an ``unseen`` one), so its ``ts`` (the
  ClientHello's time) may be a little before that slot. A slot without records leaves no
  file.

Names. ``-o DIR/out.ndjson`` writes ``DIR/out.2026-12-02T04-00-00Z.ndjson``,
``DIR/out.2026-12-02T05-00-00Z.ndjson``, …: the name, then the UTC time of the file's start
(its time slot's start; by size, the clock when its first record came: the latest capture
time seen; ``-`` for the ``:`` that some file systems refuse), then the extension. It is
Zeek's scheme (``conn.2026-12-02-04-00-00.log``) with the extension kept and the time in
ISO 8601 order, so that names sort by time. The file ``out.ndjson`` itself is never
written. A name already taken (a file from another run, or two files started in one
second) is never replaced: the file gets the next free ``_0001``, ``_0002``, … after the
time (``out.2026-12-02T04-00-00Z_0001.ndjson``, which sorts after the one without). A run
that writes no record at all still leaves one file, empty but valid (ndjson: empty; CSV:
the header; Parquet: the schema), named after the time (the slot) the run ends in.

Parquet files carry the pandas metadata; the run's counts (``df.attrs``), given to
:meth:`RotatingWriter.close`, go in the file open when the run ends, and cover the whole
run (a run that ends just after a file was closed by size has them in no file: the
``--stats`` file has them all the same).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, cast

from ..records import Handshake
from .output import AtomicOutput, OutputError
from .parquet_stream import GROUP_ROWS, GROUP_SECONDS, ParquetStream

if TYPE_CHECKING:
    from .text import CsvWriter, NdjsonWriter

FORMATS = ("ndjson", "csv", "parquet")
_SIZE_UNITS = {
    "k": 1 << 10,
    "K": 1 << 10,
    "KiB": 1 << 10,
    "M": 1 << 20,
    "MiB": 1 << 20,
    "G": 1 << 30,
    "g": 1 << 30,
    "GiB": 1 << 30,
    "T": 1 << 40,
    "t": 1 << 40,
    "TiB": 1 << 40,
}
_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ROTATION = re.compile(r"\s*([0-9]+)\s*([A-Za-z]+)\s*")
_USAGE = (
    "a size (500k, 100M, 1G: k = 1,024 bytes, M = 1,024², G, T) "
    "or a time (30s, 15m, 1h, 1d), a whole number and one unit"
)
# The time in a file's name: UTC, ISO 8601 order, '-' between the time's fields.
_STAMP = "%Y-%m-%dT%H-%M-%SZ"
# After the time when the name is taken: _0001, _0002, … ('_' sorts after '.').
_COUNTER = "_{:04d}"


@dataclass(frozen=True, slots=True)
class Rotation:
    """When to start a new file: at ``size`` bytes, or every ``seconds`` (one of them)."""

    text: str  # as given
    size: int | None = None
    seconds: int | None = None


def parse_rotation(text: str) -> Rotation:
    """``--rotate``'s value: a size (``100M``) or a time (``1h``); ValueError otherwise."""
    match = _ROTATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"--rotate {text!r}: not {_USAGE}")
    number, unit = int(match.group(1)), match.group(2)
    if number <= 0:
        raise ValueError(f"--rotate {text!r}: must be more than 0 ({_USAGE})")
    if unit in _SIZE_UNITS:
        return Rotation(text, size=number * _SIZE_UNITS[unit])
    if unit in _TIME_UNITS:
        return Rotation(text, seconds=number * _TIME_UNITS[unit])
    raise ValueError(f"--rotate {text!r}: unknown unit {unit!r} ({_USAGE})")


def stamp(ts_ns: int) -> str:
    """The UTC time in a file's name: ``2026-12-02T04-00-00Z``."""
    seconds = ts_ns // 1_000_000_000
    try:
        return time.strftime(_STAMP, time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):  # out of the platform's range
        return f"{seconds}s"


def rotated_name(path: str, ts_ns: int, counter: int = 0) -> str:
    """The name of the file that starts at ``ts_ns``: ``out.ndjson`` ->
    ``out.2026-12-02T04-00-00Z.ndjson`` (``counter``: ``…Z_0001.ndjson``)."""
    folder, base = os.path.split(path)
    stem, ext = os.path.splitext(base)
    if not stem:  # ".ndjson": a name that is only an extension
        stem, ext = ext, ""
    tail = _COUNTER.format(counter) if counter else ""
    return os.path.join(folder, f"{stem}.{stamp(ts_ns)}{tail}{ext}")


def _free_name(path: str, ts_ns: int) -> str:
    """The first of :func:`rotated_name`'s names for ``ts_ns`` that names no file yet."""
    counter = 0
    while True:
        name = rotated_name(path, ts_ns, counter)
        if not os.path.lexists(name):
            return name
        counter += 1


class _Counted:
    """A text stream that counts the bytes (UTF-8) written through it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text) if text.isascii() else len(text.encode("utf-8"))
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@dataclass(frozen=True, slots=True)
class _Attrs:
    """The run's counts and error lines, for the last Parquet file's metadata."""

    stats: Mapping[str, int] | None
    errors: Mapping[str, Sequence[str]] | None
    by_capture: Mapping[str, Mapping[str, int]] | None


class _File:
    """One file of the series: its output (temporary until committed) and its writer."""

    def __init__(
        self,
        series: str,
        start_ns: int,
        fmt: str,
        group_rows: int,
        group_seconds: float,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        from .rows import row
        from .text import CsvWriter, NdjsonWriter

        self.series = series  # -o's value
        self.start_ns = start_ns  # the time in its name
        name = _free_name(series, start_ns)
        self.output = AtomicOutput(name)
        self.rows = 0
        self.row = row
        self.counted: _Counted | None = None
        self.text: NdjsonWriter | CsvWriter | None = None
        self.parquet: ParquetStream | None = None
        try:
            if fmt == "parquet":
                self.output.release()
                self.parquet = ParquetStream(
                    self.output.write_path,
                    group_rows=group_rows,
                    group_seconds=group_seconds,
                    label=name,
                    provenance=provenance,
                )
            else:
                self.counted = _Counted(self.output.text())
                stream = cast(TextIO, self.counted)
                self.text = NdjsonWriter(stream) if fmt == "ndjson" else CsvWriter(stream)
        except BaseException:
            self.output.discard()
            raise

    @property
    def name(self) -> str:
        return self.output.path

    @property
    def size(self) -> int:
        if self.counted is not None:
            return self.counted.bytes
        assert self.parquet is not None
        return self.parquet.bytes_written

    def add(self, capture: str, h: Handshake, flush: bool) -> None:
        self.rows += 1
        if self.text is not None:
            self.text.write(self.row(h, capture))
            if flush:
                self.text.out.flush()
        else:
            assert self.parquet is not None
            self.parquet.add(capture, h)

    def commit(self, attrs: _Attrs | None) -> str:
        """Close and give the file its name (a free one, should another file have taken
        it since it was opened); that name."""
        if self.text is not None:
            self.text.close()
        if self.parquet is not None:
            if attrs is None:
                self.parquet.close()
            else:
                self.parquet.close(
                    stats=attrs.stats, errors=attrs.errors, stats_by_capture=attrs.by_capture
                )
        output = self.output
        if os.path.lexists(output.target):  # taken meanwhile (another process): never replaced
            output.target = output.path = _free_name(self.series, self.start_ns)
        output.commit()
        return output.path

    def discard(self) -> None:
        if self.parquet is not None:
            self.parquet.abort()
        self.output.discard()


class RotatingWriter:
    """Rows in a series of files (see the module's docstring).

    ``path``: ``-o``'s value, a regular file's name (it is never written itself);
    ``fmt``: ndjson, csv or parquet; ``start_ns``: the run's start on the caller's clock
    (the capture clock: ns since the epoch), which names the first file. The first file is
    opened now, so that an output that cannot be written is refused before reading
    (:class:`OutputError`). ``flush``: flush ndjson and CSV after each record (a live run:
    each record on disk as it completes). ``group_rows`` / ``group_seconds``: Parquet's row
    groups (:class:`~alpnsniff.sinks.parquet_stream.ParquetStream`); ``provenance``: every
    Parquet file's (:func:`~alpnsniff.sinks.provenance.run_provenance`).
    """

    def __init__(
        self,
        path: str,
        fmt: str,
        rotation: Rotation,
        *,
        start_ns: int,
        flush: bool = True,
        group_rows: int = GROUP_ROWS,
        group_seconds: float = GROUP_SECONDS,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"--rotate writes {', '.join(FORMATS)}, not {fmt}")
        if path == "-":
            raise OutputError("--rotate needs -o FILE (a series of files), not stdout")
        try:
            st: os.stat_result | None = os.stat(path)
        except OSError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{path}: --rotate needs -o FILE to name a regular file")
        self.path = path
        self.fmt = fmt
        self.rotation = rotation
        self.flush = flush
        self.group_rows = group_rows
        self.group_seconds = group_seconds
        self.provenance = provenance  # every Parquet file's (sinks/provenance.py)
        self.records = 0  # rows written, all files
        self.paths: list[str] = []  # the files committed, in order
        self._slot_ns = None if rotation.seconds is None else rotation.seconds * 1_000_000_000
        self._now_ns = start_ns  # the clock: the latest time seen
        self._file: _File | None = self._open(start_ns)
        self._slot = self._slot_of(start_ns)
        self._closed = False

    @property
    def files_written(self) -> int:
        """Files committed so far."""
        return len(self.paths)

    @property
    def current(self) -> str | None:
        """The name the file being written will have (None: none open)."""
        return None if self._file is None else self._file.name

    def _slot_of(self, ts_ns: int) -> int | None:
        return None if self._slot_ns is None else ts_ns // self._slot_ns

    def _open(self, ts_ns: int) -> _File:
        start = ts_ns if self._slot_ns is None else ts_ns - ts_ns % self._slot_ns
        return _File(
            self.path, start, self.fmt, self.group_rows, self.group_seconds, self.provenance
        )

    def _finish(self, last: _Attrs | None = None) -> None:
        """The open file committed if it holds a row (or it is the run's last and only
        one), else removed. ``last``: the run ends."""
        file, self._file = self._file, None
        if file is None:
            return
        if file.rows or (last is not None and not self.paths):
            self.paths.append(file.commit(last))
        else:
            file.discard()

    def _advance(self, now_ns: int) -> None:
        """The clock moves to ``now_ns`` (never back): a slot that ends closes its file."""
        if now_ns <= self._now_ns:
            return
        self._now_ns = now_ns
        slot = self._slot_of(now_ns)
        if slot != self._slot:
            self._slot = slot
            self._finish()

    def add(self, capture: str, h: Handshake) -> None:
        """One record (``capture``: the ``capture`` column's value), its ``ts`` the clock."""
        if self._closed:
            raise ValueError(f"{self.path}: the rotating writer is closed")
        self._advance(h.ts_ns)
        file = self._file
        if file is None:
            file = self._file = self._open(self._now_ns)
        file.add(capture, h, self.flush)
        self.records += 1
        size = self.rotation.size
        if size is not None and file.size >= size:
            self._finish()

    def tick(self, now_ns: int) -> None:
        """The caller's clock (no record needed): ends a time slot, and writes Parquet's
        waiting rows as a row group when their time has come."""
        if self._closed:
            return
        self._advance(now_ns)
        file = self._file
        if file is not None and file.parquet is not None:
            file.parquet.tick(now_ns)
            size = self.rotation.size
            if size is not None and file.rows and file.size >= size:
                self._finish()

    def close(
        self,
        *,
        stats: Mapping[str, int] | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
        stats_by_capture: Mapping[str, Mapping[str, int]] | None = None,
    ) -> list[str]:
        """Commit the file being written (a run without any record: one empty file); the
        files written, in order. ``stats``, ``errors``, ``stats_by_capture``: the run's
        counts, for the last Parquet file's metadata (``df.attrs``)."""
        if self._closed:
            return self.paths
        self._closed = True
        if self._file is None and not self.paths:
            self._file = self._open(self._now_ns)
        self._finish(_Attrs(stats, errors, stats_by_capture))
        return self.paths

    def abort(self) -> None:
        """Remove the file being written (a failed run); those committed stay."""
        self._closed = True
        file, self._file = self._file, None
        if file is not None:
            file.discard()
