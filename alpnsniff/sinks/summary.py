"""Run summary without pandas: offered and selected protocol shares, outcomes, skips.

Built one record at a time (:meth:`Summary.add`), so a streaming run (ndjson to stdout,
stdin input) summarises without keeping its records.

ECH and the offer shares. A ClientHello that carries ECH has its real offer in the encrypted
inner ClientHello; its outer offer may be a decoy. But Chrome sends GREASE ECH to every
server, and GREASE ECH looks exactly like real ECH on the wire, so on browser traffic leaving
them out leaves out most browsers. The summary therefore shows two share columns side by side
whenever some ClientHello carries ECH, with one line saying why:

- ``ECH left out``: the share among the ClientHellos without ECH (the default's headline);
- ``ECH counted``: the share among all ClientHellos, ECH ones counted by their outer offer.

The first column is the one the rows are sorted by: ``ECH left out`` by default,
``ECH counted`` with ``include_ech=True`` (CLI ``--include-ech``), which swaps the two
columns. When every ClientHello carries ECH and ECH is left out, the left-out column is
empty (``-``) and the rows are sorted by the other. A run without any ECH ClientHello shows
one column (both would be the same).

A row without its ClientHello (a one-sided capture, or one begun late: ``alpn_offered``
None) is a handshake and its selection counts, but it has no offer: the offer shares are
over the rows whose ClientHello was seen, never counting a missing one as "no ALPN offered";
one line says how many rows have no offer. RFC 8701 GREASE IDs are never protocols: a
ClientHello that offers only GREASE counts as ``(no ALPN)``, as in ``alpnsniff.analytics``.

Every count of 1,000 or more is written with thousands separators; words agree with their
numbers ("1 handshake", "2 handshakes").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..flows.loss import loss_lines
from ..records import Handshake, Selection
from ..tls.alpn import alpn_name, alpn_text, offered_protocols

NO_ALPN = "(no ALPN)"
# Protocol IDs listed in the summary; the rest are summed on one line (the data has them all).
SUMMARY_TOP = 15
# Width of one share column: "100.0%" and a count up to 999,999,999, or its title.
_COLUMN = 23


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 handshake``, ``2 handshakes``, ``1,234 ClientHellos``."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def kernel_lines(stats: Counter[str], names: list[str] | None = None) -> list[str]:
    """A live run's kernel counts (none for a file): the packets it handed the rings, those
    it dropped because a ring was full (counted in the first), frames the snap length cut;
    per interface when there are several."""
    if "kernel_packets" not in stats:
        return []
    packets = stats["kernel_packets"]
    drops = stats["kernel_drops"]
    share = f" ({100 * drops / packets:.2f}%)" if packets else ""
    line = f"kernel: {plural(packets, 'packet')} captured, {drops:,} dropped{share}"
    if stats["kernel_freezes"]:
        line += f", ring frozen {stats['kernel_freezes']:,} times"
    if stats["snap_cut"]:
        line += f", {stats['snap_cut']:,} cut by the snap length"
    out = [line]
    n = 0
    while f"kernel_packets_if{n}" in stats:
        name = names[n] if names is not None and n < len(names) else f"interface {n}"
        out.append(
            f"  {name}: {stats[f'kernel_packets_if{n}']:,} packets, "
            f"{stats[f'kernel_drops_if{n}']:,} dropped"
        )
        n += 1
    return out


@dataclass
class Summary:
    include_ech: bool = False  # sort the offers by the ECH-counted column (shown first)
    handshakes: int = 0
    by_transport: Counter[str] = field(default_factory=Counter)
    ech: int = 0  # ClientHellos that carry ECH (real or GREASE)
    no_offer: int = 0  # rows whose ClientHello was not seen (alpn_offered None)
    # Offers of ClientHellos without ECH, and (outer) offers of those with ECH; None: no ALPN.
    offered_plain: Counter[bytes | None] = field(default_factory=Counter)
    offered_ech: Counter[bytes | None] = field(default_factory=Counter)
    selected: Counter[bytes] = field(default_factory=Counter)
    selection: Counter[str] = field(default_factory=Counter)
    tls_versions: Counter[str] = field(default_factory=Counter)
    violations: int = 0
    # HTTP CONNECT requests (RFC 7639) the rows carry: refused ones are rows without a
    # ClientHello, not one-sided captures
    connects: int = 0
    connect_refused: int = 0
    connect_alpn: int = 0  # with an ALPN header
    connect_not_canonical: int = 0
    connect_compared: int = 0  # with a header and a ClientHello
    connect_agree: int = 0  # of those, the declared list is the offer

    def add(self, h: Handshake) -> None:
        self.handshakes += 1
        self.by_transport[h.transport] += 1
        self.selection[h.selection.value] += 1
        self.tls_versions[h.tls_version or "(no ServerHello)"] += 1
        if h.violation:
            self.violations += 1
        if h.selection in (Selection.VISIBLE, Selection.DECRYPTED) and h.alpn_selected_raw:
            self.selected[h.alpn_selected_raw] += 1
        offers = h.alpn_offered_raw
        if h.connect_target is not None:
            self._add_connect(h)
            if offers is None and h.connect_status is not None and h.connect_status // 100 != 2:
                self.connect_refused += 1  # no TLS followed
                return
        if offers is None:  # the ClientHello was not seen: no offer, not "no ALPN"
            self.no_offer += 1
            return
        if h.ech:
            self.ech += 1
        offered = self.offered_ech if h.ech else self.offered_plain
        protocols = offered_protocols(offers)
        if protocols:
            for proto in protocols:
                offered[proto] += 1
        else:
            offered[None] += 1

    def _add_connect(self, h: Handshake) -> None:
        self.connects += 1
        if h.connect_alpn_raw is not None:
            self.connect_alpn += 1
        if h.connect_alpn_canonical is False:
            self.connect_not_canonical += 1
        if h.connect_alpn_agrees is not None:
            self.connect_compared += 1
            self.connect_agree += h.connect_alpn_agrees

    def _connect_line(self) -> str:
        """One line on the HTTP CONNECT requests (one a row: a refused one, or the one the
        TLS followed)."""
        line = f"HTTP CONNECT: {plural(self.connects, 'request')} before TLS"
        if self.connect_refused:
            line += f" ({self.connect_refused:,} refused by the proxy: a row without a ClientHello)"
        line += f"; an ALPN header (RFC 7639) on {self.connect_alpn:,}"
        if self.connect_not_canonical:
            line += f", {self.connect_not_canonical:,} not in canonical form"
        if self.connect_compared:
            line += (
                f"; the declared list is the ClientHello's offer on {self.connect_agree:,} "
                f"of {self.connect_compared:,}"
            )
        return line

    def lines(
        self,
        stats: Counter[str],
        *,
        captures: int,
        interfaces: list[str] | None = None,
        loss_always: bool = False,
    ) -> list[str]:
        """The human summary, one line each; wire strings escaped. ``interfaces``: the
        capture interfaces' names by index (the loss estimate's lines), when known;
        ``loss_always``: the loss line also when no gap was found (a live run)."""
        out: list[str] = []
        transports = ", ".join(f"{t} {n:,}" for t, n in sorted(self.by_transport.items()))
        out.append(
            f"{plural(captures, 'capture')}, {plural(stats['packets'], 'packet')}, "
            f"{plural(self.handshakes, 'handshake')}" + (f" ({transports})" if transports else "")
        )
        if self.no_offer:
            out.append(
                f"no offer: {plural(self.no_offer, 'row')} without a ClientHello (a one-sided "
                "capture, or one begun late: alpn_offered null), left out of the offer shares"
            )
        if self.connects:
            out.append(self._connect_line())
        if self.handshakes > self.no_offer + self.connect_refused:  # the rest: ClientHellos
            out.extend(self._offer_lines())
        chosen = sum(self.selected.values())
        if chosen:
            out.append(f"selected (share of {plural(chosen, 'selection')} seen or decrypted):")
            for proto, n in self.selected.most_common():
                out.append(
                    f"  {alpn_text(proto):<20} {100 * n / chosen:6.1f}%  {n:>9,}  {alpn_name(proto)}"
                )
        if self.handshakes:
            order = [s.value for s in Selection]
            parts = [f"{s} {self.selection[s]:,}" for s in order if self.selection[s]]
            out.append("selection: " + ", ".join(parts))
            versions = ", ".join(f"{v} {n:,}" for v, n in self.tls_versions.most_common())
            out.append("tls version: " + versions)
        if self.violations:
            out.append(f"protocol violations: {self.violations:,} (column violation)")
        out.extend(kernel_lines(stats, interfaces))
        out.extend(loss_lines(stats, interfaces, always=loss_always))
        out.extend(_not_dissected_lines(stats))
        errors = stats["internal_error"]
        if errors > 0:
            out.append(
                f"{plural(errors, 'packet')} hit an internal error and "
                f"{'was' if errors == 1 else 'were'} skipped (see the first message above)"
            )
        skipped = [(k, v) for k, v in skip_counts(stats) if k != "internal_error"]
        if skipped:
            out.append("skipped:")
            width = max(len(reason) for reason, _ in skipped)
            cw = max(len(f"{n:,}") for _, n in skipped)
            out.extend(f"  {reason:<{width}}  {n:>{cw},}" for reason, n in skipped)
        return [line.rstrip() for line in out]  # "(no ALPN)" has no name

    def _offer_lines(self) -> list[str]:
        """The ECH line and the offer shares (one column, or two when some hello has ECH)."""
        total = self.handshakes - self.no_offer - self.connect_refused  # the ClientHellos seen
        plain = total - self.ech
        if not self.ech:
            out = [
                "ECH: not carried by the ClientHello"
                if total == 1
                else f"ECH: carried by none of the {total:,} ClientHellos"
            ]
            out.append(f"offered (share of {plural(total, 'ClientHello')}):")
            ranked = self.offered_plain.most_common()
            for proto, n in ranked[:SUMMARY_TOP]:
                out.append(
                    f"  {_label(proto):<20} {100 * n / total:6.1f}%  {n:>9,}  {_name(proto)}"
                )
            if len(ranked) > SUMMARY_TOP:
                rest = sum(n for _, n in ranked[SUMMARY_TOP:])
                more = f"… {len(ranked) - SUMMARY_TOP:,} more IDs"
                out.append(f"  {more:<20} {'':>7}  {rest:>9,}  (offers)")
            return out
        verb = "carries" if self.ech == 1 else "carry"
        out = [
            f"ECH: {self.ech:,} of {plural(total, 'ClientHello')} {verb} it: GREASE ECH and "
            "real ECH look alike on the wire, and a real ECH hello's outer offer may be a "
            "decoy, so both shares are shown"
        ]
        counted = self.offered_plain + self.offered_ech
        left_out = self.offered_plain
        columns = [(f"ECH left out ({plain:,})", left_out, plain)]
        columns.append((f"ECH counted ({total:,})", counted, total))
        if self.include_ech:
            columns.reverse()
        # sorted by the first column (by the other when the first has no ClientHello)
        keys = [c for _, c, base in columns if base] + [counted]
        ids = list(dict.fromkeys([*self.offered_plain, *self.offered_ech]))
        ids.sort(key=lambda p: (-keys[0][p], -keys[1][p]))
        out.append(
            "offered (share of ClientHellos, count):"
            if not self.include_ech
            else "offered (share of ClientHellos, count; --include-ech: sorted by ECH counted):"
        )
        out.append(f"  {'':<20}" + "".join(f"{title:>{_COLUMN}}" for title, _, _ in columns))
        for proto in ids[:SUMMARY_TOP]:
            cells = "".join(_cell(c[proto], base) for _, c, base in columns)
            out.append(f"  {_label(proto):<20}{cells}  {_name(proto)}")
        if len(ids) > SUMMARY_TOP:
            more = f"… {len(ids) - SUMMARY_TOP:,} more IDs"
            rests = [sum(c[p] for p in ids[SUMMARY_TOP:]) for _, c, _ in columns]
            cells = "".join(f"{n:>{_COLUMN},}" for n in rests)
            out.append(f"  {more:<20}{cells}  (offers)")
        return out


_NOT_DISSECTED = "_connections_not_dissected"
_LATER = {"dtls": " (DTLS support comes later)"}


def _not_dissected_lines(stats: Counter[str]) -> list[str]:
    """One line a protocol recognised but not dissected yet (the pipeline counts its
    connections as ``<name>_connections_not_dissected``, records as
    ``<name>_records_not_dissected``): ``DTLS: 3 connections seen, not dissected (…)``."""
    out = []
    for key in sorted(k for k, v in stats.items() if v > 0 and k.endswith(_NOT_DISSECTED)):
        name = key.removesuffix(_NOT_DISSECTED)
        records = stats[f"{name}_records_not_dissected"]
        seen = plural(stats[key], "connection")
        if records > 0:
            seen += f" ({plural(records, 'record')})"
        out.append(f"{name.upper()}: {seen} seen, not dissected{_LATER.get(name, '')}")
    return out


def _label(proto: bytes | None) -> str:
    return NO_ALPN if proto is None else alpn_text(proto)


def _name(proto: bytes | None) -> str:
    return "" if proto is None else alpn_name(proto)


def _cell(n: int, base: int) -> str:
    if not base:
        return f"{'-':>{_COLUMN}}"
    return f"{f'{100 * n / base:6.1f}%  {n:>9,}':>{_COLUMN}}"


# Counters that mean "something was not looked at, or could not be": reported as skips.
_SKIP_PREFIXES = (
    "skipped_",
    "internal_error",
    "tcp_evicted",
    "quic_evicted",
    "tcp_still_probing",
    "tcp_client_hello_",
    "tcp_server_hello_",
    "tcp_server_flight_",
    "tcp_client_flight_",
    "quic_server_only_",
    "tcp_client_stream_",
    "tcp_server_stream_",
    "tcp_segments_after_stream_error",
    "tcp_handshake_stream",
    "quic_client_hello_",
    "quic_server_hello_",
    "quic_initial_undecryptable",
    "truncated_records",
    "corrupt_records",
    "remembered_generations",
)


# Counters under a skip prefix that count rows, not skips: a server's answer without its
# ClientHello is a row (alpn_offered null), said on its own line.
_NOT_SKIPS = frozenset({"tcp_server_hello_without_client_hello"})


def skip_counts(stats: Counter[str]) -> list[tuple[str, int]]:
    """Skip reasons and counts, most first (then by name); the ``skipped_`` prefix dropped
    (``skipped_non-ip`` -> ``non-ip``)."""
    found = [
        (k.removeprefix("skipped_"), v)
        for k, v in stats.items()
        if v and k.startswith(_SKIP_PREFIXES) and k not in _NOT_SKIPS
    ]
    return sorted(found, key=lambda kv: (-kv[1], kv[0]))
