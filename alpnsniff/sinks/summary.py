"""Run summary without pandas: offered and selected protocol shares, outcomes, skips.

Built one record at a time (:meth:`Summary.add`), so a streaming run (ndjson to stdout,
stdin input) summarises without keeping its records.

Offer statistics leave out ClientHellos that carry ECH by default: their real offer is in the
encrypted inner ClientHello, and the outer one may be a decoy. Chrome sends GREASE ECH to
every server, which looks exactly like real ECH on the wire; ``include_ech=True`` counts them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..records import Handshake, Selection
from ..tls.alpn import alpn_name, alpn_text

NO_ALPN = "(no ALPN)"
# Protocol IDs listed in the summary; the rest are summed on one line (the data has them all).
SUMMARY_TOP = 15


@dataclass
class Summary:
    include_ech: bool = False
    handshakes: int = 0
    by_transport: Counter[str] = field(default_factory=Counter)
    offer_base: int = 0  # ClientHellos counted in the offer shares
    ech: int = 0
    ech_left_out: int = 0
    offered: Counter[bytes | None] = field(default_factory=Counter)
    selected: Counter[bytes] = field(default_factory=Counter)
    selection: Counter[str] = field(default_factory=Counter)
    tls_versions: Counter[str] = field(default_factory=Counter)
    violations: int = 0

    def add(self, h: Handshake) -> None:
        self.handshakes += 1
        self.by_transport[h.transport] += 1
        self.selection[h.selection.value] += 1
        self.tls_versions[h.tls_version or "(no ServerHello)"] += 1
        if h.violation:
            self.violations += 1
        if h.ech:
            self.ech += 1
        if h.ech and not self.include_ech:
            self.ech_left_out += 1
        else:
            self.offer_base += 1
            if h.alpn_offered_raw:
                for proto in dict.fromkeys(h.alpn_offered_raw):
                    self.offered[proto] += 1
            else:
                self.offered[None] += 1
        if h.selection in (Selection.VISIBLE, Selection.DECRYPTED) and h.alpn_selected_raw:
            self.selected[h.alpn_selected_raw] += 1

    def lines(self, stats: Counter[str], *, captures: int) -> list[str]:
        """The human summary, one line each; wire strings escaped."""
        out: list[str] = []
        transports = ", ".join(f"{t} {n}" for t, n in sorted(self.by_transport.items()))
        out.append(
            f"{captures} capture(s), {stats['packets']:,} packets, "
            f"{self.handshakes:,} handshakes" + (f" ({transports})" if transports else "")
        )
        if not self.offer_base and self.ech_left_out:
            out.append(
                f"offered: all {self.ech_left_out:,} ClientHellos carry ECH and are left out "
                "of the shares; --include-ech counts them"
            )
        if self.offer_base:
            head = f"offered (share of {self.offer_base:,} ClientHellos"
            if self.ech_left_out:
                head += f"; {self.ech_left_out:,} with ECH left out, --include-ech counts them"
            out.append(head + "):")
            ranked = self.offered.most_common()
            for proto, n in ranked[:SUMMARY_TOP]:
                label = NO_ALPN if proto is None else alpn_text(proto)
                name = "" if proto is None else alpn_name(proto)
                out.append(f"  {label:<20} {100 * n / self.offer_base:6.1f}%  {n:>9,}  {name}")
            if len(ranked) > SUMMARY_TOP:
                rest = sum(n for _, n in ranked[SUMMARY_TOP:])
                out.append(f"  … {len(ranked) - SUMMARY_TOP} more protocol IDs ({rest:,} offers)")
        chosen = sum(self.selected.values())
        if chosen:
            out.append(f"selected (share of {chosen:,} selections seen or decrypted):")
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
        out.append(
            f"ECH: {self.ech:,} ClientHellos carry it (GREASE ECH and real ECH look alike on the wire)"
        )
        if self.violations:
            out.append(f"protocol violations: {self.violations:,} (column violation)")
        skipped = skip_counts(stats)
        if skipped:
            out.append("skipped: " + ", ".join(f"{k} {v:,}" for k, v in skipped))
        return out


# Counters that mean "something was not looked at, or could not be": reported as skips.
_SKIP_PREFIXES = (
    "skipped_",
    "internal_error",
    "tcp_evicted",
    "quic_evicted",
    "tcp_still_probing",
    "tcp_client_hello_",
    "tcp_server_hello_",
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


def skip_counts(stats: Counter[str]) -> list[tuple[str, int]]:
    return sorted((k, v) for k, v in stats.items() if v and k.startswith(_SKIP_PREFIXES))
