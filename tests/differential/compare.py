"""Compare alpnsniff's TCP handshake records with tshark's rows for the same capture.

A ClientHello is matched by its connection (client ip/port, server ip/port) and the frame that
completed it; a ServerHello by the connection and ``server_frame``. Whatever does not match
becomes a :class:`Difference`, named by a ``kind`` and tshark's frame number (alpnsniff's for
what only alpnsniff reports), so a table of known differences can name each one exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from tshark_view import TsharkHello, TsharkView, norm_ip

from alpnsniff.records import Handshake, Selection

Key = tuple[str, int, str, int]  # client ip, client port, server ip, server port

# kinds of Difference
MISSING = "missing"  # tshark dissects a ClientHello, alpnsniff has no record for it
EXTRA = "extra"  # alpnsniff reports a ClientHello tshark does not show
FRAME = "frame"  # same connection and hello, completed in another frame
ALPN = "alpn"  # offered ALPN lists differ (octets or order)
SNI = "sni"  # server_name differs
SSLV2 = "sslv2"  # one side says SSLv2-format hello, the other not
SH_MISSING = "sh_missing"  # tshark shows a ServerHello ALPN; no record has this server_frame
SH_ALPN = "sh_alpn"  # the record's selection differs from what tshark shows in the SH
SH_SELECTION = "sh_selection"  # SH without ALPN, yet the record's selection does not fit it
SH_EXTRA = "sh_extra"  # a record says "visible" where tshark shows no ServerHello ALPN
ALERT_MISSING = "alert_missing"  # tshark shows the server's alert 120; the record has none
ALERT_EXTRA = "alert_extra"  # the record says alert 120; tshark shows none from that server


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str
    frame: int  # tshark's frame; alpnsniff's frame for EXTRA / SH_EXTRA / ALERT_EXTRA
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} @ frame {self.frame}: {self.detail}"


@dataclass(slots=True)
class Comparison:
    differences: list[Difference] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def _ch_key(row: TsharkHello) -> Key:
    return (norm_ip(row.src), row.sport, norm_ip(row.dst), row.dport)


def _sh_key(row: TsharkHello) -> Key:
    return (norm_ip(row.dst), row.dport, norm_ip(row.src), row.sport)


def _rec_key(rec: Handshake) -> Key:
    return (norm_ip(rec.client_ip), rec.client_port, norm_ip(rec.server_ip), rec.server_port)


def _fmt(key: Key) -> str:
    return f"{key[0]}:{key[1]} -> {key[2]}:{key[3]}"


def _comparable_sni(sni: str | None) -> bool:
    """tshark escapes non-printable octets its own way; compare plain ASCII names only."""
    return sni is None or all(0x20 < ord(c) < 0x7F and c != "\\" for c in sni)


def _pair_client_hellos(
    rows: Sequence[TsharkHello], recs: Sequence[Handshake]
) -> tuple[list[tuple[TsharkHello, Handshake]], list[TsharkHello], list[Handshake]]:
    """(pairs, tshark rows left over, records left over): same frame first, then same
    connection in frame order."""
    free: dict[Key, list[Handshake]] = {}
    for rec in recs:
        free.setdefault(_rec_key(rec), []).append(rec)
    pairs: list[tuple[TsharkHello, Handshake]] = []
    left: list[TsharkHello] = []
    for row in rows:
        cands = free.get(_ch_key(row), [])
        hit = next((i for i, r in enumerate(cands) if r.frame == row.frame), None)
        if hit is None:
            left.append(row)
        else:
            pairs.append((row, cands.pop(hit)))
    missing: list[TsharkHello] = []
    for row in left:
        cands = free.get(_ch_key(row), [])
        if cands:
            pairs.append((row, cands.pop(0)))
        else:
            missing.append(row)
    extra = sorted((r for lst in free.values() for r in lst), key=lambda r: r.frame)
    return pairs, missing, extra


def _compare_pair(row: TsharkHello, rec: Handshake) -> list[Difference]:
    out: list[Difference] = []
    where = _fmt(_ch_key(row))
    if row.frame != rec.frame:
        out.append(Difference(FRAME, row.frame, f"{where}: alpnsniff frame {rec.frame}"))
    if row.sslv2 != rec.sslv2:
        out.append(
            Difference(SSLV2, row.frame, f"{where}: tshark {row.sslv2}, alpnsniff {rec.sslv2}")
        )
    if row.alpn != rec.alpn_offered_raw:
        out.append(
            Difference(
                ALPN, row.frame, f"{where}: tshark {row.alpn!r}, alpnsniff {rec.alpn_offered_raw!r}"
            )
        )
    if _comparable_sni(row.sni) and row.sni != rec.sni:
        out.append(
            Difference(SNI, row.frame, f"{where}: tshark {row.sni!r}, alpnsniff {rec.sni!r}")
        )
    return out


def _selections_without_alpn(row: TsharkHello, rec: Handshake) -> frozenset[Selection]:
    """What a record may say when tshark shows this ServerHello / HRR with no ALPN."""
    if row.is_hrr:
        return frozenset({Selection.RETRIED})
    if row.tls13:  # the choice, if any, is in EncryptedExtensions
        maybe_none = {Selection.NONE} if not rec.alpn_offered_raw else set()
        return frozenset({Selection.ENCRYPTED, Selection.DECRYPTED, *maybe_none})
    return frozenset({Selection.NONE})  # TLS <= 1.2: no ALPN in the ServerHello means none


def _compare_server_hellos(
    rows: Sequence[TsharkHello], recs: Sequence[Handshake], cmp: Comparison
) -> None:
    by_server: dict[tuple[Key, int], list[Handshake]] = {}
    for rec in recs:
        if rec.server_frame is not None:
            by_server.setdefault((_rec_key(rec), rec.server_frame), []).append(rec)
    claimed: set[int] = set()
    for row in rows:
        key = _sh_key(row)
        cands = by_server.get((key, row.frame), [])
        where = _fmt(key)
        if not row.alpn:
            for rec in cands:
                if rec.selection == Selection.VISIBLE:
                    claimed.add(id(rec))
                    cmp.differences.append(
                        Difference(SH_ALPN, row.frame, f"{where}: tshark shows no ALPN in the "
                                   f"{row.name}, alpnsniff visible {rec.alpn_selected_raw!r}")
                    )  # fmt: skip
                    continue
                cmp.counts["sh_selection_compared"] += 1
                allowed = _selections_without_alpn(row, rec)
                if rec.selection in allowed:
                    cmp.counts["sh_selection_equal"] += 1
                else:
                    cmp.differences.append(
                        Difference(SH_SELECTION, row.frame, f"{where}: {row.name} without ALPN "
                                   f"(TLS 1.3: {row.tls13}), alpnsniff {rec.selection.value}, "
                                   f"expected one of {sorted(s.value for s in allowed)}")
                    )  # fmt: skip
            continue
        cmp.counts["sh_alpn_compared"] += 1
        if not cands:
            cmp.differences.append(
                Difference(SH_MISSING, row.frame, f"{where}: tshark ALPN {row.alpn!r}, no record "
                           f"with server_frame {row.frame}")
            )  # fmt: skip
            continue
        for rec in cands:
            claimed.add(id(rec))
            good = (
                rec.selection == Selection.VISIBLE
                and len(row.alpn) == 1
                and rec.alpn_selected_raw == row.alpn[0]
            )
            if good:
                cmp.counts["sh_alpn_equal"] += 1
            else:
                cmp.differences.append(
                    Difference(SH_ALPN, row.frame, f"{where}: tshark {row.alpn!r}, alpnsniff "
                               f"{rec.selection.value} {rec.alpn_selected_raw!r}")
                )  # fmt: skip
    for rec in recs:
        if rec.selection == Selection.VISIBLE and id(rec) not in claimed:
            cmp.differences.append(
                Difference(SH_EXTRA, rec.server_frame or rec.frame, f"{_fmt(_rec_key(rec))}: "
                           f"alpnsniff visible {rec.alpn_selected_raw!r}, tshark no SH ALPN there")
            )  # fmt: skip


def _compare_alerts(view: TsharkView, recs: Sequence[Handshake], cmp: Comparison) -> None:
    server_alerts: dict[Key, int] = {}
    for a in view.alerts:  # an alert from the server of the connection: src is the server
        server_alerts.setdefault((norm_ip(a.dst), a.dport, norm_ip(a.src), a.sport), a.frame)
    by_key: dict[Key, list[Handshake]] = {}
    for rec in recs:
        by_key.setdefault(_rec_key(rec), []).append(rec)
    for key, frame in server_alerts.items():
        conn = by_key.get(key)
        if not conn:
            continue  # no record for this connection: reported as a missing ClientHello
        cmp.counts["alert120_compared"] += 1
        if any(r.alert == 120 and r.selection == Selection.REJECTED for r in conn):
            cmp.counts["alert120_equal"] += 1
        else:
            got = [(r.selection.value, r.alert) for r in conn]
            cmp.differences.append(
                Difference(ALERT_MISSING, frame, f"{_fmt(key)}: tshark alert 120, alpnsniff {got}")
            )
    for key, conn in by_key.items():
        for rec in conn:
            if rec.alert == 120 and key not in server_alerts:
                cmp.differences.append(
                    Difference(ALERT_EXTRA, rec.frame, f"{_fmt(key)}: alpnsniff alert 120, "
                               "tshark shows none from the server")
                )  # fmt: skip


def compare_tcp(view: TsharkView, records: Sequence[Handshake]) -> Comparison:
    """Every difference between tshark's TLS-over-TCP rows and alpnsniff's TCP records."""
    cmp = Comparison()
    recs = [r for r in records if r.transport == "tcp"]
    ch_rows = [r for r in view.tcp if r.hs_type == 1]
    cmp.counts["ch_compared"] = len(ch_rows)
    cmp.counts["udp_rows_excluded"] = len(view.quic) + len(view.other)
    pairs, missing, extra = _pair_client_hellos(ch_rows, recs)
    for row, rec in pairs:
        diffs = _compare_pair(row, rec)
        cmp.counts["ch_differing" if diffs else "ch_equal"] += 1
        cmp.differences.extend(diffs)
    for row in missing:
        cmp.counts["ch_missing"] += 1
        cmp.differences.append(
            Difference(MISSING, row.frame, f"{_fmt(_ch_key(row))}: tshark {row.name} "
                       f"ALPN {row.alpn!r} (frames {row.reasm_frames}), no alpnsniff record")
        )  # fmt: skip
    for rec in extra:
        cmp.counts["ch_extra"] += 1
        cmp.differences.append(
            Difference(EXTRA, rec.frame, f"{_fmt(_rec_key(rec))}: alpnsniff ALPN "
                       f"{rec.alpn_offered_raw!r} sslv2={rec.sslv2}, tshark shows no ClientHello")
        )  # fmt: skip
    _compare_server_hellos([r for r in view.tcp if r.hs_type == 2], recs, cmp)
    _compare_alerts(view, recs, cmp)
    for d in cmp.differences:
        cmp.counts["diff:" + d.kind] += 1
    return cmp
