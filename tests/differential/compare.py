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

from tshark_view import TsharkHello, TsharkQuicClose, TsharkView, norm_ip

from alpnsniff.quic.versions import version_name
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
# QUIC only (compare_quic)
RESTART = "restart"  # tshark's CH is the first of a connection alpnsniff restarted (Retry / VN):
#   the record keeps the final ClientHello (frame: alpnsniff's, the final CH's)
SUPERSEDED = "superseded"  # tshark shows a CH that a later record on its connection superseded
QUIC_VERSION = "quic_version"  # the CH packet's version differs from the record's quic_version
QUIC_CID = "quic_cid"  # the CH packet's DCID / SCID differ from quic_dcid / quic_scid
CC_MISSING = "cc_missing"  # tshark shows the server's CONNECTION_CLOSE; the record disagrees
CC_EXTRA = "cc_extra"  # the record says rejected / aborted; tshark shows no server CC there

QUIC_ERROR_NO_ALPN = 0x178  # CRYPTO_ERROR (0x100) + TLS alert 120 no_application_protocol


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
    if rec.alpn_offered_raw is None:  # the ClientHello was not seen: what the server said
        return frozenset({Selection.ENCRYPTED} if row.tls13 else {Selection.NONE})
    if not rec.alpn_offered_raw:  # nothing offered, nothing to select
        return frozenset({Selection.NOT_OFFERED})
    if row.tls13:  # the choice, if any, is in EncryptedExtensions
        return frozenset({Selection.ENCRYPTED, Selection.DECRYPTED})
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
    # a row whose ClientHello was not seen (a server-side-only flow) pairs with no ClientHello
    # row; its ServerHello and alert are compared below like any other's
    seen = [r for r in recs if r.alpn_offered_raw is not None]
    pairs, missing, extra = _pair_client_hellos(ch_rows, seen)
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


# --- QUIC ------------------------------------------------------------------------------------


def _quic_version_name(wire: str) -> str:
    """tshark's ``0x00000001`` as alpnsniff names it ("1", "draft-29", ...)."""
    try:
        return version_name(int(wire, 16))
    except ValueError:
        return wire


def _compare_quic_pair(row: TsharkHello, rec: Handshake) -> list[Difference]:
    out: list[Difference] = []
    where = _fmt(_ch_key(row))
    restarted = bool(rec.quic_restarts) and rec.frame > row.frame
    if restarted:
        out.append(
            Difference(RESTART, rec.frame, f"{where}: tshark CH in frame {row.frame} (version "
                       f"{row.quic_version}), alpnsniff's final CH in frame {rec.frame} after "
                       f"{rec.quic_restarts} restart(s)")
        )  # fmt: skip
    elif row.frame != rec.frame:
        out.append(Difference(FRAME, row.frame, f"{where}: alpnsniff frame {rec.frame}"))
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
    if restarted:  # version and connection IDs are the first attempt's in tshark's row
        return out
    if _quic_version_name(row.quic_version) != rec.quic_version:
        out.append(
            Difference(QUIC_VERSION, row.frame, f"{where}: tshark {row.quic_version}, "
                       f"alpnsniff {rec.quic_version!r}")
        )  # fmt: skip
    if (row.quic_dcid, row.quic_scid) != (rec.quic_dcid, rec.quic_scid):
        out.append(
            Difference(QUIC_CID, row.frame, f"{where}: tshark dcid {row.quic_dcid} scid "
                       f"{row.quic_scid}, alpnsniff {rec.quic_dcid} {rec.quic_scid}")
        )  # fmt: skip
    return out


def _compare_quic_server_hellos(
    rows: Sequence[TsharkHello], recs: Sequence[Handshake], cmp: Comparison
) -> None:
    """Each ServerHello tshark shows is some record's answer: ``encrypted`` (or ``decrypted``),
    ``retried`` for a HelloRetryRequest, ``visible`` only where the SH itself carries ALPN."""
    by_server: dict[tuple[Key, int], list[Handshake]] = {}
    for rec in recs:
        if rec.server_frame is not None:
            by_server.setdefault((_rec_key(rec), rec.server_frame), []).append(rec)
    claimed: set[int] = set()
    for row in rows:
        key = _sh_key(row)
        where = _fmt(key)
        cands = by_server.get((key, row.frame), [])
        cmp.counts["quic_sh_compared"] += 1
        if not cands:
            cmp.differences.append(
                Difference(SH_MISSING, row.frame, f"{where}: tshark {row.name}, no record with "
                           f"server_frame {row.frame}")
            )  # fmt: skip
            continue
        for rec in cands:
            claimed.add(id(rec))
            if row.is_hrr:
                good = rec.selection == Selection.RETRIED
            elif row.alpn:
                good = rec.selection == Selection.VISIBLE and (rec.alpn_selected_raw,) == row.alpn
            else:
                good = rec.selection in (Selection.ENCRYPTED, Selection.DECRYPTED)
            if good:
                cmp.counts["quic_sh_equal"] += 1
            else:
                cmp.differences.append(
                    Difference(SH_SELECTION, row.frame, f"{where}: tshark {row.name} ALPN "
                               f"{row.alpn!r}, alpnsniff {rec.selection.value} "
                               f"{rec.alpn_selected_raw!r}")
                )  # fmt: skip
    answered = (Selection.ENCRYPTED, Selection.DECRYPTED, Selection.RETRIED, Selection.VISIBLE)
    for rec in recs:
        if rec.selection in answered and id(rec) not in claimed:
            cmp.differences.append(
                Difference(SH_EXTRA, rec.server_frame or rec.frame, f"{_fmt(_rec_key(rec))}: "
                           f"alpnsniff {rec.selection.value}, tshark shows no ServerHello there")
            )  # fmt: skip


def _expected_close(close: TsharkQuicClose) -> tuple[Selection, int | None]:
    if close.tls_alert == 120:
        return Selection.REJECTED, 120
    return Selection.ABORTED, close.tls_alert


def _compare_quic_closes(
    closes: Sequence[TsharkQuicClose], recs: Sequence[Handshake], cmp: Comparison
) -> None:
    """A server's CONNECTION_CLOSE in its Initial, before any ServerHello, is the record's
    answer: CRYPTO_ERROR 0x178 (alert 120) means ``rejected``, anything else ``aborted``."""
    by_key: dict[Key, list[Handshake]] = {}
    for rec in recs:
        by_key.setdefault(_rec_key(rec), []).append(rec)
    server_closes: set[tuple[Key, int]] = set()
    for close in closes:
        key = (norm_ip(close.dst), close.dport, norm_ip(close.src), close.sport)
        conn = by_key.get(key)
        if not conn:
            continue  # from a client, or a connection with no record (judged as a CH elsewhere)
        server_closes.add((key, close.frame))
        hit = [r for r in conn if r.server_frame == close.frame]
        if not hit and any(r.server_frame is not None and r.server_frame < close.frame
                           for r in conn):  # fmt: skip
            continue  # the connection was answered (ServerHello) before it closed
        cmp.counts["quic_cc_compared"] += 1
        selection, alert = _expected_close(close)
        if any(r.selection == selection and r.alert == alert for r in hit):
            cmp.counts["quic_cc_equal"] += 1
        else:
            got = [(r.frame, r.selection.value, r.alert, r.server_frame) for r in conn]
            cmp.differences.append(
                Difference(CC_MISSING, close.frame, f"{_fmt(key)}: tshark CONNECTION_CLOSE error "
                           f"0x{close.error_code:x} alert {close.tls_alert}, alpnsniff {got}")
            )  # fmt: skip
    for key, conn in by_key.items():
        for rec in conn:
            if rec.selection not in (Selection.REJECTED, Selection.ABORTED):
                continue
            if (key, rec.server_frame) not in server_closes:
                cmp.differences.append(
                    Difference(CC_EXTRA, rec.server_frame or rec.frame, f"{_fmt(key)}: alpnsniff "
                               f"{rec.selection.value} alert {rec.alert}, tshark shows no "
                               "CONNECTION_CLOSE from the server there")
                )  # fmt: skip


def compare_quic(view: TsharkView, records: Sequence[Handshake]) -> Comparison:
    """Every difference between tshark's QUIC rows (TLS in CRYPTO frames of Initials tshark
    decrypted) and alpnsniff's QUIC records. Counts use ``quic_``-prefixed keys."""
    cmp = Comparison()
    recs = [r for r in records if r.transport == "quic"]
    ch_rows = [r for r in view.quic if r.hs_type == 1]
    cmp.counts["quic_ch_compared"] = len(ch_rows)
    pairs, missing, extra = _pair_client_hellos(ch_rows, recs)
    for row, rec in pairs:
        diffs = _compare_quic_pair(row, rec)
        cmp.counts["quic_ch_differing" if diffs else "quic_ch_equal"] += 1
        cmp.differences.extend(diffs)
    for row in missing:
        later = [r for r in recs if _rec_key(r) == _ch_key(row) and r.frame > row.frame]
        if any(r.quic_restarts for r in later):
            cmp.counts["quic_ch_superseded"] += 1
            cmp.differences.append(
                Difference(SUPERSEDED, row.frame, f"{_fmt(_ch_key(row))}: tshark CH ALPN "
                           f"{row.alpn!r}; alpnsniff's record in frame {later[0].frame} "
                           f"superseded it ({later[0].quic_restarts} restart(s))")
            )  # fmt: skip
            continue
        cmp.counts["quic_ch_missing"] += 1
        cmp.differences.append(
            Difference(MISSING, row.frame, f"{_fmt(_ch_key(row))}: tshark CH ALPN {row.alpn!r} "
                       f"version {row.quic_version} (frames {row.reasm_frames}), no record")
        )  # fmt: skip
    for rec in extra:
        cmp.counts["quic_ch_extra"] += 1
        cmp.differences.append(
            Difference(EXTRA, rec.frame, f"{_fmt(_rec_key(rec))}: alpnsniff ALPN "
                       f"{rec.alpn_offered_raw!r} version {rec.quic_version} restarts "
                       f"{rec.quic_restarts}, tshark shows no ClientHello")
        )  # fmt: skip
    _compare_quic_server_hellos([r for r in view.quic if r.hs_type == 2], recs, cmp)
    _compare_quic_closes(view.quic_closes, recs, cmp)
    for d in cmp.differences:
        cmp.counts["quic_diff:" + d.kind] += 1
    return cmp
