"""alpnsniff against tshark 4.0.17 on every capture: QUIC.

For each capture in ``captures/``, ``../shared/realcap`` and ``../shared/corpus/pcaps``, every
ClientHello tshark decrypts from QUIC Initials must come out of alpnsniff with the same offered
ALPN octets (and SNI, QUIC version, connection IDs), matched by addresses, ports and the frame
that completed it; every QUIC ServerHello tshark shows must be the answer (``server_frame``)
of a record whose selection is ``encrypted`` (or ``decrypted``); every CONNECTION_CLOSE a
server sends in its Initial must be the record's answer (0x178, alert 120: ``rejected``).
See ``compare.compare_quic`` for the rules.

alpnsniff's QUIC semantics (``alpnsniff/quic/connection.py``): a connection restarted by a
Retry or a Version Negotiation is ONE record carrying its final ClientHello (``quic_restarts``
counts the superseded ones); retransmitted CRYPTO data gives no second record.

``KNOWN_DIFFERENCES`` lists every difference that is not an alpnsniff bug, each checked by
reading the bytes (``tshark -V -x``; the Initials also decrypted independently with aioquic's
``CryptoPair``) and against the truth caveats (``../shared/corpus/truth/README.md``). A listed
difference that no longer occurs fails too. The tshark runs are the session cache shared with
the TCP comparison (``conftest.tshark_cache``): no capture is dissected twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from compare import compare_quic
from tshark_view import (
    TsharkCache,
    TsharkHello,
    TsharkQuicClose,
    TsharkView,
    capture_files,
    capture_params,
    read_truth,
    truth_name,
)

from alpnsniff.pipeline import RunResult, analyze_file
from alpnsniff.records import Handshake, Selection

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
FOLDERS: tuple[tuple[str, Path], ...] = (
    ("captures", REPO / "captures"),
    ("realcap", SHARED / "realcap"),
    ("corpus", SHARED / "corpus" / "pcaps"),
)
TRUTH = SHARED / "corpus" / "truth"

pytestmark = [pytest.mark.tshark]


@dataclass(frozen=True, slots=True)
class Known:
    file: str
    kind: str  # a compare.py kind: restart, extra, quic_cid, missing, sh_missing, ...
    frames: tuple[int, ...]  # tshark's frame; alpnsniff's for restart, extra, sh_extra, cc_extra
    what: str
    right: str  # who is right: "alpnsniff", "tshark", "both"
    why: str
    stat: str = ""  # an alpnsniff stats counter that must be > 0: the event is counted


_RETRY = (
    "after the Retry the client (aioquic) sends a NEW ClientHello (other random and key share, "
    "tshark -x shows both decrypted) at CRYPTO offset 0 under the Retry's SCID; tshark 4.0 "
    "decrypts it but marks the CRYPTO frame 'reused stream offset (retransmission?)' and shows "
    "no second Client Hello, so its only row is the superseded first ClientHello. alpnsniff "
    "reports the connection once, with its final ClientHello (quic_restarts=1); the offer "
    "lists are the same"
)
_VN = (
    "frame 1 is a v2 Initial, frame 2 a Version Negotiation, frame 3 the client's new v1 "
    "Initial with the same DCID: tshark keeps the v2 keys ('Decryption (checktag) failed') and "
    "shows no second ClientHello; aioquic's CryptoPair opens frame 3 with the v1 keys (a "
    "ClientHello offering h3). alpnsniff reports one record with the final v1 ClientHello "
    "(quic_restarts=1); tshark's row is the superseded v2 one"
)
_CID_SWITCH = (
    "the client changed its DCID mid-ClientHello to the server's SCID (RFC 9000 7.2) after the "
    "server's first Initial; tshark's row carries the DCID of the packet that completed the "
    "ClientHello, alpnsniff's quic_dcid is the client's original DCID, from which both sides' "
    "Initial keys come (RFC 9001 5.2): two definitions, both true"
)

KNOWN_DIFFERENCES: tuple[Known, ...] = (
    Known("aioquic_retry.pcap", "restart", (3,),
          "Retry: tshark's CH is frame 1, alpnsniff's final CH frame 3", "alpnsniff", _RETRY,
          stat="quic_client_hellos_superseded"),
    Known("aioquic_h3_v1_retry.pcap", "restart", (3,),
          "Retry: tshark's CH is frame 1, alpnsniff's final CH frame 3", "alpnsniff", _RETRY,
          stat="quic_client_hellos_superseded"),
    Known("aioquic_h3_v1_retry_dsb.pcapng", "restart", (3,),
          "Retry: tshark's CH is frame 1, alpnsniff's final CH frame 3", "alpnsniff", _RETRY,
          stat="quic_client_hellos_superseded"),
    Known("aioquic_h3_v2_incompatible_vn_to_v1.pcap", "restart", (3,),
          "Version Negotiation v2 -> v1: tshark's CH is the v2 one in frame 1", "alpnsniff", _VN,
          stat="quic_version_negotiations"),
    Known("aioquic_h3_v2_incompatible_vn_to_v1_dsb.pcapng", "restart", (3,),
          "Version Negotiation v2 -> v1: tshark's CH is the v2 one in frame 1", "alpnsniff", _VN,
          stat="quic_version_negotiations"),
    Known("nDPI__quic-forcing-vn-with-data.pcapng", "extra", (5,),
          "tshark decrypts none of the client Initials (frames 1 v0xbabababa, 3 v1 after VN, 5 "
          "v1 after Retry: 'Decryption (checktag) failed'); it shows only the server's SH "
          "(frame 6, matched to the record)", "alpnsniff",
          "truth caveat 4 (a truth miss): aioquic's CryptoPair opens frames 3 and 5 with the "
          "v1 keys of their DCIDs, and nDPI's own result file shows the same offer (h3, h3-29, "
          "h3-28, h3-27, hq-interop, hq-29, hq-28, hq-27, http/0.9); alpnsniff keeps the final "
          "ClientHello (quic_restarts=2)", stat="quic_client_hellos_superseded"),
    Known("nDPI__quic_frags_different_dcid.pcapng", "quic_cid", (3,),
          "CH over frames 1 (DCID ac49898ddc4590e8) and 3 (DCID 0164bccb...ab44, 20 bytes)",
          "both", _CID_SWITCH),
    Known("zeek__quic_quic-decrypt-fail-google-de-51833.pcap", "quic_cid", (9,),
          "CH over frames 4, 6, 7 (DCID cb6b96982d235f50) and 8, 9 (DCID eb6b96982d235f50, the "
          "SCID of the server's Initial in frame 5)", "both", _CID_SWITCH),
)  # fmt: skip

KINDS = frozenset({
    "missing", "extra", "frame", "alpn", "sni", "restart", "superseded", "quic_version",
    "quic_cid", "sh_missing", "sh_selection", "sh_extra", "cc_missing", "cc_extra",
})  # fmt: skip


PARAMS = capture_params(FOLDERS)
ALL_FILES = [p.values[0] for p in PARAMS if p.values[0] is not None]


def _has_quic(view: TsharkView, result: RunResult) -> bool:
    return bool(
        view.quic
        or view.quic_closes
        or any(r.transport == "quic" for r in result.handshakes)
        or any(k.startswith("quic_") and v for k, v in result.stats.items())
    )


@pytest.mark.parametrize("capture", PARAMS)
def test_quic_matches_tshark(
    capture: Path, tshark_cache: TsharkCache, diff_tally: Counter[str]
) -> None:
    tshark_cache.prefetch(ALL_FILES)  # every file, in the background, 2 at a time
    result = analyze_file(capture)
    view = tshark_cache.get(capture)
    diff_tally["quic_files_scanned"] += 1
    if not _has_quic(view, result):
        return  # no QUIC on either side: nothing to compare (and nothing extra)
    cmp = compare_quic(view, result.handshakes)
    known = {(k.kind, f): k for k in KNOWN_DIFFERENCES if k.file == capture.name for f in k.frames}
    seen = {(d.kind, d.frame) for d in cmp.differences}
    diff_tally.update(cmp.counts)
    diff_tally["quic_files"] += 1
    diff_tally["quic_known"] += len(seen & known.keys())
    unexplained = [str(d) for d in cmp.differences if (d.kind, d.frame) not in known]
    diff_tally["quic_unexplained"] += len(unexplained)
    gone = [
        f"{k.kind} @ frame {f}: {k.what}" for (kind, f), k in known.items() if (kind, f) not in seen
    ]
    assert not unexplained, "QUIC differences from tshark:\n" + "\n".join(unexplained)
    assert not gone, "known QUIC differences that no longer occur:\n" + "\n".join(gone)
    uncounted = [k.stat for k in known.values() if k.stat and not result.stats.get(k.stat)]
    assert not uncounted, f"alpnsniff did not count these events: {sorted(set(uncounted))}"


def test_known_differences_are_well_formed() -> None:
    for k in KNOWN_DIFFERENCES:
        assert k.kind in KINDS, k
        assert k.frames, k
        assert k.right in ("alpnsniff", "tshark", "both"), k
        assert k.what and k.why, k
    keys = [(k.file, k.kind, f) for k in KNOWN_DIFFERENCES for f in k.frames]
    assert len(keys) == len(set(keys))


# --- the tshark side of QUIC: connection IDs and CONNECTION_CLOSE ------------------------------


def test_view_quic_rows_carry_the_truths_connection_ids(tshark_cache: TsharkCache) -> None:
    """The CIDs tshark_view reads are the truth's ``quic_dcid`` / ``quic_scid`` columns."""
    folder = SHARED / "corpus" / "pcaps"
    if not TRUTH.is_dir() or not folder.is_dir():
        pytest.skip(f"{TRUTH} or {folder} absent")
    compared = 0
    for path in capture_files(folder):
        truth = [t for t in read_truth(TRUTH / f"{truth_name(path)}.tsv") if t["proto"] == "quic"]
        if not truth:
            continue
        rows = tshark_cache.get(path).quic
        got = [(r.frame, r.hs_type, r.quic_dcid, r.quic_scid) for r in rows]
        want = [(int(t["frame"]), int(t["hs_type"]), t["quic_dcid"], t["quic_scid"]) for t in truth]
        assert got == want, path.name
        compared += len(rows)
    assert compared >= 100  # 118 QUIC rows in the corpus truth


def test_view_reads_the_servers_quic_connection_close(tshark_cache: TsharkCache) -> None:
    path = REPO / "captures" / "aioquic_alpn_mismatch.pcap"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    view = tshark_cache.get(path)
    got = [(c.frame, c.sport, c.dport, c.frame_type, c.error_code, c.tls_alert) for c in view.quic_closes]  # fmt: skip
    assert got == [(2, 4433, 36170, 0x1C, 0x178, 120)]
    assert [(r.frame, r.hs_type, r.alpn) for r in view.quic] == [(1, 1, (b"h3", b"h3-29"))]
    assert view.quic_closes[0].quic_dcid == "8eca6fa0d58b9017"


# --- the comparator itself: each rule fires (hand-built rows and records) ----------------------

CLIENT, SERVER = ("10.0.0.1", 50000), ("2001:db8::1", 443)
H3 = (b"h3", b"h3-29")


def _row(frame: int, hs_type: int, alpn: tuple[bytes, ...] = (), **kw: Any) -> TsharkHello:
    src, dst = (CLIENT, SERVER) if hs_type == 1 else (SERVER, CLIENT)
    base: dict[str, Any] = dict(
        frame=frame, proto="quic", transport="udp", stream=0, src=src[0], dst=dst[0],
        sport=src[1], dport=dst[1], hs_type=hs_type, alpn=alpn,
        sni="a.example" if hs_type == 1 else None, is_hrr=False, sslv2=False,
        reasm_frames=(frame,), quic_version="0x00000001", name="Client Hello",
        quic_dcid="0a0b" if hs_type == 1 else "", quic_scid="c1" if hs_type == 1 else "5e",
    )  # fmt: skip
    base.update(kw)
    return TsharkHello(**base)


def _rec(frame: int, offered: tuple[bytes, ...] = H3, **kw: Any) -> Handshake:
    base: dict[str, Any] = dict(
        ts_ns=0, frame=frame, transport="quic", ip_version=4, client_ip=CLIENT[0],
        client_port=CLIENT[1], server_ip="2001:db8:0::1", server_port=SERVER[1], sni="a.example",
        alpn_offered_raw=offered, alpn_selected_raw=None, selection=Selection.UNSEEN,
        tls_version=None, client_version="1.3", cipher_suite=None, ech=False, ech_config_id=None,
        ech_payload_len=None, npn=False, npn_server=(), alps=(), extensions=(16,), grease=False,
        sslv2=False, hello_retry=False, alert=None, violation=None, server_frame=None,
        quic_version="1", quic_dcid="0a0b", quic_scid="c1", quic_restarts=0,
    )  # fmt: skip
    base.update(kw)
    return Handshake(**base)


def _close(frame: int, code: int, alert: int | None) -> TsharkQuicClose:
    return TsharkQuicClose(frame, SERVER[0], CLIENT[0], SERVER[1], CLIENT[1], 0x1C, code, alert,
                           "0x00000001", "c1")  # fmt: skip


def _view(*rows: TsharkHello, closes: tuple[TsharkQuicClose, ...] = ()) -> TsharkView:
    return TsharkView(Path("x.pcap"), rows, (), 0, "", True, quic_closes=closes)


def _kinds(view: TsharkView, recs: list[Handshake]) -> list[tuple[str, int]]:
    return [(d.kind, d.frame) for d in compare_quic(view, recs).differences]


ENCRYPTED: dict[str, Any] = dict(selection=Selection.ENCRYPTED, tls_version="1.3", server_frame=2)


def test_compare_quic_equal_connection() -> None:
    cmp = compare_quic(_view(_row(1, 1, H3), _row(2, 2)), [_rec(1, **ENCRYPTED)])
    assert cmp.differences == []
    assert (cmp.counts["quic_ch_equal"], cmp.counts["quic_sh_equal"]) == (1, 1)
    tcp = _rec(1, transport="tcp")  # TCP records are the other comparison's business
    assert _kinds(_view(), [tcp]) == []


def test_compare_quic_client_hello_rules() -> None:
    ch = _row(1, 1, H3)
    assert _kinds(_view(ch), [_rec(1, (b"h3",))]) == [("alpn", 1)]
    assert _kinds(_view(ch), [_rec(1, sni="b.example")]) == [("sni", 1)]
    assert _kinds(_view(ch), [_rec(1, quic_version="2")]) == [("quic_version", 1)]
    assert _kinds(_view(ch), [_rec(1, quic_dcid="ffff")]) == [("quic_cid", 1)]
    assert _kinds(_view(ch), [_rec(4)]) == [("frame", 1)]
    assert _kinds(_view(ch), []) == [("missing", 1)]
    assert _kinds(_view(), [_rec(4)]) == [("extra", 4)]
    draft = _row(1, 1, H3, quic_version="0xff00001d")
    assert _kinds(_view(draft), [_rec(1, quic_version="draft-29")]) == []


def test_compare_quic_restart_rules() -> None:
    # tshark's only CH is the superseded first one: a restart, named by alpnsniff's frame;
    # version and CIDs are not compared (they are the first attempt's)
    restarted = _rec(3, quic_restarts=1, quic_dcid="d6", quic_version="2")
    assert _kinds(_view(_row(1, 1, H3)), [restarted]) == [("restart", 3)]
    # tshark shows both ClientHellos: the first was superseded by the later record
    assert _kinds(_view(_row(1, 1, H3), _row(3, 1, H3)), [_rec(3, quic_restarts=1)]) == [
        ("superseded", 1)
    ]
    # a later CH without restarts is a second connection alpnsniff missed, not a restart
    assert _kinds(_view(_row(1, 1, H3), _row(3, 1, H3)), [_rec(3)]) == [("missing", 1)]


def test_compare_quic_server_hello_rules() -> None:
    ch, sh = _row(1, 1, H3), _row(2, 2)
    assert _kinds(_view(ch, sh), [_rec(1)]) == [("sh_missing", 2)]
    for sel in (Selection.NONE, Selection.VISIBLE, Selection.REJECTED):
        assert _kinds(_view(ch, sh), [_rec(1, **dict(ENCRYPTED, selection=sel))]) == [
            ("sh_selection", 2)
        ] + ([("cc_extra", 2)] if sel == Selection.REJECTED else [])
    decrypted: dict[str, Any] = dict(
        ENCRYPTED, selection=Selection.DECRYPTED, alpn_selected_raw=b"h3"
    )
    assert _kinds(_view(ch, sh), [_rec(1, **decrypted)]) == []
    assert _kinds(_view(ch), [_rec(1, **ENCRYPTED)]) == [("sh_extra", 2)]
    hrr = _row(2, 2, is_hrr=True, name="Hello Retry Request")
    retried: dict[str, Any] = dict(ENCRYPTED, selection=Selection.RETRIED)
    assert _kinds(_view(ch, hrr), [_rec(1, **retried)]) == []
    assert _kinds(_view(ch, hrr), [_rec(1, **ENCRYPTED)]) == [("sh_selection", 2)]


def test_compare_quic_connection_close_rules() -> None:
    ch = _row(1, 1, H3)
    rejected = _rec(1, selection=Selection.REJECTED, alert=120, server_frame=2)
    no_alpn = _close(2, 0x178, 120)
    assert _kinds(_view(ch, closes=(no_alpn,)), [rejected]) == []
    assert _kinds(_view(ch, closes=(no_alpn,)), [_rec(1)]) == [("cc_missing", 2)]
    assert _kinds(_view(ch), [rejected]) == [("cc_extra", 2)]
    aborted = _rec(1, selection=Selection.ABORTED, alert=None, server_frame=2)
    assert _kinds(_view(ch, closes=(_close(2, 0x0A, None),)), [aborted]) == []
    assert _kinds(_view(ch, closes=(_close(2, 0x0A, None),)), [rejected]) == [("cc_missing", 2)]
    # a close after the ServerHello ends an answered connection: not the record's answer
    late = _close(9, 0x0A, None)
    assert _kinds(_view(ch, _row(2, 2), closes=(late,)), [_rec(1, **ENCRYPTED)]) == []
    # a close from the client is not the server's answer
    client = TsharkQuicClose(2, CLIENT[0], SERVER[0], CLIENT[1], SERVER[1], 0x1C, 0, None, "", "")
    assert _kinds(_view(ch, closes=(client,)), [_rec(1)]) == []
