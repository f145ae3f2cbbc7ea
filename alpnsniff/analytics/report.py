"""One self-contained HTML page about a read (``alpnsniff report FILE… -o report.html``):
what was read and skipped, what clients offered and servers selected, how each negotiation
ended, ECH, the top servers, the timeline, and each capture beside the others.

Self-contained: the pictures are PNG ``data:`` URIs, the style is in the page, there is no
script and no font, so nothing is fetched from anywhere: the page opens offline, from a mail
or an archive. Every picture has its numbers in a table beside it (searchable, copyable);
they are the figures ``alpnsniff read``'s summary prints, computed by
:mod:`alpnsniff.analytics.shares` under the rules the page states at its top.

Every text that came from the wire or from the user (server names, ALPN IDs, capture names,
error lines, the title) is escaped (:func:`html.escape`) as a table cell is made
(:class:`_Table`); in the pictures, :func:`alpnsniff.analytics.plots.safe_label` keeps it
from being read as mathtext.

No clock is read: the page names the captures' time span, not when it was made. The inputs
(names, sizes, times, key logs, the version that read them) come from the frame's
``provenance``; a frame without it has each capture's size looked up on disk.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..records import Selection
from ..sinks.summary import kernel_lines, plural, skip_counts
from ..tls.alpn import alpn_name
from . import plots, shares

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["input_sizes", "render_report"]

# Pictures are drawn at PNG_DPI and shown at CSS_DPI: sharp on a HiDPI screen too.
PNG_DPI = 144
CSS_DPI = 96
# Rows a table holds at most; the rest are counted in a line under it, so that a capture
# with a million distinct junk IDs or server names still gives a page a browser opens.
MAX_ROWS = 2000
# Protocol columns of the per-server and per-capture tables (the most offered overall).
MATRIX_PROTOCOLS = 8

SELECTION_MEANING: dict[str, str] = {
    "visible": "in a cleartext ServerHello (TLS ≤ 1.2, or a stack that echoes it)",
    "encrypted": "TLS 1.3 / QUIC: in EncryptedExtensions, no key to read it: unknown",
    "decrypted": "read from EncryptedExtensions with a key log",
    "none": "the client offered ALPN (or was not seen); the server selected none",
    "not-offered": "the client offered no ALPN; the server answered",
    "rejected": "alert 120 no_application_protocol",
    "aborted": "another fatal alert instead of a ServerHello",
    "retried": "HelloRetryRequest; the next row continues the connection",
    "unseen": "no answer from the server in the capture",
}

RULES = (
    "<b>Offer shares</b> are over the ClientHellos seen: a row whose ClientHello was not "
    "captured (a one-sided capture) has no offer and is left out, never counted as “no ALPN”. "
    "A ClientHello offering no protocol counts under <code>(no ALPN)</code>; one offering an "
    "ID twice counts it once; a ClientHello offering two protocols counts for both, so a "
    "column adds up to more than 100%.",
    "<b>ECH is left out</b> of the offer shares by default: a ClientHello carrying "
    "encrypted_client_hello has its real offer encrypted, and its outer offer may be a decoy. "
    "GREASE ECH (Chrome's, sent to every server) looks the same on the wire, so the "
    "“ECH counted” column (outer offers counted) is shown beside it.",
    "<b>GREASE</b> ALPN IDs (RFC 8701: 0x0A0A, 0x1A1A … 0xFAFA) are never a protocol.",
    "<b>Selected shares</b> are over the handshakes whose choice was seen (<code>visible</code>) "
    "or decrypted with a key log (<code>decrypted</code>). <code>encrypted</code> means the "
    "choice is unknown: it is never guessed from the offer or the port.",
    "<b>Wire text</b> (server names, ALPN IDs) is shown as alpnsniff writes it: printable "
    "ASCII kept, every other octet <code>\\xNN</code>.",
)

_CSS = """
:root{--ink:#1d2430;--muted:#5b6573;--line:#dde1e7;--bg:#f4f5f7;--accent:#4878a8;
--warm:#e08a3c;--bad:#b03a2e}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#1f2d3d;color:#fff;padding:22px 32px 18px}
header h1{margin:0 0 6px;font-size:24px;font-weight:600;overflow-wrap:anywhere}
header .meta{color:#c8d3df;font-size:13px}
header .meta b{color:#fff;font-weight:600}
nav{background:#fff;border-bottom:1px solid var(--line);padding:8px 32px;position:sticky;top:0}
nav a{color:var(--accent);text-decoration:none;margin-right:18px;font-size:13px}
main{max-width:1500px;margin:0 auto;padding:18px 24px 30px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px 18px;
margin:0 0 18px}
h2{margin:0 0 10px;font-size:18px;font-weight:600}
h3{margin:14px 0 6px;font-size:14px;font-weight:600;color:var(--muted)}
p{margin:6px 0}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:4px 0 10px}
.tile{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:120px}
.tile .n{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.tile .k{color:var(--muted);font-size:12px}
.pair{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:22px;
align-items:start}
@media (max-width:1000px){.pair{grid-template-columns:1fr}}
figure{margin:0}
figure img{max-width:100%;height:auto;display:block}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
th.group{text-align:center;border-bottom:2px solid #c9d0da;min-width:9em}
tbody tr:nth-child(even) td{background:#fafbfc}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.n{white-space:nowrap}
td.w,code{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:12.5px}
td.w{overflow-wrap:anywhere;min-width:8em;max-width:28em}
td.name{white-space:nowrap}
td.file,th.file{white-space:normal;overflow-wrap:anywhere;min-width:10em;max-width:46em}
#errors li{overflow-wrap:anywhere}
td.muted,.muted{color:var(--muted)}
td.bar{width:90px;min-width:70px;padding-top:7px}
td.bar span{display:block;height:9px;border-radius:2px;background:var(--accent)}
.rules{background:#f7f9fc;border-left:4px solid var(--accent)}
.rules ul{margin:4px 0;padding-left:20px}
.warn{color:var(--bad)}
details{margin:6px 0}
summary{cursor:pointer;color:var(--accent)}
footer{color:var(--muted);font-size:12px;text-align:center;padding:0 0 30px}
"""


class _Html(str):
    """Text that is already HTML (made here): a table cell takes it as it is."""


def _e(value: object) -> str:
    """Any value as escaped HTML text (a :class:`_Html` value as it is)."""
    return value if isinstance(value, _Html) else html.escape(str(value), quote=True)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _share(share: float) -> str:
    return f"{100 * share:.1f}%"


def _count_list(counts: Counter[str]) -> str:
    """``h2 25, http/1.1 1``, each pair kept on one line."""
    return ", ".join(f"{p}\u00a0{n:,}" for p, n in counts.most_common())


def protocol_name(protocol: str) -> str:
    """The IANA (or well-known) name of an ALPN ID's escaped text; blank for ``(no ALPN)``."""
    if protocol == shares.NO_ALPN:
        return ""
    octets = re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), protocol)
    return alpn_name(octets.encode("latin-1", "replace"))


def input_sizes(names: Iterable[str]) -> dict[str, int]:
    """The size in bytes of each name that is a regular file (a stream's name is none)."""
    out: dict[str, int] = {}
    for name in names:
        try:
            if os.path.isfile(name):
                out[name] = os.stat(name).st_size
        except (OSError, ValueError):
            continue
    return out


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:,} B"


# Where a long file name may wrap: after a /, _ or -, or before a . (not at its ends).
_BREAK_AT = re.compile(r"(?<=[/_-])(?=.)|(?<=.)(?=\.)")
Cell = tuple[object, str]  # (text, or _Html; the cell's class: "n" number, "w" wire text, …)


class _Table:
    """An HTML table made row by row, every cell escaped. ``head``: the header cells;
    ``groups``: an optional header row above it, (text, columns spanned). Rows past
    ``fold`` (:meth:`html`) go into a folded <details> table; past :data:`MAX_ROWS`, counted."""

    def __init__(
        self, table_id: str, head: Sequence[Cell], groups: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.table_id = table_id
        self.head = head
        self.groups = groups
        self.rows: list[str] = []
        self.left_out = 0

    def add(self, cells: Sequence[Cell]) -> None:
        if len(self.rows) >= MAX_ROWS:
            self.left_out += 1
            return
        self.rows.append("<tr>" + "".join(_td("td", t, c) for t, c in cells) + "</tr>")

    def _table(self, table_id: str, rows: Sequence[str]) -> str:
        head = "<tr>" + "".join(_td("th", t, c) for t, c in self.head) + "</tr>"
        if self.groups:
            top = "".join(
                f'<th colspan="{span}" class="group">{_e(t)}</th>'
                if t
                else f'<th colspan="{span}"></th>'
                for t, span in self.groups
            )
            head = f"<tr>{top}</tr>{head}"
        return (
            f'<div class="scroll"><table id="{_e(table_id)}"><thead>{head}</thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )

    def html(self, fold: int | None = None) -> str:
        if fold is None or len(self.rows) <= fold:
            out = self._table(self.table_id, self.rows)
        else:
            out = self._table(self.table_id, self.rows[:fold]) + (
                f"<details><summary>{len(self.rows) - fold:,} more rows</summary>"
                f"{self._table(self.table_id + '-more', self.rows[fold:])}</details>"
            )
        if self.left_out:
            out += f"<p class='muted'>{self.left_out:,} more rows left out of the page.</p>"
        return out


def _td(tag: str, text: object, cls: str) -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<{tag}{klass}>{_e(text)}</{tag}>"


def _file_name(name: str, shown: str | None = None) -> _Html:
    """A file name (``shown``, default ``name``) for a ``file`` cell, which wraps a long one
    instead of letting it run into the next column: after a ``/``, ``_`` or ``-``, or before
    a ``.``, where it can (``<wbr>``; the text stays the same). The whole ``name`` is in the
    title (a hover shows it). Both are escaped: a file name is the user's or an attacker's
    (escaping makes no ``/_-.``, so the break points are the name's own)."""
    text = _BREAK_AT.sub("<wbr>", _e(name if shown is None else shown))
    return _Html(f'<span title="{_e(name)}">{text}</span>')


def _file(name: str, shown: str | None = None) -> Cell:
    """A table cell holding a file name (:func:`_file_name`)."""
    return _file_name(name, shown), "w file"


def _bar(share: float, colour: str | None = None) -> Cell:
    """A cell holding a bar ``share`` (0..1) of its width."""
    style = f"width:{max(0.0, min(100.0, 100 * share)):.1f}%"
    if colour:
        style += f";background:{colour}"
    return _Html(f'<span style="{style}"></span>'), "bar"


class _Pictures:
    """Each picture drawn into a figure of its own (never through pyplot), as an <img> with a
    PNG data: URI; a note instead when matplotlib is not installed."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.missing = ""
        if enabled:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                self.enabled = False
                self.missing = "matplotlib is not installed: the pictures are left out"

    def img(self, draw: Callable[[Axes], object], size: tuple[float, float], alt: str) -> str:
        if not self.enabled:
            return ""
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, layout="constrained")
        draw(fig.add_subplot())
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return (
            f'<figure><img alt="{_e(alt)}" width="{round(size[0] * CSS_DPI)}" '
            f'src="data:image/png;base64,{data}"></figure>'
        )


_SECTIONS = {
    "read": "What was read",
    "offered": "Offered and selected",
    "outcomes": "Outcomes",
    "ech": "ECH",
    "servers": "Top servers",
    "timeline": "Timeline",
    "captures": "Per capture",
}


def _section(sid: str, *parts: str) -> str:
    return f'<section id="{sid}"><h2>{_e(_SECTIONS[sid])}</h2>{"".join(parts)}</section>'


def _pair(left: str, right: str) -> str:
    return f'<div class="pair"><div>{left}</div><div>{right}</div></div>' if left else right


def _tiles(*tiles: tuple[str, str]) -> str:
    cells = "".join(
        f'<div class="tile"><div class="n">{_e(n)}</div><div class="k">{_e(k)}</div></div>'
        for n, k in tiles
    )
    return f'<div class="tiles">{cells}</div>'


class _Run:
    """What ``alpnsniff.read`` put on the frame (``df.attrs``): the run's counts (``stats``,
    ``stats_by_capture``, ``errors``) and its ``provenance`` (each capture's size and time,
    the key logs, the version that read them); what a frame lacks is left empty."""

    def __init__(self, attrs: Mapping[Any, Any], df: pd.DataFrame) -> None:
        def counter(d: Any) -> Counter[str]:
            return Counter({str(k): int(v) for k, v in dict(d or {}).items()})

        self.stats = counter(attrs.get("stats"))
        by_capture = dict(attrs.get("stats_by_capture") or {})
        self.by_capture = {str(k): counter(v) for k, v in by_capture.items()}
        errors = dict(attrs.get("errors") or {})
        self.errors = {str(k): [str(x) for x in v] for k, v in errors.items()}
        self.has_counts = bool(self.stats)
        if not self.by_capture:  # a frame without the run's counts: its captures, no counts
            self.by_capture = {str(c): Counter() for c in dict.fromkeys(df["capture"])}
        self.captures = list(self.by_capture)
        provenance = dict(attrs.get("provenance") or {})
        self.inputs: dict[str, dict[str, Any]] = {
            str(entry.get("name")): dict(entry) for entry in provenance.get("captures") or []
        }
        self.keylogs = [str(k) for k in provenance.get("keylogs") or []]
        self.interfaces = [str(i) for i in provenance.get("interfaces") or []]
        self.read_by = (provenance.get("alpnsniff"), provenance.get("build"))

    def size(self, name: str) -> int | None:
        """A capture's size in bytes: as the provenance says, else as it is on disk now."""
        entry = self.inputs.get(name)
        if entry is not None and entry.get("size") is not None:
            return int(entry["size"])
        return input_sizes([name]).get(name)


def _header(df: pd.DataFrame, title: str, run: _Run) -> str:
    from .. import __version__
    from .._build_plan import build_kind

    ts = df["ts"].dropna()
    span = (
        f"{ts.min():%Y-%m-%d %H:%M:%S} – {ts.max():%Y-%m-%d %H:%M:%S} UTC"
        if len(ts)
        else "no handshakes"
    )
    made_by = f"alpnsniff <b>{_e(__version__)}</b> ({_e(build_kind())})"
    version, build = run.read_by
    if version is not None and (version, build) != (__version__, build_kind()):
        made_by = f"read by alpnsniff <b>{_e(version)}</b> ({_e(build)}), report by " + made_by
    meta = [
        made_by,
        f"<b>{plural(len(run.captures), 'capture')}</b>",
        f"<b>{plural(run.stats['packets'], 'packet')}</b>",
        f"<b>{plural(len(df), 'handshake')}</b>",
        f"capture time {_e(span)}",
    ]
    if run.interfaces:
        meta.append("live on " + _e(", ".join(run.interfaces)))
    if run.keylogs:
        meta.append(plural(len(run.keylogs), "key log"))
    return f"<header><h1>{_e(title)}</h1><div class='meta'>{' · '.join(meta)}</div></header>"


def _read_section(df: pd.DataFrame, run: _Run, top: int) -> str:
    stats = run.stats
    seen = int(df["alpn_offered"].notna().sum())
    transports = ", ".join(
        f"{t} {int(n):,}" for t, n in sorted(df["transport"].value_counts().items()) if n
    )
    skipped = skip_counts(stats)
    tiles = _tiles(
        (f"{len(run.captures):,}", "captures"),
        (f"{stats['packets']:,}", "packets"),
        (f"{len(df):,}", f"handshakes ({transports})" if transports else "handshakes"),
        (f"{seen:,}", "ClientHellos seen"),
        (f"{sum(n for _, n in skipped):,}", "skipped (by reason below)"),
    )
    notes = []
    if len(df) > seen:
        notes.append(
            f"<p>{plural(len(df) - seen, 'row')} without a ClientHello (a one-sided capture, "
            "or one begun late): their selection counts, they have no offer.</p>"
        )
    if not run.has_counts:
        notes.append("<p class='warn'>This DataFrame carries no run counts (df.attrs).</p>")
    handshakes = df["capture"].value_counts()
    digests = any(entry.get("sha256") for entry in run.inputs.values())
    inputs = _Table(
        "inputs",
        [("capture", ""), ("size", "n"), ("modified (UTC)", ""), ("packets", "n"),
         ("handshakes", "n"), ("skipped", "n"), ("errors", "n"),
         *([("sha256", "")] if digests else [])],
    )  # fmt: skip
    for name, counts in run.by_capture.items():
        n_errors = len(run.errors.get(name, []))
        entry = run.inputs.get(name, {})
        mtime = str(entry.get("mtime") or "")
        inputs.add(
            [
                _file(name),
                (_size(run.size(name)), "n"),
                (mtime[:19].replace("T", " "), "name"),
                (f"{counts['packets']:,}", "n"),
                (f"{int(handshakes.get(name, 0)):,}", "n"),
                (f"{sum(n for _, n in skip_counts(counts)):,}", "n"),
                (f"{n_errors:,}" if n_errors else "", "n warn" if n_errors else "n"),
                *([(entry.get("sha256") or "", "w")] if digests else []),
            ]
        )
    inputs_html = "<h3>Inputs</h3>" + inputs.html(fold=top)
    if run.keylogs:
        logs = _Table("keylogs", [("key log", ""), ("size now", "n")])
        key_sizes = input_sizes(run.keylogs)
        for k in run.keylogs:
            logs.add([_file(k), (_size(key_sizes.get(k)), "n")])
        inputs_html += "<h3>Key logs</h3>" + logs.html()
    skips = _Table("skipped", [("reason", ""), ("count", "n")])
    for reason, n in skipped:
        skips.add([(reason, "w name"), (f"{n:,}", "n")])
    skips_html = "<h3>Skipped, by reason</h3>" + (
        skips.html() if skipped else "<p class='muted'>nothing skipped</p>"
    )
    for line in kernel_lines(stats):
        skips_html += f"<p><code>{_e(line)}</code></p>"
    if run.errors:
        items = "".join(
            f"<li><code>{_e(name)}</code>: {_e(line)}</li>"
            for name, lines in run.errors.items()
            for line in lines
        )
        skips_html += f"<h3 class='warn'>Errors</h3><ul id='errors'>{items}</ul>"
    every = _Table("counts", [("count", ""), ("value", "n")])
    for key, n in sorted(stats.items()):
        every.add([(key, "w name"), (f"{n:,}", "n")])
    every_html = (
        f"<details><summary>Every count of the run ({len(stats):,}, as --stats writes "
        f"them)</summary>{every.html()}</details>"
    )
    return _section("read", tiles, *notes, skips_html, inputs_html, every_html)


def _offered_section(df: pd.DataFrame, pics: _Pictures, top: int, include_ech: bool) -> str:
    left_out = shares.offer_share(df, include_ech=False)
    counted = shares.offer_share(df, include_ech=True)
    selected = shares.selection_share(df)
    n_plain = int(shares.counted_client_hellos(df).sum())
    n_all = int(shares.counted_client_hellos(df, include_ech=True).sum())
    n_known = int(shares.known_choice(df).sum())
    # (group title, counts by protocol, base): the first column sorts the rows
    columns: list[tuple[str, Mapping[str, int], int]] = []
    offer_cols = [
        (f"offered, ECH left out ({n_plain:,})", left_out, n_plain),
        (f"offered, ECH counted ({n_all:,})", counted, n_all),
    ]
    if include_ech:
        offer_cols.reverse()
    if n_all == n_plain:  # no ECH: one column
        offer_cols = [(f"offered ({plural(n_all, 'ClientHello')})", counted, n_all)]
    for title, frame, base in offer_cols:
        columns.append(
            (title, dict(zip(frame["protocol"], frame["client_hellos"], strict=True)), base)
        )
    columns.append(
        (
            f"selected ({n_known:,} known)",
            dict(zip(selected["protocol"], selected["handshakes"], strict=True)),
            n_known,
        )
    )
    order = list(dict.fromkeys([p for _, c, _ in columns for p in c]))
    # sorted by the first column (then by the others), as the CLI summary
    order.sort(key=lambda p: tuple(-c.get(p, 0) for _, c, _ in columns))
    table = _Table(
        "offered-table",
        [("protocol", ""), *[(h, "n") for _ in columns for h in ("share", "n")], ("name", "")],
        groups=[("", 1), *[(title, 2) for title, _, _ in columns], ("", 1)],
    )
    for p in order:
        cells: list[Cell] = [(p, "w")]
        for _, counts, base in columns:
            n = int(counts.get(p, 0))
            cells += [(_pct(n, base), "n"), (f"{n:,}", "n")]
        table.add([*cells, (protocol_name(p), "muted")])
    shown = min(top, 12)
    # the rows plot_shares draws: the `shown` most offered, then any other one selected
    drawn = list((counted if include_ech else left_out)["protocol"].head(shown))
    drawn += [p for p in selected["protocol"] if p not in drawn]
    picture = pics.img(
        lambda ax: plots.plot_shares(df, top=shown, include_ech=include_ech, ax=ax),
        (7.0, 0.4 * max(len(drawn), 1) + 1.7),
        "offered and selected shares per protocol",
    )
    ech = n_all - n_plain
    note = (
        f"<p>{plural(ech, 'ClientHello')} carrying ECH: "
        + (
            "counted by its outer offer in the first column"
            if include_ech
            else "left out of the first column"
        )
        + "; both columns are shown.</p>"
        if ech
        else ""
    )
    intro = (
        "<p>Share of the ClientHellos offering each protocol ID; share of the known "
        "selections choosing it (sorted as the CLI summary).</p>"
    )
    return _section("offered", intro, note, _pair(picture, table.html(fold=top)))


def _outcomes_section(df: pd.DataFrame, pics: _Pictures, top: int) -> str:
    out = shares.outcomes(df)
    counts = {str(s): int(n) for s, n in zip(out["selection"], out["handshakes"], strict=True)}
    total = sum(counts.values())
    table = _Table(
        "outcomes-table",
        [("selection", ""), ("meaning", ""), ("handshakes", "n"), ("share", "n"), ("", "")],
    )
    for s in Selection:
        n = counts.get(s.value, 0)
        table.add(
            [
                (s.value, "w name"),
                (SELECTION_MEANING[s.value], "muted"),
                (f"{n:,}", "n"),
                (_pct(n, total), "n"),
                _bar(n / total if total else 0.0, plots.OUTCOME_COLOURS.get(s.value)),
            ]
        )
    versions = (
        df["tls_version"].astype("object").where(df["tls_version"].notna(), "(no ServerHello)")
    )
    vtable = _Table("tls-versions", [("tls version", ""), ("handshakes", "n"), ("share", "n")])
    for v, n in versions.value_counts().items():
        vtable.add([(v, "w name"), (f"{int(n):,}", "n"), (_pct(int(n), len(df)), "n")])
    picture = pics.img(
        lambda ax: plots.plot_outcomes(df, ax=ax), (6.4, 3.4), "handshakes per selection value"
    )
    versions_html = "<h3>TLS version negotiated</h3>" + vtable.html()
    parts = [
        _pair(picture + versions_html, table.html()) if picture else table.html() + versions_html
    ]
    hon = shares.honoured(df)
    n_hs, n_hon = int(hon["handshakes"].sum()), int(hon["honoured"].sum())
    parts.append("<h3>Did the server take the client's first choice?</h3>")
    if not n_hs:
        parts.append("<p class='muted'>No handshake with a known selection and an offer.</p>")
        return _section("outcomes", *parts)
    parts.append(
        f"<p id='honoured'>The server took the client's first choice in <b>{n_hon:,} of "
        f"{plural(n_hs, 'handshake')}</b> with a known selection and an offer "
        f"({_pct(n_hon, n_hs)}; ECH left out).</p>"
    )
    matrix = plots.preference_matrix(df, top=top)
    pref = _Table(
        "preference-table",
        [("first choice", ""), *[(str(c), "n") for c in matrix.columns], ("total", "n")],
        groups=[("", 1), ("selected by the server", len(matrix.columns)), ("", 1)],
    )
    for first, row in matrix.iterrows():
        pref.add([(first, "w"), *[(f"{int(v):,}", "n") for v in row], (f"{int(row.sum()):,}", "n")])
    picture = pics.img(  # at least 6 in wide: its x label is longer than a narrow matrix
        lambda ax: plots.plot_preference(df, top=top, ax=ax),
        (max(6.0, 0.8 * len(matrix.columns) + 3), 0.5 * len(matrix) + 2),
        "the client's first choice against the server's selection",
    )
    if picture:
        parts.append(
            "<p class='muted'>In the picture, an orange frame marks the selections that are "
            "the client's first choice.</p>"
        )
    parts.append(_pair(picture, pref.html()))
    return _section("outcomes", *parts)


def _ech_section(df: pd.DataFrame, top: int) -> str:
    seen = df[df["alpn_offered"].notna()]
    ech = seen["ech"].fillna(False).astype(bool)
    n_ech = int(ech.sum())
    parts = [
        _tiles(
            (f"{n_ech:,}", "ClientHellos carrying ECH"),
            (_pct(n_ech, len(seen)), f"of {plural(len(seen), 'ClientHello')} seen"),
        ),
        "<p>GREASE ECH and real ECH look alike on the wire, and a real ECH hello's outer "
        "offer may be a decoy: the offer shares leave them out by default and show the "
        "“ECH counted” column beside.</p>",
    ]
    if n_ech:
        sni = seen["sni"].astype("object").where(seen["sni"].notna(), plots.NO_SNI)
        frame = seen.assign(sni=sni, ech=ech)
        groups = frame.groupby("sni", sort=True).agg(ech=("ech", "sum"), hellos=("ech", "size"))
        groups = groups[groups["ech"] > 0].sort_values("ech", ascending=False, kind="stable")
        pairs = frame.loc[frame["ech"], ["sni", "transport"]].astype(str).drop_duplicates()
        transports: dict[str, str] = {}
        for name, transport in sorted(zip(pairs["sni"], pairs["transport"], strict=True)):
            transports[name] = (
                f"{transports[name]}, {transport}" if name in transports else transport
            )
        table = _Table(
            "ech-table",
            [
                ("server name", ""),
                ("ECH ClientHellos", "n"),
                ("of its ClientHellos", "n"),
                ("transport", ""),
            ],
        )
        for name, row in groups.iterrows():
            table.add(
                [
                    (name, "w"),
                    (f"{int(row['ech']):,}", "n"),
                    (_pct(int(row["ech"]), int(row["hellos"])), "n"),
                    (transports.get(str(name), ""), ""),
                ]
            )
        parts.append(table.html(fold=top))
    return _section("ech", *parts)


def _short_names(captures: Sequence[str]) -> dict[str, str]:
    """Each capture's base name, where the base names tell the captures apart, else its
    whole name (the inputs table always shows the whole names)."""
    base = {name: os.path.basename(name) for name in captures}
    return base if len(set(base.values())) == len(base) else {name: name for name in captures}


def _matrix_table(
    table_id: str, df: pd.DataFrame, *, by: str, include_ech: bool, first: str
) -> tuple[_Table, int]:
    """Every value of ``by`` (:func:`plots.offer_matrix`, most ClientHellos first): its
    handshakes, ClientHellos counted, what its servers selected where known, its handshakes
    whose choice is encrypted, and the share offering each protocol."""
    import pandas as pd

    matrix, sizes = plots.offer_matrix(
        df, by=by, top=MAX_ROWS, protocols=MATRIX_PROTOCOLS, include_ech=include_ech
    )
    key = df[by].astype("object").where(df[by].notna(), plots.NO_SNI)
    handshakes = key.value_counts()
    known = shares.known_choice(df).to_numpy()
    pairs = pd.DataFrame({"key": key[known], "protocol": df["alpn_selected"][known].astype(str)})
    selected: dict[str, Counter[str]] = {}
    counts = pairs.groupby(["key", "protocol"], sort=False).size()
    levels = counts.index.get_level_values
    for k, p, n in zip(levels(0), levels(1), counts.tolist(), strict=True):
        selected.setdefault(str(k), Counter())[str(p)] = int(n)
    encrypted = key[(df["selection"] == "encrypted").to_numpy()].value_counts()
    n_proto = len(matrix.columns)
    table = _Table(
        table_id,
        [
            (first, ""),
            ("handshakes", "n"),
            ("ClientHellos", "n"),
            ("selected (known)", ""),
            ("encrypted", "n"),
            *[(str(c), "n") for c in matrix.columns],
        ],
        groups=[("", 5), ("share of its ClientHellos offering", n_proto)],
    )
    names = _short_names([str(v) for v in matrix.index]) if by == "capture" else {}
    for (value, row), n_hellos in zip(matrix.iterrows(), sizes.tolist(), strict=True):
        table.add(
            [
                _file(str(value), names[str(value)]) if names else (value, "w"),
                (f"{int(handshakes.get(value, 0)):,}", "n"),
                (f"{int(n_hellos):,}", "n"),
                (_count_list(selected.get(str(value), Counter())), "w"),
                (f"{int(encrypted.get(value, 0)):,}", "n"),
                *[(_share(float(v)) if v else "·", "n") for v in row],
            ]
        )
    return table, len(matrix)


def _servers_section(df: pd.DataFrame, pics: _Pictures, top: int, include_ech: bool) -> str:
    table, n = _matrix_table(
        "servers-table", df, by="sni", include_ech=include_ech, first="server name (SNI)"
    )
    picture = pics.img(
        lambda ax: plots.plot_offer_heatmap(df, top=top, include_ech=include_ech, ax=ax),
        (10.5, 0.34 * max(min(top, n), 1) + 2.0),
        "top server names against the protocols offered to them",
    )
    intro = (
        "<p>The server names with the most ClientHellos (counted as the offer shares count), "
        "the share of each one's ClientHellos offering each protocol, and what its servers "
        "selected where that is known.</p>"
    )
    return _section("servers", intro, picture, table.html(fold=top))


def _timeline_section(df: pd.DataFrame, pics: _Pictures) -> str:
    freq = plots.auto_freq(df)
    parts = [
        f"<p>Offers per {_e(plots.freq_words(freq))}, by protocol (ECH left out; a ClientHello "
        "offering two protocols is in both; beyond the top protocols, <code>other</code>).</p>"
    ]
    for of, what in (("offered", "Offers"), ("selected", "Known selections")):
        wide = plots.timeline_table(df, freq=freq, of=of)  # type: ignore[arg-type]
        if wide.empty:
            parts.append(f"<p class='muted'>{what}: no data</p>")
            continue
        if of == "offered":
            parts.append(
                pics.img(
                    lambda ax: plots.plot_timeline(df, freq=freq, ax=ax),
                    (11, 3.6),
                    "offers over time",
                )
            )
        table = _Table(
            f"timeline-{of}", [("bin start (UTC)", ""), *[(str(c), "n") for c in wide.columns]]
        )
        for start, row in wide.iterrows():
            table.add(
                [(f"{start:%Y-%m-%d %H:%M:%S}", "name"), *[(f"{int(v):,}", "n") for v in row]]
            )
        parts.append(
            f"<details><summary>{what} per bin ({len(wide):,} bins)</summary>{table.html()}</details>"
        )
    return _section("timeline", *parts)


def _captures_section(df: pd.DataFrame, pics: _Pictures, top: int, include_ech: bool) -> str:
    table, n = _matrix_table(
        "captures-table", df, by="capture", include_ech=include_ech, first="capture"
    )
    if not n:
        return _section("captures", "<p class='muted'>no data</p>")
    parts = ["<p>Each capture's ClientHellos and the share offering each protocol.</p>"]
    if not include_ech:
        counted = df["capture"][shares.counted_client_hellos(df).to_numpy(dtype=bool)]
        only_ech = sorted({str(c) for c in df["capture"]} - {str(c) for c in counted})
        if only_ech:
            listed = ", ".join(_e(c) for c in only_ech[:top])
            more = f" and {len(only_ech) - top:,} more" if len(only_ech) > top else ""
            parts.append(
                f"<p class='muted' id='captures-ech-only'>Not in this table: "
                f"{plural(len(only_ech), 'capture')} whose ClientHellos all carry ECH or were "
                f"not seen (ECH left out): {listed}{more}.</p>"
            )
    if n > 1:
        parts.append(
            pics.img(
                lambda ax: plots.plot_offer_heatmap(
                    df, by="capture", top=top, include_ech=include_ech, ax=ax
                ),
                (10.5, 0.34 * min(top, n) + 2.0),
                "offer shares per capture",
            )
        )
    parts.append(table.html(fold=max(top, 50)))
    names = list(dict.fromkeys(str(c) for c in df["capture"]))
    if len(names) == 2:
        change = shares.compare(*(df[df["capture"] == name] for name in names))
        shown = _short_names(names)
        ctable = _Table(
            "compare-table",
            [
                ("protocol", ""),
                *[(_Html(f"share in {_file_name(name, shown[name])}"), "n file") for name in names],
                ("change", "n"),
            ],
        )
        for _, row in change.iterrows():
            ctable.add(
                [
                    (row["protocol"], "w"),
                    (_share(row["share_a"]), "n"),
                    (_share(row["share_b"]), "n"),
                    (f"{100 * float(row['change']):+.1f} pp", "n"),
                ]
            )
        parts.append(
            "<h3>The two captures compared (offer share, ECH left out)</h3>" + ctable.html(fold=top)
        )
    return _section("captures", *parts)


def render_report(
    df: pd.DataFrame,
    *,
    title: str | None = None,
    top: int = 20,
    include_ech: bool = False,
    pictures: bool = True,
) -> str:
    """The HTML page of a read, as text (write it as UTF-8): ``df`` as :func:`alpnsniff.read`
    gives it, its ``attrs`` (``stats``, ``stats_by_capture``, ``errors``) included.

    ``title``: the page's heading (default ``ALPN report: <first capture> and N more``);
    ``top``: the rows a table shows before the rest folds away, and the rows of the server
    and capture pictures; ``include_ech``: the offer shares' first column counts ECH
    ClientHellos by their outer offer (``--include-ech``); ``pictures``: draw the pictures
    (matplotlib), else the tables alone. The inputs (names, sizes, times, key logs) come
    from ``df.attrs["provenance"]``; without it each capture's size is looked up on disk.
    """
    run = _Run(df.attrs, df)
    df = df.copy(deep=False)
    df.attrs = {}  # pandas would deep-copy the run's counts into every intermediate frame
    if title is None:
        first = os.path.basename(run.captures[0]) if run.captures else "no capture"
        more = f" and {len(run.captures) - 1:,} more" if len(run.captures) > 1 else ""
        title = f"ALPN report: {first}{more}"
    pics = _Pictures(pictures)
    nav = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name in _SECTIONS.items())
    rules = "".join(f"<li>{rule}</li>" for rule in RULES)
    from .. import __version__

    body = [
        _header(df, title, run),
        f"<nav>{nav}</nav><main>",
        f"<p class='warn'>{_e(pics.missing)}</p>" if pics.missing else "",
        f"<section class='rules' id='rules'><h2>How it counts</h2><ul>{rules}</ul></section>",
        _read_section(df, run, top),
        _offered_section(df, pics, top, include_ech),
        _outcomes_section(df, pics, top),
        _ech_section(df, top),
        _servers_section(df, pics, top, include_ech),
        _timeline_section(df, pics),
        _captures_section(df, pics, top, include_ech),
        f"</main><footer>alpnsniff {_e(__version__)} · one self-contained page: the pictures "
        "are embedded, nothing is fetched.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='generator' content='alpnsniff {_e(__version__)}'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )
