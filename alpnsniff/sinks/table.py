"""A terminal table of handshakes: one line per handshake, fixed-width, plain text.

Columns, in order: ``frame``, ``capture`` (the file's base name, or the name given when two
captures share one; shown only when the rows come from more than one capture: like
tshark, one capture needs no file column), ``transport``,
``client``, ``server`` (``ip:port``, ``[ip]:port`` for IPv6), ``sni``, ``offered`` (the
client's ALPN IDs in its order, separated by a space: an escaped ID never holds one, so
the ID ``h2,http/1.1`` and the two IDs ``h2 http/1.1`` print apart), ``selected``,
``selection``, ``tls``. An empty cell: no such field (no SNI, no ALPN, no answer).

Wire text is printed as the records escape it (:func:`~alpnsniff.tls.alpn.alpn_text`:
printable ASCII, every other octet ``\\xNN``); nothing is ever interpreted as markup, and
any character outside printable ASCII that reaches a cell (a capture's file name) is
escaped here too, so no cell can carry a terminal control sequence.

Width: each column gets what its longest cell needs. Over the width (a terminal's, by
default; a file or a pipe gets full rows), the widest free-text columns (``sni``,
``offered``, ``selected``, ``capture``, ``client``, ``server``) give way first, widest
first, and a cell too long for its column is cut with ``…`` at its end; ``frame``,
``transport``, ``selection`` and ``tls`` keep their full width. Headers stay whole while
the row can fit with them (then a column may go down to one character and ``…``); below
that (some 50 columns) a line is longer than the width rather than cut in the fixed
columns. A row is never wrapped or broken over lines. When a cell was cut, one legend line
under the table says so.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from typing import TextIO

from ..records import Handshake
from ..tls.alpn import alpn_text

HEADERS: tuple[str, ...] = (
    "frame",
    "capture",
    "transport",
    "client",
    "server",
    "sni",
    "offered",
    "selected",
    "selection",
    "tls",
)
_FRAME, _CAPTURE, _TRANSPORT, _CLIENT, _SERVER, _SNI, _OFFERED, _SELECTED = range(8)
# Columns that may be narrowed, in the order they give way when two are equally wide.
_SHRINKABLE = (_SNI, _OFFERED, _SELECTED, _CAPTURE, _CLIENT, _SERVER)
_GAP = "  "  # between columns
_CUT = "…"
_BATCH = 512  # lines per write
# the offer of a row whose ClientHello was not seen (a one-sided capture), as against ""
NOT_SEEN = "(not seen)"


def safe_text(text: str) -> str:
    """``text`` with every character outside printable ASCII written ``\\xNN`` (or ``\\u``)."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if 0x20 <= o < 0x7F:
            out.append(ch)
        elif o < 0x100:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    return "".join(out)


def _endpoint(ip: str, port: int, v6: bool) -> str:
    return f"[{ip}]:{port}" if v6 else f"{ip}:{port}"


class _Cells:
    """The cells of a row, with the few repeated values (ALPN lists, names) computed once."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.lists: dict[tuple[bytes, ...], str] = {}
        self.ids: dict[bytes | None, str] = {None: ""}

    def __call__(self, capture: str, h: Handshake) -> list[str]:
        raws = h.alpn_offered_raw
        if raws is None:  # the ClientHello was not seen (a one-sided capture)
            offered = NOT_SEEN
        else:
            known = self.lists.get(raws)
            if known is None:
                known = self.lists[raws] = " ".join(map(alpn_text, raws))
            offered = known
        selected = self.ids.get(h.alpn_selected_raw)
        if selected is None:
            raw = h.alpn_selected_raw
            assert raw is not None
            selected = self.ids[raw] = alpn_text(raw)
        v6 = h.ip_version == 6
        sni = h.sni
        return [
            str(h.frame),
            self.names[capture],
            h.transport,
            _endpoint(h.client_ip, h.client_port, v6),
            _endpoint(h.server_ip, h.server_port, v6),
            "" if sni is None else safe_text(sni),
            offered,
            selected,
            h.selection.value,
            h.tls_version or "",
        ]


def _display_names(captures: Iterable[str]) -> dict[str, str]:
    """Each capture's name as shown: its base name, or the whole name when two share one."""
    names = {c: os.path.basename(c) or c for c in captures}
    if len(set(names.values())) < len(names):
        names = {c: c for c in names}
    return {c: safe_text(n) for c, n in names.items()}


def _row_width(widths: list[int]) -> int:
    return sum(widths) + len(_GAP) * (len(widths) - 1)


def _fit(widths: list[int], limit: int, floors: list[int], order: list[int]) -> list[int]:
    """Narrow the columns ``order`` names, widest first (ties: in that order), until a row
    takes at most ``limit`` characters, gaps included, or each is at its floor."""
    widths = list(widths)
    excess = _row_width(widths) - limit
    while excess > 0:
        free = [j for j in order if widths[j] > floors[j]]
        if not free:
            break
        widest = max(widths[j] for j in free)
        at_top = [j for j in free if widths[j] == widest]
        runner_up = max([widths[j] for j in free if widths[j] < widest], default=0)
        step = max(1, min(widest - runner_up, -(-excess // len(at_top))))
        for j in at_top:
            cut = min(step, widths[j] - floors[j], excess)
            widths[j] -= cut
            excess -= cut
            if excess <= 0:
                break
    return widths


def _terminal_width(out: TextIO) -> int | None:
    """The width of the terminal ``out`` is (``$COLUMNS`` first), None when it is none."""
    try:
        if not out.isatty():
            return None
    except (AttributeError, ValueError, OSError):
        return None
    if not os.environ.get("COLUMNS"):
        try:  # out's own terminal: stdout may be another file
            return os.get_terminal_size(out.fileno()).columns or None
        except (AttributeError, ValueError, OSError):
            pass
    return shutil.get_terminal_size().columns


def _lines(rows: Iterator[list[str]], widths: list[int], cut: list[int]) -> Iterator[str]:
    """Each row as one line of fixed-width columns (``frame`` right-aligned), cells over
    their width cut with ``…``; no trailing spaces."""
    spec = [f"{{:>{widths[0]}}}"] + [f"{{:<{w}}}" for w in widths[1:]]
    fmt = _GAP.join(spec).format
    for cells in rows:
        for i in cut:
            w = widths[i]
            if len(cells[i]) > w:
                cells[i] = cells[i][: w - 1] + _CUT if w > 0 else ""
        yield fmt(*cells).rstrip()


def print_table(
    items: Iterable[tuple[str, Handshake]], out: TextIO, *, width: int | None = None
) -> None:
    """Write one line per ``(capture name, handshake)`` to ``out``, under a header line.

    ``width``: the most characters a line may take; None: the terminal's width when ``out``
    is a terminal, else no limit (a file gets full rows).
    """
    items = items if isinstance(items, list) else list(items)
    if width is None:
        width = _terminal_width(out)
    captures = dict.fromkeys(c for c, _ in items)
    cells = _Cells(_display_names(captures))
    keep = [i for i in range(len(HEADERS)) if i != _CAPTURE or len(captures) > 1]

    # first pass: what each column needs
    need = [len(HEADERS[i]) for i in keep]
    for capture, h in items:
        row = cells(capture, h)
        for j, i in enumerate(keep):
            n = len(row[i])
            if n > need[j]:
                need[j] = n
    widths = need
    shrunk: list[int] = []
    if width is not None:
        order = [keep.index(i) for i in _SHRINKABLE if i in keep]  # among the shown columns
        # headers stay whole while they can; then a column may go down to one character and …
        widths = _fit(need, width, [len(HEADERS[i]) for i in keep], order)
        if _row_width(widths) > width:
            widths = _fit(widths, width, [min(2, n) for n in need], order)
        shrunk = [j for j in range(len(keep)) if widths[j] < need[j]]

    # second pass: write, a batch of lines at a time
    header = [HEADERS[i] for i in keep]

    def rows() -> Iterator[list[str]]:
        yield header
        for capture, h in items:
            row = cells(capture, h)
            yield [row[i] for i in keep]

    batch: list[str] = []
    for line in _lines(rows(), widths, shrunk):
        batch.append(line)
        if len(batch) >= _BATCH:
            batch.append("")
            out.write("\n".join(batch))
            batch = []
    if shrunk:
        legend = f"{_CUT} cut to fit {width} columns; a pipe or a file gets full rows"
        batch.append(legend[: max(width or 0, 1)])
    if batch:
        batch.append("")
        out.write("\n".join(batch))
    out.flush()
