"""The summary's shares per group (``alpnsniff read --by COLUMN --top N``), without pandas.

For each value of one column (``sni``, ``server_ip``, ``server_port``, ``capture``,
``quic_version``, … any column of one value per row), counted one record at a time as
:class:`~alpnsniff.sinks.summary.Summary` counts the whole run, with its rules: a ClientHello
counts when it was seen; one that carries ECH is left out of the offers unless
``include_ech``; GREASE IDs (RFC 8701) are never protocols; an ID offered twice counts once;
a selection counts when it was seen or decrypted. The groups listed are the ``top`` with the
most ClientHellos (selected: the most selections), then by value; the rest are summed on one
line. The same numbers as ``alpnsniff.analytics.offer_share(df, by=COLUMN)`` and
``selection_share``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ..records import COLUMN_TABLE, Handshake, Kind, Selection
from ..tls.alpn import alpn_text, offered_protocols
from .rows import row
from .summary import NO_ALPN, plural
from .table import safe_text

# Columns a group can be made by: one value per row (not the lists, not the time).
GROUP_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in COLUMN_TABLE if c.kind not in (Kind.LIST_STR, Kind.LIST_INT, Kind.TIMESTAMP)
)
# Protocols named on a group's line; the rest are summed.
PROTOCOLS_SHOWN = 4
_KNOWN = (Selection.VISIBLE, Selection.DECRYPTED)


def _value_text(value: object) -> str:
    """A group's value as the summary prints it (None: ``(none)``), terminal-safe."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return safe_text(str(value))


class GroupedShares:
    """Offer and selection shares per value of ``column`` (see the module's docstring)."""

    def __init__(self, column: str, *, top: int = 20, include_ech: bool = False) -> None:
        if column not in GROUP_COLUMNS:
            raise ValueError(
                f"--by {column}: not a column of one value per row; one of "
                + ", ".join(GROUP_COLUMNS)
            )
        self.column = column
        self.top = top
        self.include_ech = include_ech
        self._value: Callable[[Handshake, str], object] = lambda h, capture: row(h, capture)[column]
        self.client_hellos: Counter[str] = Counter()  # counted ClientHellos per group
        self.offered: dict[str, Counter[str]] = {}
        self.selections: Counter[str] = Counter()
        self.selected: dict[str, Counter[str]] = {}
        self.left_out_ech = 0

    def add(self, h: Handshake, capture: str) -> None:
        group = _value_text(self._value(h, capture))
        offers = h.alpn_offered_raw
        if offers is not None:
            if h.ech and not self.include_ech:
                self.left_out_ech += 1
            else:
                self.client_hellos[group] += 1
                counts = self.offered.setdefault(group, Counter())
                protocols = [alpn_text(p) for p in offered_protocols(offers)]
                if not protocols:  # no ALPN, or only GREASE IDs
                    protocols = [NO_ALPN]
                counts.update(protocols)
        chosen = h.alpn_selected_raw
        if h.selection in _KNOWN and chosen is not None:
            self.selections[group] += 1
            self.selected.setdefault(group, Counter())[alpn_text(chosen)] += 1

    def lines(self) -> list[str]:
        """The two tables (offered, selected), one line a group."""
        out: list[str] = []
        ech = "ECH counted" if self.include_ech else f"ECH left out: {self.left_out_ech:,}"
        out.extend(
            self._table("offered", self.client_hellos, self.offered, "ClientHellos", f"; {ech}")
        )
        out.extend(self._table("selected", self.selections, self.selected, "selections", ""))
        return out

    def _table(
        self,
        what: str,
        bases: Counter[str],
        counts: dict[str, Counter[str]],
        unit: str,
        note: str,
    ) -> list[str]:
        groups = sorted(bases, key=lambda g: (-bases[g], g))
        shown = groups[: self.top]
        some = f"the top {len(shown):,} of " if len(shown) < len(groups) else ""
        head = f"{what} by {self.column} ({some}{plural(len(groups), 'value')} by {unit}{note}):"
        if not groups:
            return [f"{what} by {self.column}: no {unit}"]
        width = min(max(len(g) for g in shown), 40)
        out = [head, f"  {self.column:<{width}}  {unit:>12}  protocols (share of the group's)"]
        for group in shown:
            base = bases[group]
            ranked = sorted(counts[group].items(), key=lambda kv: (-kv[1], kv[0]))
            parts = [f"{p} {100 * n / base:.1f}%" for p, n in ranked[:PROTOCOLS_SHOWN]]
            if len(ranked) > PROTOCOLS_SHOWN:
                parts.append(f"… {len(ranked) - PROTOCOLS_SHOWN} more")
            label = group if len(group) <= width else group[: width - 1] + "…"
            out.append(f"  {label:<{width}}  {base:>12,}  " + ", ".join(parts))
        if len(groups) > len(shown):
            rest = sum(bases[g] for g in groups[len(shown) :])
            more = f"… {len(groups) - len(shown):,} more"
            out.append(f"  {more:<{width}}  {rest:>12,}")
        return out
