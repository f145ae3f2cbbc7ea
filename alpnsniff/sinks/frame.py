"""The DataFrame and Parquet sinks: the only modules that import pandas / pyarrow.

Both type the columns of :data:`~alpnsniff.records.COLUMN_TABLE` by their
:class:`~alpnsniff.records.Kind` (the table in its docstring says how).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

from ..records import COLUMN_TABLE, Column, Handshake, Kind, Selection
from .rows import COLUMNS, derive_column, field_path

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SELECTION_VALUES = [s.value for s in Selection]


# Per column: its name, the getter of its field_path (None: the capture), its derivation.
_PLAN: tuple[
    tuple[str, Callable[[Handshake], Any] | None, Callable[[list[Any]], list[Any]] | None], ...
] = tuple(
    (c.name, None if (path := field_path(c)) is None else attrgetter(path), derive_column(c))
    for c in COLUMN_TABLE
)


def columns(items: Iterable[tuple[str, Handshake]]) -> dict[str, list[Any]]:
    """Column lists (raw Python values, ``ts`` in ns) for ``(capture, record)`` pairs."""
    pairs = list(items)
    captures = [c for c, _ in pairs]
    hs = [h for _, h in pairs]
    out: dict[str, list[Any]] = {}
    for name, get, derive in _PLAN:
        if get is None:  # Derive.CAPTURE
            out[name] = captures
        else:
            values = list(map(get, hs))
            out[name] = values if derive is None else derive(values)
    return out


def to_dataframe(items: Iterable[tuple[str, Handshake]]) -> pd.DataFrame:
    """Tidy DataFrame: one row per handshake, columns as in :data:`COLUMNS`."""
    import pandas as pd

    data = columns(items)
    df = pd.DataFrame(data, columns=list(COLUMNS))
    for c in COLUMN_TABLE:
        name, kind = c.name, c.kind
        if kind is Kind.TIMESTAMP:
            df[name] = pd.to_datetime(pd.Series(data[name], dtype="int64"), unit="ns", utc=True)
        elif kind is Kind.INT:
            dtype: Literal["Int64", "int64"] = "Int64" if c.nullable else "int64"
            if df[name].dtype != dtype:  # pandas infers int64 from ints: no copy then
                df[name] = df[name].astype(dtype)
        elif kind is Kind.SELECTION:
            df[name] = pd.Categorical(df[name], categories=SELECTION_VALUES)
        elif kind is Kind.CATEGORY:
            df[name] = df[name].astype("category")
        elif kind is Kind.BOOL and df[name].dtype != bool:  # inferred from bools, not from []
            df[name] = df[name].astype(bool)
        # STR: as pandas infers it; LIST_STR, LIST_INT: object columns of lists
    return df


def arrow_type(column: Column) -> pa.DataType:
    """The Parquet (Arrow) type of a column."""
    import pyarrow as pa

    kind = column.kind
    if kind is Kind.TIMESTAMP:
        return pa.timestamp("ns", tz="UTC")
    if kind is Kind.INT:
        return _arrow_int(column)
    if kind is Kind.BOOL:
        return pa.bool_()
    if kind in (Kind.STR, Kind.CATEGORY):
        return pa.string()
    if kind is Kind.SELECTION:
        return pa.dictionary(_arrow_int(column), pa.string())
    if kind is Kind.LIST_STR:
        return pa.list_(pa.string())
    if kind is Kind.LIST_INT:
        return pa.list_(_arrow_int(column))
    raise AssertionError(f"column {column.name}: no Arrow type for {kind}")


def _arrow_int(column: Column) -> pa.DataType:
    import pyarrow as pa

    bits = column.bits
    if bits == 8:
        return pa.int8()
    if bits == 16:
        return pa.int16()
    if bits == 32:
        return pa.int32()
    if bits == 64:
        return pa.int64()
    raise AssertionError(f"column {column.name}: {bits} bits")


def parquet_schema() -> pa.Schema:
    """The Parquet schema: the table's columns, in its order, with :func:`arrow_type`."""
    import pyarrow as pa

    return pa.schema([(c.name, arrow_type(c)) for c in COLUMN_TABLE])


def write_parquet(items: Iterable[tuple[str, Handshake]], path: str) -> int:
    """Parquet with typed columns (lists as list<string>, ts as timestamp[ns, UTC])."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = columns(items)
    schema = parquet_schema()
    arrays = []
    for c, f in zip(COLUMN_TABLE, schema, strict=True):
        values = data[c.name]
        if c.kind is Kind.SELECTION:
            arrays.append(pa.array(values, pa.string()).dictionary_encode().cast(f.type))
        else:
            arrays.append(pa.array(values, f.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    pq.write_table(table, path)
    return int(table.num_rows)
