r"""Who offers and who selects which ALPN protocol: shares, outcomes and time series over the
handshake DataFrame (:func:`alpnsniff.read`), as tidy DataFrames with named columns.

The counting rules, the same in every function:

- A **ClientHello is counted** when it was seen: ``alpn_offered`` not null. A row of a
  one-sided capture (the server's answer alone) is a handshake, and its selection counts,
  but it has no offer and is never counted as "no ALPN".
- **ECH**: a ClientHello that carries ECH (``ech``, real or GREASE ECH: they look alike on
  the wire) is left out of everything that counts the client's offer unless
  ``include_ech=True`` (its real offer is in the encrypted inner hello; the outer one may be
  a decoy). The functions without ``include_ech`` that read the offer (:func:`honoured`,
  :func:`preference`, :func:`timeline` of offers) always leave them out. Every result says in
  ``.attrs["left_out_ech"]`` how many rows it left out (an int); the results built on the
  server's selection alone (:func:`selection_share`, :func:`outcomes`, the timeline of
  selections) leave none out and say 0: the server's answer is a fact whatever the offer.
- **GREASE** ALPN IDs (RFC 8701 §3: the 16 two-octet IDs 0x0A0A, 0x1A1A … 0xFAFA, tested by
  :func:`alpnsniff.tls.alpn.is_grease_alpn`) are never protocols: not offered, not ranked,
  not a first choice. They are told by their octets, from ``alpn_offered_hex`` when the frame
  has it, else by un-escaping the text (exact too: the escaping is one-to-one). Their text is
  not always escaped: 0x3A3A is ``::``, 0x5A5A ``ZZ``, 0x0A0A ``\x0a\x0a``.
- A ClientHello **offering the same ID twice** counts once; an ID's ``rank`` is its place
  among the client's distinct non-GREASE IDs, where it first appears (``[h2, ZZ, h2,
  http/1.1]``: h2 1, http/1.1 2).
- A counted ClientHello offering **no protocol** (no ALPN extension, or GREASE IDs only) is
  counted under ``(no ALPN)`` (:data:`NO_ALPN`) in the offer shares and the offer timeline,
  so that a group's shares with ``first=True`` sum to 1 and the shares without ``by`` are the
  CLI summary's (``alpnsniff read``: column "ECH left out", ``--include-ech`` "ECH counted").
  No ALPN ID can read ``(no ALPN)``: its space would be escaped (``\x20``).
- A **known choice**: ``selection`` visible or decrypted and ``alpn_selected`` not null.
  A server that selects a GREASE ID (which RFC 8701 forbids) is counted under that ID: the
  GREASE rule is about offers.
- ``by``: a column name or a list of them (``sni``, ``server_ip``, ``client_ip``,
  ``server_port``, ``transport``, ``quic_version``, ``capture``, …). Only observed groups:
  a group with nothing counted gives no rows, and categorical columns never expand into
  unobserved categories. A null key (no SNI) is a group of its own, not dropped.
- Shares are fractions in [0, 1]. Rows are sorted by group (in the keys' sorted order, nulls
  last), then count (largest first), then protocol (its text, code-point order).

Protocols are the escaped text of ``alpn_offered`` / ``alpn_selected`` (pandas ``string``);
the text is still chosen by whoever sent the packet: escape it again for HTML.

How: each call turns the counted rows' ``alpn_offered`` (and ``alpn_offered_hex``) lists into
one Arrow list array, flattens it once and dictionary-encodes the IDs, then counts integer
codes with numpy; no Python loop runs per row (one per distinct ID, to test GREASE). On 1M
rows each function takes about a second on a 2-core machine (``bench/analytics_bench.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.tseries.frequencies import to_offset

from ..records import Selection
from ..sinks.summary import NO_ALPN
from ..tls.alpn import is_grease_alpn

__all__ = [
    "MAX_TIMELINE_ROWS",
    "NO_ALPN",
    "Of",
    "compare",
    "counted_client_hellos",
    "honoured",
    "known_choice",
    "offer_share",
    "offers",
    "outcomes",
    "preference",
    "selection_share",
    "timeline",
]

By = str | Sequence[str] | None
Of = Literal["offered", "selected"]

# The selections whose ALPN choice is known: seen in the clear or decrypted.
KNOWN_SELECTIONS = (Selection.VISIBLE.value, Selection.DECRYPTED.value)
SELECTION_VALUES = tuple(s.value for s in Selection)
# A timeline is dense (every period × every protocol seen); beyond this many rows the ``freq``
# is far too fine for the capture's span (a day at 1 s with 60 protocols is 5M rows):
# refused rather than allocated.
MAX_TIMELINE_ROWS = 5_000_000

_ESCAPE = re.compile(r"\\x([0-9a-f]{2})")
_OFFER_COLUMNS = ("protocol", "client_hellos", "share")


def counted_client_hellos(df: pd.DataFrame, *, include_ech: bool = False) -> pd.Series:
    """The rows the offer counts count (bool, ``df``'s index): the ClientHello seen
    (``alpn_offered`` not null), and without ECH unless ``include_ech``."""
    mask, _ = _counted_mask(df, include_ech)
    return pd.Series(mask, index=df.index, name="counted")


def known_choice(df: pd.DataFrame) -> pd.Series:
    """The rows whose ALPN choice is known (bool, ``df``'s index): ``selection`` visible or
    decrypted, ``alpn_selected`` not null."""
    return pd.Series(_known_mask(df), index=df.index, name="known")


def offers(df: pd.DataFrame, *, include_ech: bool = False) -> pd.DataFrame:
    """Long form: one row per (counted ClientHello, distinct non-GREASE ID it offers).

    Columns: ``row`` (the row's index label in ``df``), ``rank`` (1 = the client's first
    non-GREASE choice), ``protocol`` (categorical: the IDs' text, sorted). In ``df``'s row
    order, then rank. A ClientHello offering no protocol has no row here (it is ``(no ALPN)``
    in :func:`offer_share`).
    """
    o = _Offers.of(df, include_ech)
    return _with_attrs(
        pd.DataFrame(
            {
                "row": df.index.take(o.positions[o.hello]),
                "rank": o.rank,
                "protocol": pd.Categorical.from_codes(o.code, dtype=pd.CategoricalDtype(o.labels)),
            }
        ),
        o.left_out_ech,
    )


def offer_share(
    df: pd.DataFrame, *, by: By = None, first: bool = False, include_ech: bool = False
) -> pd.DataFrame:
    """Per group and protocol: the counted ClientHellos offering it (``first=True``: offering
    it as their first non-GREASE choice), and their share of the group's counted ClientHellos.

    Columns: ``[*by], protocol, client_hellos, share``. A ClientHello offering no protocol
    counts under ``(no ALPN)``; with ``first=True`` each ClientHello counts once, so a group's
    shares sum to 1. Without ``by``, the numbers of the CLI summary's offer shares.
    """
    cols = _by_columns(df, by, _OFFER_COLUMNS)
    o = _Offers.of(df, include_ech)
    items = o.rank == 1 if first else slice(None)
    hello = np.concatenate([o.hello[items], o.no_offer])
    code = np.concatenate([o.code[items], np.full(len(o.no_offer), len(o.labels))])
    gid, keys = _groups(df, cols, o.positions)
    counts = _count(gid[hello], code, [*o.labels, NO_ALPN], np.bincount(gid, minlength=len(keys)))
    return _result(keys, counts, _OFFER_COLUMNS, o.left_out_ech)


def selection_share(df: pd.DataFrame, *, by: By = None) -> pd.DataFrame:
    """Per group and protocol: the handshakes whose server selected it, and their share of the
    group's handshakes with a known choice. Columns: ``[*by], protocol, handshakes, share``."""
    names = ("protocol", "handshakes", "share")
    cols = _by_columns(df, by, names)
    positions = np.flatnonzero(_known_mask(df))
    code, labels = pd.factorize(df["alpn_selected"].iloc[positions], sort=True)
    gid, keys = _groups(df, cols, positions)
    counts = _count(gid, code, list(labels), np.bincount(gid, minlength=len(keys)))
    return _result(keys, counts, names, 0)


def outcomes(df: pd.DataFrame, *, by: By = None) -> pd.DataFrame:
    """Per group: how many handshakes ended with each ``selection`` value, and their share of
    the group's handshakes (every row, one-sided ones and ECH included).

    Columns: ``[*by], selection, handshakes, share``; ``selection`` keeps the column's
    categorical dtype (every Selection value as a category), but only values that occur have
    a row. Ties in count are in the Selection values' order.
    """
    names = ("selection", "handshakes", "share")
    cols = _by_columns(df, by, names)
    _require(df, "selection")
    sel = df["selection"].astype(pd.CategoricalDtype(list(SELECTION_VALUES)))
    bad = sel.isna().to_numpy()
    if bad.any():
        value = df["selection"].iloc[int(np.flatnonzero(bad)[0])]
        raise ValueError(f"selection {value!r} is not a Selection value {list(SELECTION_VALUES)}")
    positions = np.arange(len(df))
    gid, keys = _groups(df, cols, positions)
    code = sel.cat.codes.to_numpy().astype(np.int64)
    base = np.bincount(gid, minlength=len(keys))
    counts = _count(gid, code, list(SELECTION_VALUES), base, np.arange(len(SELECTION_VALUES)))
    out = _result(keys, counts, names, 0)
    out["selection"] = out["selection"].astype(sel.dtype)
    return out


def honoured(df: pd.DataFrame, *, by: By = None) -> pd.DataFrame:
    """Per group: of the handshakes with a known choice whose (counted) ClientHello offers at
    least one protocol, how many got the client's first non-GREASE choice.

    Columns: ``[*by], handshakes, honoured, rate`` (``rate`` = honoured / handshakes).
    ECH ClientHellos are left out (their outer offer may be a decoy).
    """
    names = ("handshakes", "honoured", "rate")
    cols = _by_columns(df, by, names)
    o = _Offers.of(df, False)
    hello, first, selected = _first_and_selected(df, o)
    positions = o.positions[hello]
    hit = selected == np.asarray(o.labels, dtype=object)[first]
    gid, keys = _groups(df, cols, positions)
    n = np.bincount(gid, minlength=len(keys))
    won = np.bincount(gid, weights=hit, minlength=len(keys)).astype(np.int64)
    out = keys.copy()
    out["handshakes"] = n.astype(np.int64)
    out["honoured"] = won
    out["rate"] = won / np.maximum(n, 1)
    return _with_attrs(out[n > 0].reset_index(drop=True), o.left_out_ech)


def preference(df: pd.DataFrame) -> pd.DataFrame:
    """The cross table of the client's first non-GREASE choice (index ``first_choice``)
    against the server's selection (columns ``selected``): handshakes, over those with a known
    choice whose counted ClientHello (ECH left out) offers a protocol. Rows and columns are
    sorted by their totals (largest first), then text; a selection no client put first (a
    server picking a later choice, or one never offered) is a column of its own."""
    o = _Offers.of(df, False)
    _, first, selected = _first_and_selected(df, o)
    rows = np.asarray(o.labels, dtype=object)[first]
    table = pd.crosstab(
        pd.Series(rows, name="first_choice", dtype=object),
        pd.Series(selected, name="selected", dtype=object),
    )
    table = table.loc[_by_total(table.sum(axis=1)), _by_total(table.sum(axis=0))]
    table.index = pd.Index(table.index, dtype="string", name="first_choice")
    table.columns = pd.Index(table.columns, dtype="string", name="selected")
    return _with_attrs(table.astype(np.int64), o.left_out_ech)


def timeline(df: pd.DataFrame, *, freq: str = "1min", of: Of = "offered") -> pd.DataFrame:
    """Counts per protocol per period of ``ts``: with ``of="offered"`` the counted ClientHellos
    (ECH left out) offering it, ``(no ALPN)`` included; with ``of="selected"`` the handshakes
    whose server selected it (known choices).

    Tidy and dense: columns ``period`` (the bin's label as pandas' resampling gives it, UTC:
    for ``1min`` the minute's start), ``protocol``, ``count``; every period from the frame's
    first row to its last (empty ones too, and those with rows but nothing counted) × every
    protocol that occurs, zeros included, so a stacked picture has no gaps. Sorted by period, then by the protocol's total (largest first), then
    protocol. ``freq``: a pandas offset alias (``1s``, ``1min``, ``1h``, ``1D``, ``W``, …); a
    grid over :data:`MAX_TIMELINE_ROWS` raises ValueError (choose a coarser one).
    """
    _require(df, "ts")
    if of == "offered":
        o = _Offers.of(df, False)
        labels = [*o.labels, NO_ALPN]
        positions = o.positions[np.concatenate([o.hello, o.no_offer])]
        code = np.concatenate([o.code, np.full(len(o.no_offer), len(o.labels))])
        left_out = o.left_out_ech
    elif of == "selected":
        positions = np.flatnonzero(_known_mask(df))
        code, found = pd.factorize(df["alpn_selected"].iloc[positions], sort=True)
        labels, left_out = list(found), 0
    else:
        raise ValueError(f"of={of!r}: 'offered' or 'selected'")
    items = pd.DataFrame({"ts": df["ts"].iloc[positions].reset_index(drop=True), "code": code})
    used = np.unique(code)
    # the periods span the whole frame (a minute without a counted row is a row of zeros),
    # binned from the midnight before its first row, as pandas' resampling bins it
    ends = pd.DataFrame({"ts": [df["ts"].min(), df["ts"].max()] if len(used) else []})
    _check_grid(ends["ts"], freq, len(used))
    origin = ends["ts"].min().floor("D") if len(used) else "start_day"
    bins = pd.Grouper(key="ts", freq=freq, origin=origin)
    periods = ends.astype({"ts": df["ts"].dtype}).groupby(bins).size().index
    counts = items.groupby([bins, "code"]).size()
    totals = np.bincount(code, minlength=len(labels))[used]
    order = used[np.lexsort((_text_rank(labels)[used], -totals))]
    grid = pd.MultiIndex.from_product([periods, order], names=["period", "code"])
    dense = counts.reindex(grid, fill_value=0)
    out = pd.DataFrame(
        {
            "period": grid.get_level_values("period"),
            "protocol": pd.array(np.asarray(labels, dtype=object)[grid.codes[1]], dtype="string")
            if len(grid)
            else pd.array([], dtype="string"),
            "count": dense.to_numpy().astype(np.int64),
        }
    )
    if out.empty:
        out["period"] = pd.Series([], dtype="datetime64[ns, UTC]")
    return _with_attrs(out, left_out)


def _check_grid(ts: pd.Series, freq: str, protocols: int) -> None:
    """Refuse a timeline grid over MAX_TIMELINE_ROWS, before pandas makes its bins (a
    calendar freq, such as ``W`` or ``MS``, is taken as at least an hour long)."""
    step = to_offset(freq)  # ValueError for an unknown alias
    if ts.empty or not protocols:
        return
    try:
        width = pd.Timedelta(cast(Any, step))  # fixed (s, min, h, D), else ValueError
    except ValueError:
        width = pd.Timedelta(hours=1)
    periods = (ts.max() - ts.min()) // width + 2
    if periods * protocols > MAX_TIMELINE_ROWS:
        raise ValueError(
            f"timeline: about {periods:,} periods of {freq} × {protocols} protocols is over "
            f"{MAX_TIMELINE_ROWS:,} rows: choose a coarser freq"
        )


def compare(a: pd.DataFrame, b: pd.DataFrame, *, of: Of = "offered") -> pd.DataFrame:
    """Per protocol: its share in ``a`` and in ``b`` (:func:`offer_share`, ECH left out; with
    ``of="selected"`` :func:`selection_share`), a protocol missing on one side at share 0, and
    ``change`` = share_b - share_a. Columns: ``protocol, share_a, share_b, change``; sorted by
    share_b, then share_a (largest first), then protocol. ``.attrs``: ``left_out_ech`` (both
    sides'), ``left_out_ech_a``, ``left_out_ech_b``."""
    if of == "offered":
        sa, sb = offer_share(a), offer_share(b)
    elif of == "selected":
        sa, sb = selection_share(a), selection_share(b)
    else:
        raise ValueError(f"of={of!r}: 'offered' or 'selected'")
    out = pd.merge(
        sa[["protocol", "share"]].rename(columns={"share": "share_a"}),
        sb[["protocol", "share"]].rename(columns={"share": "share_b"}),
        on="protocol",
        how="outer",
    )
    out[["share_a", "share_b"]] = out[["share_a", "share_b"]].fillna(0.0).astype(np.float64)
    out["change"] = out["share_b"] - out["share_a"]
    out["protocol"] = out["protocol"].astype("string")
    out = out.sort_values(
        ["share_b", "share_a", "protocol"], ascending=[False, False, True], kind="stable"
    ).reset_index(drop=True)
    la, lb = sa.attrs["left_out_ech"], sb.attrs["left_out_ech"]
    out.attrs = {"left_out_ech": la + lb, "left_out_ech_a": la, "left_out_ech_b": lb}
    return out


@dataclass(frozen=True, slots=True)
class _Offers:
    """The counted ClientHellos of a frame and their distinct non-GREASE IDs, as arrays.

    ``positions``: each counted ClientHello's row position in the frame ("hello" below
    indexes this). Per offered ID, in row order then rank: ``hello``, ``code`` (into
    ``labels``, the IDs' text sorted), ``rank``. ``no_offer``: the hellos offering no protocol.
    """

    positions: np.ndarray
    hello: np.ndarray
    code: np.ndarray
    rank: np.ndarray
    labels: list[str]
    no_offer: np.ndarray
    left_out_ech: int

    @classmethod
    def of(cls, df: pd.DataFrame, include_ech: bool) -> _Offers:
        mask, left_out = _counted_mask(df, include_ech)
        positions = np.flatnonzero(mask)
        lists = _list_array(df["alpn_offered"].iloc[positions], "alpn_offered")
        flat = pc.list_flatten(lists)
        if flat.null_count:
            raise ValueError("alpn_offered: a list holds a null ID")
        parent = pc.list_parent_indices(lists).to_numpy().astype(np.int64)
        ids = pc.dictionary_encode(flat)
        texts: list[str] = ids.dictionary.to_pylist()
        codes = ids.indices.to_numpy().astype(np.int64)
        if "alpn_offered_hex" in df.columns:
            grease = _grease_by_hex(df["alpn_offered_hex"].iloc[positions], lists)
        else:
            grease = np.array([is_grease_alpn(_octets(t)) for t in texts], dtype=bool)[codes]
        hello, codes = parent[~grease], codes[~grease]
        # the first occurrence of each (hello, ID): elements are in row order, then list order
        _, first = np.unique(hello * max(len(texts), 1) + codes, return_index=True)
        first.sort()
        hello, codes = hello[first], codes[first]
        # the IDs' codes renumbered so that code order is text order
        used = np.unique(codes)
        labels = sorted(texts[i] for i in used)
        place = {t: i for i, t in enumerate(labels)}
        renumber = np.zeros(len(texts), dtype=np.int64)
        renumber[used] = [place[texts[i]] for i in used]
        starts = np.flatnonzero(np.r_[True, hello[1:] != hello[:-1]]) if len(hello) else hello
        rank = np.arange(len(hello)) - np.repeat(starts, np.diff(np.r_[starts, len(hello)])) + 1
        offering = np.zeros(len(positions), dtype=bool)
        offering[hello] = True
        return cls(
            positions=positions,
            hello=hello,
            code=renumber[codes],
            rank=rank.astype(np.int64),
            labels=labels,
            no_offer=np.flatnonzero(~offering),
            left_out_ech=left_out,
        )


def _require(df: pd.DataFrame, *names: str) -> None:
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise KeyError(f"no column {', '.join(missing)} (alpnsniff.read's columns)")


def _counted_mask(df: pd.DataFrame, include_ech: bool) -> tuple[np.ndarray, int]:
    """(counted rows as a bool array, how many ECH rows were left out)."""
    _require(df, "alpn_offered", "ech")
    seen = df["alpn_offered"].notna().to_numpy(dtype=bool)
    if include_ech:
        return seen, 0
    ech = seen & df["ech"].fillna(False).to_numpy(dtype=bool)
    return seen & ~ech, int(ech.sum())


def _known_mask(df: pd.DataFrame) -> np.ndarray:
    _require(df, "selection", "alpn_selected")
    known = df["selection"].isin(KNOWN_SELECTIONS) & df["alpn_selected"].notna()
    return known.to_numpy(dtype=bool)


def _list_array(values: pd.Series, name: str) -> pa.ListArray:
    """A list column (Python lists, numpy arrays or Arrow lists; no nulls) as one Arrow
    ``list<string>`` array."""
    try:
        arr = pa.array(values, type=pa.list_(pa.string()), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array(values, from_pandas=True).cast(pa.list_(pa.string()))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        raise ValueError(f"{name}: a null list in a counted row")
    return arr


def _grease_by_hex(hexes: pd.Series, lists: pa.ListArray) -> np.ndarray:
    """Per flattened ID of ``lists``: is it GREASE, told by its octets in the hex column."""
    arr = _list_array(hexes, "alpn_offered_hex")
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if not np.array_equal(lengths, pc.list_value_length(lists).to_numpy(zero_copy_only=False)):
        raise ValueError("alpn_offered_hex and alpn_offered differ in length in some row")
    flat = pc.list_flatten(arr)
    if flat.null_count:
        raise ValueError("alpn_offered_hex: a list holds a null")
    ids = pc.dictionary_encode(flat)
    grease = []
    for h in ids.dictionary.to_pylist():
        try:
            grease.append(is_grease_alpn(bytes.fromhex(h)))
        except (TypeError, ValueError) as err:
            raise ValueError(f"alpn_offered_hex: {h!r} is not hex") from err
    index: np.ndarray = ids.indices.to_numpy().astype(np.int64)
    out: np.ndarray = np.asarray(grease, dtype=bool)[index]
    return out


def _octets(text: str) -> bytes:
    r"""The octets of an ID's escaped text (:func:`~alpnsniff.tls.alpn.alpn_text` undone):
    ``\xNN`` is that octet, any other character itself."""
    parts = _ESCAPE.split(text)
    return b"".join(
        bytes([int(p, 16)]) if i % 2 else p.encode("utf-8") for i, p in enumerate(parts)
    )


def _by_columns(df: pd.DataFrame, by: By, names: Sequence[str]) -> list[str]:
    if by is None:
        return []
    cols = [by] if isinstance(by, str) else list(by)
    clash = [c for c in cols if c in names]
    if clash:
        raise ValueError(f"by={cols}: {clash} is a result column")
    if len(set(cols)) != len(cols):
        raise ValueError(f"by={cols}: a column twice")
    _require(df, *cols)
    return cols


def _groups(
    df: pd.DataFrame, cols: list[str], positions: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame]:
    """(each position's group number, the groups' keys in number order): the groups observed
    among ``positions``, numbered in the keys' sorted order (null keys a group, last)."""
    if not cols:
        return np.zeros(len(positions), dtype=np.int64), pd.DataFrame(
            index=pd.RangeIndex(1 if len(positions) else 0)
        )
    keys = df[cols].iloc[positions].reset_index(drop=True)
    gid = keys.groupby(cols, observed=True, dropna=False, sort=True).ngroup().to_numpy()
    gid = gid.astype(np.int64)
    _, first = np.unique(gid, return_index=True)
    return gid, keys.iloc[first].reset_index(drop=True)


@dataclass(frozen=True, slots=True)
class _Counts:
    group: np.ndarray  # group number per result row
    label: np.ndarray  # the protocol (or selection) text per result row (objects)
    count: np.ndarray
    share: np.ndarray


def _count(
    gid: np.ndarray,
    code: np.ndarray,
    labels: list[str],
    base: np.ndarray,
    tie: np.ndarray | None = None,
) -> _Counts:
    """Counts per (group, code), sorted by group, count (largest first), then ``tie`` (each
    code's place; default: the labels' text order); shares over ``base`` (per group)."""
    width = max(len(labels), 1)
    pairs, n = np.unique(gid * width + code, return_counts=True)
    group, code = pairs // width, pairs % width
    places = _text_rank(labels) if tie is None else tie
    order = np.lexsort((places[code], -n, group))
    group, code, n = group[order], code[order], n[order]
    return _Counts(
        group=group,
        label=np.asarray(labels, dtype=object)[code] if len(code) else np.array([], dtype=object),
        count=n.astype(np.int64),
        share=n / base[group],
    )


def _text_rank(labels: Sequence[str]) -> np.ndarray:
    """Each label's place in text order."""
    order = np.argsort(np.asarray(labels, dtype=object), kind="stable")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    return rank


def _result(keys: pd.DataFrame, c: _Counts, names: Sequence[str], left_out: int) -> pd.DataFrame:
    out = (
        keys.take(c.group).reset_index(drop=True)
        if len(keys.columns)
        else pd.DataFrame(index=pd.RangeIndex(len(c.count)))
    )
    label, count, share = names
    out[label] = pd.array(c.label, dtype="string")
    out[count] = c.count
    out[share] = c.share.astype(np.float64)
    return _with_attrs(out, left_out)


def _first_and_selected(df: pd.DataFrame, o: _Offers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the counted hellos that offer a protocol and have a known choice: (hello,
    first choice code, selected text as an object array)."""
    known = _known_mask(df)
    first = o.rank == 1
    hello, code = o.hello[first], o.code[first]
    keep = known[o.positions[hello]]
    hello, code = hello[keep], code[keep]
    selected = df["alpn_selected"].iloc[o.positions[hello]].to_numpy(dtype=object)
    return hello, code, selected


def _by_total(totals: pd.Series) -> list[Any]:
    frame = pd.DataFrame({"label": totals.index.astype(str), "n": totals.to_numpy()})
    order = frame.sort_values(["n", "label"], ascending=[False, True], kind="stable").index
    return [totals.index[i] for i in order]


def _with_attrs(out: pd.DataFrame, left_out: int) -> pd.DataFrame:
    out.attrs = {"left_out_ech": int(left_out)}
    return out
