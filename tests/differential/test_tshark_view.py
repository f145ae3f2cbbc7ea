"""The tshark side of the differential test, checked against the stored corpus truth.

The truth (``../shared/corpus/truth/NAME.tsv``) was made by ``make_truth.sh`` with the same
tshark 4.0.17 and preferences; ``tshark_view`` must reproduce every row of it exactly, which
validates its extraction (ALPN octets, frame numbers, addresses) before it judges alpnsniff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tshark_view import (
    CORPUS_OVERRIDES,
    TsharkCache,
    TsharkView,
    capture_files,
    read_truth,
    strip_secrets,
    truth_name,
)

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
CORPUS = SHARED / "corpus"
REALCAP = SHARED / "realcap"

pytestmark = [pytest.mark.tshark, pytest.mark.shared]


HAVE_CORPUS = (CORPUS / "pcaps").is_dir() and (CORPUS / "truth").is_dir()
CORPUS_FILES = capture_files(CORPUS / "pcaps") if HAVE_CORPUS else []


def _corpus_params() -> list[object]:
    if not HAVE_CORPUS:
        reason = f"{CORPUS} (pcaps/ and truth/) absent"
        return [pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(p, id=p.name) for p in CORPUS_FILES]


def _realcap(name: str) -> Path:
    path = REALCAP / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    return path


def _truth_key(row: dict[str, str]) -> tuple[str, ...]:
    return (
        row["frame"], row["proto"], row["hs_type"], row["alpn_hex"], row["src"], row["dst"],
        row["sport"], row["dport"], row["stream"], row["sni"], row["reasm_frames"],
    )  # fmt: skip


def _view_keys(view: TsharkView) -> list[tuple[str, ...]]:
    return [
        (
            str(r.frame),
            r.proto,
            "CHLO" if r.proto == "gquic" else str(r.hs_type),
            r.alpn_hex,
            r.src,
            r.dst,
            str(r.sport),
            str(r.dport),
            "" if r.stream is None else str(r.stream),
            r.sni or "",
            ",".join(map(str, r.reasm_frames)),
        )
        for r in view.rows
    ]


@pytest.mark.parametrize("capture", _corpus_params())
def test_view_reproduces_truth(capture: Path, tshark_cache: TsharkCache) -> None:
    tshark_cache.prefetch(CORPUS_FILES)  # all of them, in the background, 2 at a time
    view = tshark_cache.get(capture)
    truth = read_truth(CORPUS / "truth" / f"{truth_name(capture)}.tsv")
    assert _view_keys(view) == [_truth_key(t) for t in truth]


def test_overrides_match_the_corpus_table() -> None:
    table = CORPUS / "tools" / "tshark_overrides.tsv"
    if not table.is_file():
        pytest.skip(f"{table} absent")
    rows = [ln.split("\t") for ln in table.read_text().splitlines() if ln and ln[0] != "#"]
    assert {r[0]: tuple(r[1].split()) for r in rows} == CORPUS_OVERRIDES


def test_alpn_octets_hrr_and_alert(tshark_cache: TsharkCache) -> None:
    view = tshark_cache.get(_realcap("openssl_tls13_hrr_alpn.pcap"))
    got = [(r.frame, r.hs_type, r.is_hrr, r.alpn, r.sni) for r in view.tcp]
    assert got == [
        (4, 1, False, (b"h2", b"http/1.1"), "localhost"),
        (6, 2, True, (), None),
        (8, 1, False, (b"h2", b"http/1.1"), "localhost"),
        (9, 2, False, (), None),
    ]
    alert = tshark_cache.get(_realcap("openssl_tls1_2_alpn_mismatch_alert120.pcap")).alerts
    assert [(a.frame, a.sport, a.dport, a.level, a.desc) for a in alert] == [
        (6, 4433, 33238, 2, 120)
    ]


def test_tls12_server_selection(tshark_cache: TsharkCache) -> None:
    view = tshark_cache.get(_realcap("openssl_tls12_alpn_h2.pcap"))
    assert [(r.hs_type, r.alpn) for r in view.tcp] == [(1, (b"h2", b"http/1.1")), (2, (b"h2",))]


def test_embedded_secrets_are_dropped(tshark_cache: TsharkCache) -> None:
    dsb = _realcap("openssl_tls13_hrr_alpn_dsb.pcapng")
    stripped, dropped = strip_secrets(dsb.read_bytes())
    assert dropped == 1
    assert len(stripped) < dsb.stat().st_size
    plain = tshark_cache.get(_realcap("openssl_tls13_hrr_alpn.pcap"))
    assert tshark_cache.get(dsb).rows == plain.rows


def test_sslv2_hello_is_flagged(tshark_cache: TsharkCache) -> None:
    path = CORPUS / "pcaps" / "arkime__https2-301-get.pcap"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    ch = [r for r in tshark_cache.get(path).tcp if r.hs_type == 1]
    assert [(r.frame, r.proto, r.sslv2, r.alpn) for r in ch] == [(4, "sslv2", True, ())]
