"""Every real capture read the same as tshark reads it: frame count, timestamps to the
nanosecond, captured length and the bytes themselves (md5 per frame)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from capture_testlib import (
    CORPUS,
    REALCAP,
    needs_shared,
    needs_tshark,
    ours,
    pcapng_blocks,
    tshark_frames,
    tshark_prefetch,
)

from alpnsniff.capture import open_capture

pytestmark = [needs_shared, needs_tshark, pytest.mark.shared, pytest.mark.tshark]

REAL_PCAPS = sorted(REALCAP.glob("*.pcap")) if REALCAP.is_dir() else []
REAL_DSB = sorted(REALCAP.glob("*_dsb.pcapng")) if REALCAP.is_dir() else []
CORPUS_PCAPNG = sorted(CORPUS.glob("*.pcapng")) if CORPUS.is_dir() else []


@pytest.fixture(scope="module", autouse=True)
def _prefetch() -> None:
    tshark_prefetch(REAL_PCAPS + REAL_DSB + CORPUS_PCAPNG)


@pytest.mark.parametrize("path", REAL_PCAPS + REAL_DSB, ids=lambda p: p.name)
def test_realcap_matches_tshark(path: Path) -> None:
    expected = tshark_frames(path)
    assert len(expected) > 0
    assert ours(path) == expected
    with open_capture(path) as src:
        linktypes = {lt for _ts, lt, _d in src.packets()}
        assert src.stats.packets == len(expected)
        assert src.stats.bytes == sum(caplen for _t, caplen, _m in expected)
        assert src.stats.error is None
        assert (src.stats.truncated_records, src.stats.corrupt_records) == (0, 0)
    # made with tcpdump on Ethernet-like interfaces (lo and veth both give DLT_EN10MB)
    assert linktypes == {1}
    assert src.format == ("pcap" if path.suffix == ".pcap" else "pcapng")


@pytest.mark.parametrize("path", CORPUS_PCAPNG, ids=lambda p: p.name)
def test_corpus_pcapng_matches_tshark(path: Path) -> None:
    assert ours(path) == tshark_frames(path)


@pytest.mark.parametrize("path", REAL_DSB, ids=lambda p: p.name)
def test_dsb_secrets_are_the_key_log(path: Path) -> None:
    """editcap --inject-secrets put X.keys into X_dsb.pcapng as one TLS key log DSB."""
    keys = path.with_name(path.name.replace("_dsb.pcapng", ".keys")).read_bytes()
    with open_capture(path) as src:
        assert src.secrets == []  # filled while reading, not before
        n = sum(1 for _ in src.packets())
    assert n > 0
    assert src.secrets == [(0x544C534B, keys)]  # "TLSK"
    assert src.stats.skipped_blocks == 0


def test_pcap_and_its_dsb_pcapng_give_the_same_packets() -> None:
    """The same capture as pcap and as pcapng (with a DSB): identical packets."""
    pcap = REALCAP / "openssl_tls13_alpn_h2.pcap"
    with open_capture(pcap) as a, open_capture(REALCAP / "openssl_tls13_alpn_h2_dsb.pcapng") as b:
        assert list(a.packets()) == list(b.packets())
        assert a.stats.interfaces == [(1, 1_000_000)]
        assert b.stats.interfaces == [(1, 1_000_000)]


def test_first_packet_fully() -> None:
    """The first frame of a real capture, every field, checked by hand against tshark -V:
    2026-11-21 17:12:22.068663 UTC, 74 bytes, Ethernet, a TCP SYN to port 4433."""
    with open_capture(REALCAP / "openssl_tls12_alpn_h2.pcap") as src:
        ts, linktype, data = next(iter(src.packets()))
    assert ts == 1_795_302_742_068_663_000
    assert linktype == 1
    assert len(data) == 74
    assert hashlib.md5(data).hexdigest() == "d39ee305a52ab7ce6ff55c644598787f"
    assert data[12:14] == b"\x08\x00"  # IPv4 ethertype


def test_several_interfaces_with_different_resolutions() -> None:
    """nDPI's sites.pcapng: 22 interfaces, some in microseconds, some in nanoseconds."""
    path = CORPUS / "nDPI__sites.pcapng"
    with open_capture(path) as src:
        packets = list(src.packets())
    assert len(packets) == 699
    assert len(src.stats.interfaces) == 22
    assert {u for _lt, u in src.stats.interfaces} == {1_000_000, 1_000_000_000}
    assert src.stats.interfaces[:3] == [(1, 1_000_000_000), (1, 1_000_000), (1, 1_000_000_000)]
    assert [ts for ts, _lt, _d in packets] == [ts for ts, _c, _m in tshark_frames(path)]


def test_skipped_blocks_are_counted() -> None:
    """ja4's tls-handshake.pcapng has one block we do not use (an ISB or NRB): counted."""
    path = CORPUS / "ja4__tls-handshake.pcapng"
    unused = [t for _o, t, _b in pcapng_blocks(path.read_bytes()) if t not in (0x0A0D0D0A, 1, 6)]
    with open_capture(path) as src:
        assert sum(1 for _ in src.packets()) == 193
    assert len(unused) == 1
    assert src.stats.skipped_blocks == 1


def test_corrupt_record_header_stops_like_tshark() -> None:
    """suricata-verify bug-1450: the record header after frame 6 claims 4,325,376 bytes.
    tshark shows 6 frames and calls the file damaged; so do we, in one line."""
    for path in sorted(CORPUS.glob("suricata-verify__bug-1450-0*")):
        with open_capture(path) as src:
            packets = list(src.packets())
        expected = tshark_frames(path)
        assert [(ts, len(d)) for ts, _lt, d in packets] == [(t, c) for t, c, _m in expected]
        assert src.stats.corrupt_records == 1
        assert src.stats.packets == len(expected)
        assert src.stats.error is not None
        assert "\n" not in src.stats.error
        assert "corrupt" in src.stats.error
    path = CORPUS / "suricata-verify__bug-1450-05_tls_DER-incomplete-content.pcap"
    with open_capture(path) as src:
        assert len(list(src.packets())) == 6
    assert src.stats.error == (
        f"{path}: record 7 at offset 5035: captured length 4325376 > 262144,"
        " the record header is corrupt; stopped there"
    )
