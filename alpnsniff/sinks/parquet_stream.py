"""Parquet written as the records come: one row group at a time.

:class:`ParquetStream` buffers the records it is given (:meth:`ParquetStream.add`) and
writes them as a row group (:class:`pyarrow.parquet.ParquetWriter`) every ``group_rows``
records, or when :meth:`ParquetStream.tick` finds ``group_seconds`` gone since the last
group (time is passed in: the caller's clock); :meth:`ParquetStream.close` writes what is
left and the footer. At most one row group is held in memory.

The file is the one :func:`alpnsniff.sinks.frame.write_parquet` writes for the same records:
the same schema (:func:`~alpnsniff.sinks.frame.parquet_schema`), the same columns
(:func:`~alpnsniff.sinks.frame.columns`, :func:`~alpnsniff.sinks.frame.arrow_table`), the
pandas metadata, and the run's counts and error lines: these are known only at the end, so
:meth:`ParquetStream.close` puts them in the footer's key-value metadata (``pandas`` and
``alpnsniff``, replacing those the schema carried when the file was opened). Read back with
:func:`alpnsniff.load` it equals ``alpnsniff.read``'s DataFrame of the same records; with
``pd.read_parquet`` it has the same dtypes.

A file whose writer was never closed (the process killed) has no footer and cannot be read:
write it to a temporary name and rename it once closed (:class:`~alpnsniff.sinks.output.
AtomicOutput`, as the CLI does).
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..records import Handshake
from .frame import arrow_table, columns, parquet_schema, run_metadata
from .output import OutputError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

# Records per row group (10,000 rows of this table: some 1-2 MB in memory, a few hundred KB
# on disk) and the most seconds a record waits for its group on a quiet link.
GROUP_ROWS = 10_000
GROUP_SECONDS = 10.0


class ParquetStream:
    """A Parquet file written in row groups (see the module's docstring).

    ``path``: the file to write (it is created now). ``label``: its name in error messages
    (an :class:`~alpnsniff.sinks.output.AtomicOutput`'s ``path`` when ``path`` is its
    temporary name). ``provenance``: where the rows come from
    (:func:`~alpnsniff.sinks.provenance.run_provenance`), in the metadata from the start. A
    write error is an :class:`OutputError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        group_rows: int = GROUP_ROWS,
        group_seconds: float = GROUP_SECONDS,
        label: str | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        import pyarrow.parquet as pq

        if group_rows < 1:
            raise ValueError(f"group_rows {group_rows}: at least 1")
        if not group_seconds > 0:
            raise ValueError(f"group_seconds {group_seconds}: more than 0")
        self.path = os.fspath(path)
        self.label = label or self.path
        self.group_rows = group_rows
        self.group_ns = int(group_seconds * 1e9)
        self.rows = 0  # rows written in row groups
        self.row_groups = 0
        self._buffer: list[tuple[str, Handshake]] = []
        self._last_group_ns: int | None = None  # the caller's time of the last group
        # where the rows come from (sinks/provenance.py): known at the start, so in the
        # schema from the first row group on, and kept in the footer's metadata
        self.provenance = provenance
        self._schema = parquet_schema(run_metadata(provenance=provenance))
        try:
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self.path, self._schema)
        except OSError as err:
            raise self._fail(err) from None

    def _fail(self, err: OSError) -> OutputError:
        return OutputError(f"cannot write to {self.label}: {err.strerror or err}")

    @property
    def buffered(self) -> int:
        """Records waiting for their row group."""
        return len(self._buffer)

    @property
    def bytes_written(self) -> int:
        """The file's size as it stands (the row groups written; no footer yet)."""
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def add(self, capture: str, h: Handshake) -> None:
        """One record (``capture``: the ``capture`` column's value); a row group is written
        when ``group_rows`` records wait."""
        if self._writer is None:
            raise ValueError(f"{self.label}: closed")
        self._buffer.append((capture, h))
        if len(self._buffer) >= self.group_rows:
            self.flush()

    def tick(self, now_ns: int) -> bool:
        """The caller's time: the records waiting are written as a row group when
        ``group_seconds`` have gone since the last group (or since the first tick);
        whether a group was written."""
        last = self._last_group_ns
        if last is None:
            self._last_group_ns = now_ns
            return False
        if self._buffer and now_ns - last >= self.group_ns:
            self.flush()
            self._last_group_ns = now_ns
            return True
        if not self._buffer:  # nothing waits: the next record's wait starts afresh
            self._last_group_ns = now_ns
        return False

    def flush(self) -> None:
        """Write the records waiting as one row group (none waiting: nothing)."""
        writer = self._writer
        if not self._buffer or writer is None:
            return
        table = arrow_table(columns(self._buffer))
        self._buffer = []
        try:
            writer.write_table(table, row_group_size=table.num_rows)
        except OSError as err:
            raise self._fail(err) from None
        self.rows += table.num_rows
        self.row_groups += 1

    def close(
        self,
        *,
        stats: Mapping[str, int] | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
        stats_by_capture: Mapping[str, Mapping[str, int]] | None = None,
    ) -> int:
        """Write what waits and the footer, with the run's counts and error lines (as
        :func:`~alpnsniff.sinks.frame.write_parquet` keeps them); the rows written."""
        writer = self._writer
        if writer is None:
            return self.rows
        try:
            self.flush()
            attrs = run_metadata(stats, stats_by_capture, errors, self.provenance)
            if attrs:
                writer.add_key_value_metadata(_footer_metadata(parquet_schema(attrs)))
            self._writer = None
            writer.close()
        except OSError as err:
            raise self._fail(err) from None
        return self.rows

    def abort(self) -> None:
        """Close the file, the records waiting left out (a caller that renames on success
        removes the file: :meth:`AtomicOutput.discard`)."""
        writer, self._writer = self._writer, None
        self._buffer = []
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()


# Where pyarrow keeps the Arrow schema in a Parquet file's key-value metadata: the schema
# serialized as an Arrow IPC message, base64 (what ParquetWriter stores, byte for byte). A
# reader takes the schema's metadata from it, so replacing the ``pandas`` and ``alpnsniff``
# keys alone would not be seen.
ARROW_SCHEMA_KEY = b"ARROW:schema"


def _footer_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    """The footer's key-value metadata for ``schema``: its own metadata and the Arrow schema
    that carries it."""
    meta = dict(schema.metadata or {})
    meta[ARROW_SCHEMA_KEY] = base64.b64encode(schema.serialize().to_pybytes())
    return meta
