"""The DataFrame and Parquet sinks: the only modules that import pandas / pyarrow.

Both type the columns of :data:`~alpnsniff.records.COLUMN_TABLE` by their
:class:`~alpnsniff.records.Kind` (the table in its docstring says how). The dtypes are fixed
by the table, never inferred from the data, so that every read — an empty one included — has
the same dtypes and ``pd.concat`` of reads keeps them.

The Parquet file carries the pandas metadata (written here, without importing pandas) so
that ``pd.read_parquet`` gives back the DataFrame's dtypes, and the run's counts and error
lines as JSON under the schema metadata key ``alpnsniff`` (:data:`ATTRS_KEY`), which
:func:`read_parquet` (``alpnsniff.load``) puts back in ``df.attrs``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from ..records import COLUMN_TABLE, Column, Handshake, Kind, Selection
from .rows import COLUMNS, derive_column, value_getter

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SELECTION_VALUES = [s.value for s in Selection]

# The schema metadata key of the run's counts and errors (``df.attrs``), as JSON.
ATTRS_KEY = b"alpnsniff"
# The attrs a read carries, in this order: totals, {capture: counts}, {capture: lines},
# and where the rows came from (sinks/provenance.py: the captures, their hashes, the version).
ATTRS = ("stats", "stats_by_capture", "errors", "provenance")

# Per column: its name, its value_getter (None: the capture), its derivation.
_PLAN: tuple[
    tuple[str, Callable[[Handshake], Any] | None, Callable[[list[Any]], list[Any]] | None], ...
] = tuple((c.name, value_getter(c), derive_column(c)) for c in COLUMN_TABLE)


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


def _check_categories(column: Column, values: Iterable[Any]) -> None:
    """A value outside a closed set is an error (a fixed Categorical would make it NaN)."""
    unknown = set(values) - set(column.categories) - {None}
    if unknown:
        raise ValueError(
            f"column {column.name}: {sorted(map(str, unknown))} not among its categories "
            f"{list(column.categories)} (records.COLUMN_TABLE)"
        )


def pandas_dtype(column: Column) -> Any:
    """The pandas dtype of a column (the same for every read: see :class:`Kind`)."""
    import pandas as pd

    kind = column.kind
    if kind is Kind.TIMESTAMP:
        return pd.DatetimeTZDtype("ns", "UTC")
    if kind is Kind.INT:
        return pd.Int64Dtype() if column.nullable else "int64"
    if kind is Kind.BOOL:
        return pd.BooleanDtype() if column.nullable else "bool"
    if kind is Kind.STR:
        return pd.StringDtype()
    if kind in (Kind.CATEGORY, Kind.SELECTION):
        return pd.CategoricalDtype(list(column.categories), ordered=False)
    if kind in (Kind.LIST_STR, Kind.LIST_INT):
        return "object"
    raise AssertionError(f"column {column.name}: no pandas dtype for {kind}")


def _series(column: Column, values: Any) -> pd.Series:
    """One typed column from its raw values (``ts``: ns since the epoch), or from a pandas
    column or array (:func:`read_parquet`; a categorical one already checked)."""
    import pandas as pd

    kind = column.kind
    if kind is Kind.TIMESTAMP:
        ts: pd.Series = pd.to_datetime(pd.Series(values, dtype="int64"), unit="ns", utc=True)
        return ts
    if kind in (Kind.CATEGORY, Kind.SELECTION):
        if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
            return values.astype(pandas_dtype(column))
        _check_categories(column, values)
        return pd.Series(pd.Categorical(values, dtype=pandas_dtype(column)))
    if kind in (Kind.LIST_STR, Kind.LIST_INT):
        return pd.Series(list(values), dtype=object)  # one list per cell
    out: pd.Series = pd.Series(values, dtype=pandas_dtype(column))
    return out


def frame_from_columns(data: Mapping[str, Any]) -> pd.DataFrame:
    """The DataFrame of :func:`columns`' lists: every column typed as the table says."""
    import pandas as pd

    return pd.DataFrame({c.name: _series(c, data[c.name]) for c in COLUMN_TABLE})


def to_dataframe(items: Iterable[tuple[str, Handshake]]) -> pd.DataFrame:
    """Tidy DataFrame: one row per handshake, columns as in :data:`COLUMNS`."""
    return frame_from_columns(columns(items))


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
    if kind is Kind.STR:
        return pa.string()
    if kind in (Kind.CATEGORY, Kind.SELECTION):
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


def _pandas_column(column: Column) -> dict[str, Any]:
    """The pandas metadata of a column, as pyarrow writes it for the DataFrame's dtype."""
    kind = column.kind
    meta: dict[str, Any] | None = None
    if kind is Kind.TIMESTAMP:
        pandas_type, numpy_type, meta = "datetimetz", "datetime64[ns]", {"timezone": "UTC"}
    elif kind is Kind.INT:
        pandas_type, numpy_type = "int64", "Int64" if column.nullable else "int64"
    elif kind is Kind.BOOL:
        pandas_type, numpy_type = "bool", "boolean" if column.nullable else "bool"
    elif kind is Kind.STR:
        pandas_type, numpy_type = "unicode", "string"
    elif kind in (Kind.CATEGORY, Kind.SELECTION):
        pandas_type, numpy_type = "categorical", f"int{column.bits}"
        meta = {"num_categories": len(column.categories), "ordered": False}
    elif kind is Kind.LIST_STR:
        pandas_type, numpy_type = "list[unicode]", "object"
    else:
        assert kind is Kind.LIST_INT, kind
        pandas_type, numpy_type = f"list[int{column.bits}]", "object"
    return {
        "name": column.name,
        "field_name": column.name,
        "pandas_type": pandas_type,
        "numpy_type": numpy_type,
        "metadata": meta,
    }


def pandas_metadata(attrs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``pandas`` schema metadata: the DataFrame's dtypes (a RangeIndex) and its attrs."""
    from .. import __version__

    return {
        "index_columns": [],
        "column_indexes": [],
        "columns": [_pandas_column(c) for c in COLUMN_TABLE],
        "attributes": dict(attrs or {}),
        "creator": {"library": "alpnsniff", "version": __version__},
    }


def parquet_schema(attrs: Mapping[str, Any] | None = None) -> pa.Schema:
    """The Parquet schema: the table's columns, in its order, with :func:`arrow_type`, and
    the metadata: ``pandas`` (dtypes, attrs) and ``alpnsniff`` (the attrs, as JSON)."""
    import pyarrow as pa

    meta = {b"pandas": json.dumps(pandas_metadata(attrs)).encode()}
    meta[ATTRS_KEY] = json.dumps(dict(attrs or {})).encode()
    return pa.schema([(c.name, arrow_type(c)) for c in COLUMN_TABLE], metadata=meta)


def _dictionary_array(column: Column, values: list[Any], type_: pa.DataType) -> pa.Array:
    """Values as indices into the column's every category (the dictionary, in order)."""
    import pyarrow as pa

    _check_categories(column, values)
    index = {v: i for i, v in enumerate(column.categories)}
    indices = pa.array([None if v is None else index[v] for v in values], type_.index_type)
    return pa.DictionaryArray.from_arrays(indices, pa.array(column.categories, pa.string()))


def arrow_table(data: Mapping[str, list[Any]], attrs: Mapping[str, Any] | None = None) -> pa.Table:
    """The Arrow table of :func:`columns`' lists, with its schema's metadata."""
    import pyarrow as pa

    schema = parquet_schema(attrs)
    arrays = []
    for c, f in zip(COLUMN_TABLE, schema, strict=True):
        values = data[c.name]
        if c.kind in (Kind.CATEGORY, Kind.SELECTION):
            arrays.append(_dictionary_array(c, values, f.type))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def run_metadata(
    stats: Mapping[str, int] | None = None,
    stats_by_capture: Mapping[str, Mapping[str, int]] | None = None,
    errors: Mapping[str, Sequence[str]] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``df.attrs`` of a run: those given, as plain dicts and lists (JSON-ready)."""
    out: dict[str, Any] = {}
    if stats is not None:
        out["stats"] = {k: int(v) for k, v in stats.items()}
    if stats_by_capture is not None:
        out["stats_by_capture"] = {
            name: {k: int(v) for k, v in counts.items()}
            for name, counts in stats_by_capture.items()
        }
    if errors is not None:
        out["errors"] = {name: list(lines) for name, lines in errors.items()}
    if provenance is not None:
        out["provenance"] = json.loads(json.dumps(provenance))  # a plain, JSON-ready copy
    return out


def write_parquet(
    items: Iterable[tuple[str, Handshake]],
    path: str | os.PathLike[str],
    *,
    stats: Mapping[str, int] | None = None,
    errors: Mapping[str, Sequence[str]] | None = None,
    stats_by_capture: Mapping[str, Mapping[str, int]] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> int:
    """Parquet with typed columns (lists as list<string>, ts as timestamp[ns, UTC]); the
    number of rows written.

    ``stats`` (the run's counts), ``errors`` ({capture: lines}), ``stats_by_capture``
    ({capture: counts}) and ``provenance`` (:func:`~alpnsniff.sinks.provenance.
    run_provenance`: the captures, their size and SHA-256, alpnsniff's version) are kept in
    the schema metadata (key ``alpnsniff``, JSON; also the pandas metadata's attrs):
    :func:`read_parquet` and ``pd.read_parquet`` give them back as ``df.attrs``. Plain
    pyarrow reads the file as any other.
    """
    import pyarrow.parquet as pq

    attrs = run_metadata(stats, stats_by_capture, errors, provenance)
    table = arrow_table(columns(items), attrs)
    pq.write_table(table, path)
    return int(table.num_rows)


def read_parquet(path: str | os.PathLike[str] | BinaryIO) -> pd.DataFrame:
    """The DataFrame of :func:`write_parquet`'s file, as ``alpnsniff.read`` gave it: the
    same dtypes, lists as lists, and ``df.attrs`` (stats, stats_by_capture, errors,
    provenance).

    Also reads a file that ``df.to_parquet`` wrote from such a DataFrame (its attrs are the
    pandas metadata's). Raises ValueError when a column of the table is missing.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    missing = [name for name in COLUMNS if name not in table.column_names]
    if missing:
        raise ValueError(f"{_name(path)}: not an alpnsniff table: no column {', '.join(missing)}")
    data: dict[str, Any] = {}
    for c in COLUMN_TABLE:
        col = table.column(c.name)
        kind = c.kind
        if kind is Kind.TIMESTAMP:
            data[c.name] = col.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
        elif kind in (Kind.CATEGORY, Kind.SELECTION):
            _check_categories(c, col.unique().to_pylist())
            data[c.name] = col.to_pandas()
        elif kind is Kind.STR or (kind in (Kind.INT, Kind.BOOL) and c.nullable):
            # (from Arrow straight to the extension array: exact, no float or object detour)
            data[c.name] = pandas_dtype(c).__from_arrow__(col)
        elif kind in (Kind.INT, Kind.BOOL) and col.null_count == 0:
            data[c.name] = col.to_numpy()
        else:  # lists (read gives lists, not arrays; a null list: None)
            data[c.name] = col.to_pylist()
    df = frame_from_columns(data)
    meta = table.schema.metadata or {}
    attrs: Any = None
    if ATTRS_KEY in meta:
        attrs = json.loads(meta[ATTRS_KEY])
    elif b"pandas" in meta:
        attrs = json.loads(meta[b"pandas"]).get("attributes")
    if isinstance(attrs, dict):
        df.attrs.update({k: attrs[k] for k in ATTRS if k in attrs})
    return df


def _name(path: object) -> str:
    if isinstance(path, str | os.PathLike):
        return os.fsdecode(path)
    name = getattr(path, "name", None)
    return name if isinstance(name, str) else "<stream>"
