"""Pictures of the handshake DataFrame (``alpnsniff.read``), drawn with matplotlib.

Each function draws one picture into ``ax`` (a new figure when ``ax`` is None) and returns
the Axes, so a notebook shows it and a script saves it (``ax.figure.savefig(...)``):

- :func:`plot_shares`: offered against selected share per protocol (grouped bars);
- :func:`plot_offer_shares`: the offered shares alone;
- :func:`plot_outcomes`: how each negotiation ended (the ``selection`` values);
- :func:`plot_timeline`: ClientHellos offering (or selections of) each protocol over time,
  stacked;
- :func:`plot_offer_heatmap`: the top server names (or captures) by ClientHellos, and the
  share of each one's ClientHellos offering each protocol;
- :func:`plot_preference`: the client's first choice against the server's selection.

The numbers come from :mod:`alpnsniff.analytics.shares` and follow its rules: ClientHellos
that carry ECH are left out of the offer shares unless ``include_ech=True``, GREASE IDs are
never a protocol, and a selection is counted only where it was seen or decrypted.

Wire text (server names, ALPN IDs) is the escaped text of the columns, but still chosen by
whoever sent the packet: every such label goes through :func:`safe_label` (cut to a readable
length, ``$`` escaped so that matplotlib's mathtext never parses it). A picture of an empty
DataFrame is an Axes that says "no data".

Backend: a figure made here (``ax`` None) goes through pyplot; when nobody has chosen a
backend (no ``MPLBACKEND``, no ``matplotlibrc`` setting, no ``matplotlib.use``) and no display
is there, Agg is chosen, so nothing here needs a display. Drawn into a
``matplotlib.figure.Figure`` made by the caller (as :mod:`alpnsniff.analytics.report` does),
pyplot is never involved.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from itertools import cycle
from typing import TYPE_CHECKING, Literal

from ..records import Selection
from . import shares

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.patches import Rectangle

__all__ = [
    "auto_freq",
    "offer_matrix",
    "plot_offer_heatmap",
    "plot_offer_shares",
    "plot_outcomes",
    "plot_preference",
    "plot_shares",
    "plot_timeline",
    "preference_matrix",
    "safe_label",
    "timeline_table",
]

Of = Literal["offered", "selected"]

NO_DATA = "no data"
NO_SNI = "(no SNI)"  # a ClientHello without server_name; a wire SNI never holds a space
OTHER = "other"  # the protocols beyond a picture's top N, summed
# Longest label drawn (server names may be 255 characters); the tables beside keep them whole.
LABEL_CHARS = 40
# Colours: offered and selected, and one per protocol in the stacked pictures (tab10 order).
OFFERED_COLOUR = "#4878a8"
SELECTED_COLOUR = "#e08a3c"
PROTOCOL_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
)
OTHER_COLOUR = "#bab0ac"
# The common protocols keep their colour in every picture (an offered and a selected
# timeline side by side agree); the others take the remaining colours by their rank.
FIXED_COLOURS = {
    "h2": PROTOCOL_COLOURS[0],
    "http/1.1": PROTOCOL_COLOURS[1],
    "h3": PROTOCOL_COLOURS[2],
    shares.NO_ALPN: PROTOCOL_COLOURS[3],
}
# Outcome colours: the choice known, not known, no choice, a failure, no answer.
OUTCOME_COLOURS = {
    "visible": "#59a14f",
    "decrypted": "#8cd17d",
    "encrypted": "#9d9d9d",
    "none": "#f1ce63",
    "not-offered": "#d4c8a0",
    "rejected": "#e15759",
    "aborted": "#ff9d9a",
    "retried": "#86bcb6",
    "unseen": "#cfcfcf",
}
# Bin widths a timeline picks from (pandas offset aliases), smallest first, so that a
# capture's span gives at most TIMELINE_BINS bins.
FREQ_LADDER = (
    ("1s", 1),
    ("5s", 5),
    ("10s", 10),
    ("30s", 30),
    ("1min", 60),
    ("5min", 300),
    ("10min", 600),
    ("30min", 1800),
    ("1h", 3600),
    ("6h", 21600),
    ("1D", 86400),
    ("7D", 604800),
)
TIMELINE_BINS = 60


def safe_label(text: object, limit: int = LABEL_CHARS) -> str:
    """``text`` as a matplotlib label: cut to ``limit`` characters (``…`` ending it) and every
    ``$`` escaped, so that no label is read as mathtext (``$\\frac{a}{b}$`` is drawn as it
    is, never typeset, and an odd ``$`` cannot make the drawing fail)."""
    s = str(text)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def _pct(share: float) -> str:
    """A share as a percentage label; a share above zero never reads ``0.0%``."""
    if 0 < share < 0.0005:
        return "<0.1%"
    return f"{100 * share:.1f}%"


def _label_bar(ax: Axes, bar: Rectangle, text: str) -> None:
    """``text`` just past the end of a horizontal bar, centred on it."""
    ax.annotate(
        text,
        (bar.get_width(), bar.get_y() + bar.get_height() / 2),
        xytext=(3, 0),
        textcoords="offset points",
        va="center",
        fontsize=8,
    )


def protocol_colours(protocols: Sequence[str]) -> list[str]:
    """One colour per protocol: :data:`FIXED_COLOURS` for the common ones, ``other`` grey,
    the rest the free colours of :data:`PROTOCOL_COLOURS` in order."""
    free = cycle([c for c in PROTOCOL_COLOURS if c not in FIXED_COLOURS.values()])
    return [
        OTHER_COLOUR if p == OTHER else FIXED_COLOURS[p] if p in FIXED_COLOURS else next(free)
        for p in protocols
    ]


def _choose_backend() -> None:
    """Agg when no backend was chosen and no display is there (see the module docstring)."""
    import matplotlib

    get = getattr(matplotlib.rcParams, "_get_backend_or_none", None)
    chosen = get() if get is not None else "unknown"
    graphical = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if chosen is None and not graphical:
        matplotlib.use("Agg")


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    """``ax``, or the Axes of a new pyplot figure of ``size`` inches."""
    if ax is not None:
        return ax
    _choose_backend()
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _no_data(ax: Axes, title: str) -> Axes:
    """An empty picture that says so (an empty DataFrame, or nothing to count in it)."""
    ax.set_title(safe_label(title, 200))
    ax.text(0.5, 0.5, NO_DATA, ha="center", va="center", fontsize=14, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _bare(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` without its ``attrs`` (a shallow copy): pandas deep-copies ``attrs`` (the run's
    counts) into every intermediate result, which would cost more than the counting."""
    out = df.copy(deep=False)
    out.attrs = {}
    return out


def _ech_words(include_ech: bool) -> str:
    return "ECH counted" if include_ech else "ECH left out"


def plot_shares(
    df: pd.DataFrame, *, top: int = 12, include_ech: bool = False, ax: Axes | None = None
) -> Axes:
    """Offered against selected, per protocol: two horizontal bars each, the share of
    ClientHellos offering it and the share of known selections choosing it.

    The protocols are the ``top`` most offered, then any selected one beyond them; each bar
    ends with its share and count; the legend gives each bar's base (``offered (n=50
    ClientHellos, ECH left out)``)."""
    df = _bare(df)
    offered = shares.offer_share(df, include_ech=include_ech)
    selected = shares.selection_share(df)
    protocols = list(offered["protocol"].head(top))
    protocols += [p for p in selected["protocol"] if p not in protocols]
    ax = _axes(ax, (8, 0.55 * len(protocols) + 1.6))
    title = "ALPN: offered by clients, selected by servers"
    if not protocols:
        return _no_data(ax, title)
    n_hellos = int(shares.counted_client_hellos(df, include_ech=include_ech).sum())
    n_selected = int(shares.known_choice(df).sum())
    off = offered.set_index("protocol")
    sel = selected.set_index("protocol")
    height = 0.4
    ys = list(range(len(protocols)))
    for values, counts, offset, colour, legend in (
        (
            off["share"],
            off["client_hellos"],
            -height / 2,
            OFFERED_COLOUR,
            f"offered (n={n_hellos:,} ClientHellos, {_ech_words(include_ech)})",
        ),
        (
            sel["share"],
            sel["handshakes"],
            height / 2,
            SELECTED_COLOUR,
            f"selected (n={n_selected:,} selections seen or decrypted)",
        ),
    ):
        widths = [100 * float(values.get(p, 0.0)) for p in protocols]
        bars = ax.barh(
            [y + offset for y in ys],
            widths,
            height=height,
            color=colour,
            label=safe_label(legend, 200),
        )
        for bar, p in zip(bars, protocols, strict=True):
            n = int(counts.get(p, 0))
            if n:
                _label_bar(ax, bar, f"{_pct(bar.get_width() / 100)} ({n:,})")
    ax.set_yticks(ys, [safe_label(p) for p in protocols])
    ax.invert_yaxis()
    ax.set_xlim(0, 118)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("% of ClientHellos offering it  ·  % of known selections choosing it")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def plot_offer_shares(
    df: pd.DataFrame, *, include_ech: bool = False, top: int = 12, ax: Axes | None = None
) -> Axes:
    """Horizontal bars of :func:`~alpnsniff.analytics.shares.offer_share`: the share of
    ClientHellos offering each of the ``top`` most offered protocols."""
    df = _bare(df)
    offered = shares.offer_share(df, include_ech=include_ech).head(top)
    ax = _axes(ax, (7, 0.35 * len(offered) + 1.4))
    title = f"ALPN offers ({_ech_words(include_ech)})"
    if offered.empty:
        return _no_data(ax, title)
    n_hellos = int(shares.counted_client_hellos(df, include_ech=include_ech).sum())
    bars = ax.barh(
        [safe_label(p) for p in offered["protocol"]],
        offered["share"] * 100,
        color=OFFERED_COLOUR,
        label=f"offered (n={n_hellos:,} ClientHellos)",
    )
    for bar, n in zip(bars, offered["client_hellos"], strict=True):
        _label_bar(ax, bar, f"{_pct(bar.get_width() / 100)} ({int(n):,})")
    ax.invert_yaxis()
    ax.set_xlim(0, 118)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("% of ClientHellos offering it")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8, frameon=False)
    return ax


def plot_outcomes(df: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """One bar per ``selection`` value (every value, zeros included): how many handshakes
    ended that way; ``encrypted`` is a choice not known, never guessed."""
    table = shares.outcomes(_bare(df))
    found = {str(s): int(n) for s, n in zip(table["selection"], table["handshakes"], strict=True)}
    ax = _axes(ax, (7, 3.6))
    title = "How each negotiation ended (selection)"
    total = sum(found.values())
    if not total:
        return _no_data(ax, title)
    names = [s.value for s in Selection]
    counts = [found.get(s, 0) for s in names]
    bars = ax.barh(
        [safe_label(s) for s in names],
        counts,
        color=[OUTCOME_COLOURS.get(s, OTHER_COLOUR) for s in names],
    )
    for bar, n in zip(bars, counts, strict=True):
        if n:
            _label_bar(ax, bar, f"{n:,} ({_pct(n / total)})")
    ax.invert_yaxis()
    ax.set_xlim(0, max(counts) * 1.25)
    ax.set_xlabel(f"handshakes (n={total:,})")
    ax.set_title(title)
    return ax


def auto_freq(df: pd.DataFrame, bins: int = TIMELINE_BINS) -> str:
    """The narrowest bin width of :data:`FREQ_LADDER` that splits the rows' time span into at
    most ``bins`` bins (``1s`` for an empty or one-instant DataFrame)."""
    ts = df["ts"].dropna()
    if ts.empty:
        return FREQ_LADDER[0][0]
    span = (ts.max() - ts.min()).total_seconds()
    for alias, seconds in FREQ_LADDER:
        if span / seconds <= bins:
            return alias
    return FREQ_LADDER[-1][0]


def freq_words(freq: str) -> str:
    """``5s`` -> ``5 s``, ``1min`` -> ``1 min``, ``1D`` -> ``1 day``: a bin width for a label."""
    import re

    m = re.fullmatch(r"(\d*)([A-Za-z]+)", freq)
    if m is None:
        return freq
    n, unit = m.group(1) or "1", m.group(2)
    unit = {"D": "day" if n == "1" else "days", "h": "h", "min": "min", "s": "s"}.get(unit, unit)
    return f"{n} {unit}"


def timeline_table(
    df: pd.DataFrame, *, freq: str, of: Of = "offered", top: int = 8
) -> pd.DataFrame:
    """:func:`~alpnsniff.analytics.shares.timeline` as a wide table: one row per bin from
    the first to the last (empty bins as zeros), one column per protocol (the ``top`` most
    counted, the rest summed under ``other``), counts; the index the bins' starts (UTC)."""
    import pandas as pd

    long = shares.timeline(_bare(df), freq=freq, of=of)
    if long.empty:
        return pd.DataFrame()
    keep = list(dict.fromkeys(long["protocol"]))[:top]  # sorted by total, largest first
    long = long.assign(protocol=long["protocol"].where(long["protocol"].isin(keep), OTHER))
    wide = long.pivot_table(
        index="period", columns="protocol", values="count", aggfunc="sum", fill_value=0
    )
    order = [p for p in keep if p in wide.columns] + ([OTHER] if OTHER in wide.columns else [])
    wide = wide[order]  # every bin is there: the timeline is dense
    wide.columns.name = None
    return wide.astype("int64")


def plot_timeline(
    df: pd.DataFrame,
    *,
    freq: str | None = None,
    of: Of = "offered",
    top: int = 8,
    ax: Axes | None = None,
) -> Axes:
    """Stacked areas over time: per bin of ``freq`` (:func:`auto_freq` when None), the
    ClientHellos offering each protocol (``of="offered"``: ECH left out; a ClientHello
    offering two protocols is in both areas, so the stack counts offers) or the known
    selections of each (``of="selected"``); the ``top`` protocols by count, the rest as
    ``other``. Each area spans its bins (a step, never a line between bin starts); the legend
    gives each total."""
    freq = freq or auto_freq(df)
    wide = timeline_table(df, freq=freq, of=of, top=top)
    ax = _axes(ax, (9, 3.8))
    unit = "offers" if of == "offered" else "known selections"
    title = f"ALPN {unit} by protocol, per {freq_words(freq)}"
    if wide.empty:
        return _no_data(ax, title)
    import pandas as pd

    step = pd.tseries.frequencies.to_offset(freq)
    xs = [*wide.index, wide.index[-1] + step]
    columns = list(wide.columns)
    ys = [[*wide[c].tolist(), int(wide[c].iloc[-1])] for c in columns]
    colours = protocol_colours(columns)
    labels = [f"{safe_label(c)} (n={int(wide[c].sum()):,})" for c in columns]
    ax.stackplot(
        [x.to_pydatetime() for x in xs],
        *ys,
        labels=labels,
        colors=colours,
        step="post",
        alpha=0.9,
        linewidth=0,
    )
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator, tz="UTC")  # type: ignore[no-untyped-call]
    )
    ax.set_xlim(xs[0].to_pydatetime(), xs[-1].to_pydatetime())
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.25 offers
    ax.set_ylabel(f"{unit} per {freq_words(freq)}")
    ax.set_xlabel("capture time (UTC)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return ax


def offer_matrix(
    df: pd.DataFrame,
    *,
    by: str = "sni",
    top: int = 15,
    protocols: int = 8,
    include_ech: bool = False,
) -> tuple[pd.DataFrame, pd.Series[int]]:
    """The heatmap's numbers: the ``top`` values of ``by`` by counted ClientHellos (a null
    SNI as ``(no SNI)``), one column per protocol (the ``protocols`` most offered overall),
    each cell the share (0..1) of that row's ClientHellos offering it; and each row's
    ClientHellos. Rows most ClientHellos first (then by name)."""
    import pandas as pd

    df = _bare(df)
    counted = df[shares.counted_client_hellos(df, include_ech=include_ech)]
    if by == "sni":
        counted = counted.assign(sni=counted["sni"].astype("string").fillna(NO_SNI))
    if counted.empty:
        return pd.DataFrame(), pd.Series(dtype="int64")
    sizes = counted.groupby(by, observed=True).size()
    sizes = sizes.sort_index().sort_values(ascending=False, kind="stable").head(top)
    overall = shares.offer_share(counted, include_ech=True)
    columns = list(overall["protocol"].head(protocols))
    per = shares.offer_share(counted, by=[by], include_ech=True)
    per = per[per[by].isin(sizes.index) & per["protocol"].isin(columns)]
    matrix = per.pivot_table(index=by, columns="protocol", values="share", aggfunc="sum")
    matrix = matrix.reindex(index=sizes.index, columns=columns).fillna(0.0)
    matrix.index.name = by
    matrix.columns.name = None
    return matrix, sizes.astype("int64")


def _annotated_matrix(
    ax: Axes, values: Sequence[Sequence[float]], texts: Sequence[Sequence[str]], vmax: float
) -> None:
    """Cells coloured by value (0..vmax, blues), each with its text, white on dark cells."""
    ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax or 1, aspect="auto")
    for i, row in enumerate(texts):
        for j, text in enumerate(row):
            dark = values[i][j] > 0.6 * (vmax or 1)
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "#222222",
            )


def plot_offer_heatmap(
    df: pd.DataFrame,
    *,
    by: str = "sni",
    top: int = 15,
    protocols: int = 8,
    include_ech: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """A heatmap of :func:`offer_matrix`: the ``top`` server names (``by="sni"``; or
    ``by="capture"``, …) by ClientHellos against the most offered protocols, each cell the
    share of that row's ClientHellos offering the protocol, written in the cell."""
    matrix, sizes = offer_matrix(df, by=by, top=top, protocols=protocols, include_ech=include_ech)
    rows = max(len(matrix), 1)
    ax = _axes(ax, (max(6.0, 0.75 * len(matrix.columns) + 4), 0.36 * rows + 1.8))
    noun = "server name" if by == "sni" else by
    title = f"Top {noun}s by ClientHellos: share offering each protocol ({_ech_words(include_ech)})"
    if matrix.empty:
        return _no_data(ax, title)
    values = matrix.to_numpy().tolist()
    texts = [[f"{100 * v:.0f}%" if v else "·" for v in row] for row in values]
    _annotated_matrix(ax, values, texts, 1.0)
    ax.set_xticks(
        range(len(matrix.columns)),
        [safe_label(c, 16) for c in matrix.columns],
        rotation=35,
        ha="right",
        rotation_mode="anchor",
    )
    names = [os.path.basename(str(v)) if by == "capture" else str(v) for v in matrix.index]
    ax.set_yticks(
        range(len(matrix)),
        [
            f"{safe_label(n)} (n={int(sizes[v]):,})"
            for n, v in zip(names, matrix.index, strict=True)
        ],
    )
    ax.set_xlabel("protocol offered")
    ax.set_ylabel(f"{noun} (ClientHellos)")
    ax.set_title(safe_label(title, 200), fontsize=10)
    return ax


def preference_matrix(df: pd.DataFrame, *, top: int = 8) -> pd.DataFrame:
    """:func:`~alpnsniff.analytics.shares.preference` cut to the ``top`` first choices and
    ``top`` selections by count (largest first); counts."""
    import pandas as pd

    cross = shares.preference(_bare(df))
    if cross.empty:
        return pd.DataFrame()
    rows = cross.sum(axis=1).sort_values(ascending=False, kind="stable").index[:top]
    cols = cross.sum(axis=0).sort_values(ascending=False, kind="stable").index[:top]
    out = cross.loc[rows, cols].astype("int64")
    out.index.name = "first choice"
    out.columns.name = "selected"
    return out


def plot_preference(df: pd.DataFrame, *, top: int = 8, ax: Axes | None = None) -> Axes:
    """The client's first choice (rows) against the server's selection (columns), counted
    over the handshakes whose selection is known; the diagonal (first choice honoured) is
    outlined."""
    matrix = preference_matrix(df, top=top)
    ax = _axes(ax, (max(5.0, 0.9 * len(matrix.columns) + 3), 0.5 * max(len(matrix), 1) + 2))
    title = "Client's first choice × server's selection"
    if matrix.empty or not int(matrix.to_numpy().sum()):
        return _no_data(ax, title)
    values = matrix.to_numpy().tolist()
    vmax = float(max(max(row) for row in values))
    texts = [[f"{int(v):,}" if v else "·" for v in row] for row in values]
    _annotated_matrix(ax, values, texts, vmax)
    from matplotlib.patches import Rectangle

    cols = list(matrix.columns)
    for i, first in enumerate(matrix.index):
        if first in cols:
            j = cols.index(first)
            ax.add_patch(
                Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#e08a3c", linewidth=2)
            )
    ax.set_xticks(
        range(len(cols)),
        [safe_label(c, 16) for c in cols],
        rotation=35,
        ha="right",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(len(matrix)), [safe_label(r) for r in matrix.index])
    n = int(matrix.to_numpy().sum())
    ax.set_xlabel(f"selected by the server (n={n:,} handshakes with a known selection)")
    ax.set_ylabel("client's first choice")
    ax.set_title(title)
    return ax
