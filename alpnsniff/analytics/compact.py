"""A handshake DataFrame in less memory, for the analyses of millions of rows.

``alpnsniff.read`` gives every column the dtype the column table fixes: list columns hold
Python lists (about 90 bytes a row each, before the strings in them) and text columns
pandas' ``string`` (one Python string a row). :func:`compact` stores the same values as

- Arrow lists (``pd.ArrowDtype(list<string>)``) for the
  list columns (``list<int<bits>>`` for the integer lists, as in Parquet): one buffer of
  values and one of offsets per column, no Python object a row;
- ``category`` for the text columns whose values repeat (server names, addresses, the
  capture, versions, the community id of a connection seen twice…), chosen by how many
  distinct values a column holds, never by its name.

Every function of :mod:`alpnsniff.analytics` gives the same results on the compact frame
(tested, ``bench/analytics_bench.py`` measures both). ``df.attrs`` is kept. The values are
the same, their types are not: a list cell is a numpy array of strings, as ``pd.read_parquet``
gives it, and a text column's missing value is NaN in a categorical, ``<NA>`` before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import COLUMN_TABLE, Kind

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["compact"]

# A text column becomes a categorical when it has at most this share of distinct values
# (a column of distinct values is smaller as strings than as codes beside its categories).
CATEGORY_MAX_DISTINCT_SHARE = 0.5


def compact(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with Arrow list columns and categorical text columns (a new DataFrame;
    ``df`` is not changed). Columns alpnsniff does not know, and those already compact,
    are left as they are."""
    import pandas as pd
    import pyarrow as pa

    items = {
        c.name: pa.string() if c.kind is Kind.LIST_STR else getattr(pa, f"int{c.bits or 64}")()
        for c in COLUMN_TABLE
        if c.kind in (Kind.LIST_STR, Kind.LIST_INT)
    }
    out = df.copy(deep=False)
    for name in df.columns:
        column = df[name]
        item = items.get(name)
        if item is not None and column.dtype == object:
            arrow = pa.array(column, type=pa.list_(item), from_pandas=True)
            out[name] = pd.Series(arrow, dtype=pd.ArrowDtype(arrow.type), index=df.index)
        elif isinstance(column.dtype, pd.StringDtype) and len(column):
            distinct = column.nunique(dropna=True)
            if distinct <= CATEGORY_MAX_DISTINCT_SHARE * len(column):
                out[name] = column.astype("category")
    out.attrs = dict(df.attrs)
    return out
