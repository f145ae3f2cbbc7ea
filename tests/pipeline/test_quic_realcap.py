"""QUIC end to end on real captures (aioquic and headless Chromium, ../shared/realcap and the
project's own captures/): offers, outcomes, versions, restarts, every QUIC column."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpnsniff.pipeline import analyze_file
from alpnsniff.records import Handshake, Selection
from tests.conftest import CAPTURES, shared_file


def quic(path: Path) -> list[Handshake]:
    return [h for h in analyze_file(path).handshakes if h.transport == "quic"]


def only(path: Path) -> Handshake:
    records = quic(path)
    assert len(records) == 1, records
    return records[0]


@pytest.mark.parametrize(
    ("name", "version"),
    [("aioquic_h3_v1.pcap", "1"), ("aioquic_h3_v2.pcap", "2")],
)
def test_aioquic_versions(name: str, version: str) -> None:
    h = only(shared_file("realcap", name))
    assert h.quic_version == version
    assert (h.frame, h.server_frame) == (1, 2)
    assert h.alpn_offered_raw == (b"h3",)
    assert h.selection is Selection.ENCRYPTED and h.alpn_selected_raw is None
    assert h.tls_version == "1.3" and h.sni == "localhost"
    assert h.quic_restarts == 0
    assert h.quic_dcid is not None and len(h.quic_dcid) == 16  # 8-byte DCID, hex
    assert h.server_port == 4433 or h.server_port > 0


def test_aioquic_custom_alpn_offer_order() -> None:
    h = only(shared_file("realcap", "aioquic_custom_alpn_doq.pcap"))
    assert h.alpn_offered_raw == (b"h3", b"doq", b"hq-interop")


def test_connection_close_0x178_is_rejected() -> None:
    h = only(shared_file("realcap", "aioquic_alpn_mismatch.pcap"))
    assert h.selection is Selection.REJECTED and h.alert == 120
    assert h.alpn_offered_raw == (b"h3", b"h3-29") and h.server_frame == 2


@pytest.mark.parametrize(
    "name", ["aioquic_h3_v1_retry.pcap", "aioquic_h3_v2_incompatible_vn_to_v1.pcap"]
)
def test_restart_after_retry_or_version_negotiation_is_one_record(name: str) -> None:
    result = analyze_file(shared_file("realcap", name))
    (h,) = [r for r in result.handshakes if r.transport == "quic"]
    assert h.quic_restarts == 1 and h.frame == 3  # the final ClientHello
    assert h.quic_version == "1" and h.selection is Selection.ENCRYPTED
    assert result.stats["quic_client_hellos_superseded"] == 1
    assert result.stats["quic_retries"] + result.stats["quic_version_negotiations"] == 1


def test_compatible_version_negotiation_v1_to_v2() -> None:
    h = only(shared_file("realcap", "aioquic_h3_v1_to_v2_compatible_vn.pcap"))
    # the ClientHello travelled in a v1 Initial; the server switched to v2 (RFC 9368)
    assert h.quic_version == "1" and h.quic_restarts == 0
    assert h.selection is Selection.ENCRYPTED and h.server_frame == 2


def test_client_hello_over_two_initials() -> None:
    h = only(shared_file("realcap", "aioquic_h3_v1_bigCH_2initials.pcap"))
    assert (h.frame, h.server_frame) == (2, 4)
    assert h.alpn_offered_raw == (b"h3",)


@pytest.mark.parametrize(
    ("name", "version"),
    [("chromium_aioquic_h3_veth1500.pcap", "1"), ("chromium_aioquic_h3_quicv2_lo.pcap", "2")],
)
def test_chromium_chaos_protection(name: str, version: str) -> None:
    # Chromium splits its ~1.9 KB ClientHello into out-of-order CRYPTO fragments with PING
    # and PADDING over two Initials; the hello is whole only with the second one
    h = only(shared_file("realcap", name))
    assert h.frame == 2 and h.quic_version == version
    assert h.alpn_offered_raw == (b"h3",) and h.sni == "quic.example.test"
    # GREASE ECH is there; GREASE values are not (tshark lists the extensions of the veth1500
    # one as 51764,27,65037,0,17613,16,13,43,10,51,45,57; Chromium shuffles their order)
    assert h.ech and not h.grease
    assert sorted(h.extensions) == sorted((51764, 27, 65037, 0, 17613, 16, 13, 43, 10, 51, 45, 57))
    assert h.quic_scid == ""  # Chromium's zero-length Source Connection ID


def test_quic_and_tcp_in_one_ipv6_capture() -> None:
    result = analyze_file(shared_file("realcap", "ipv6_openssl_tls12_and_aioquic_h3.pcap"))
    assert [(h.transport, h.frame) for h in result.handshakes] == [("tcp", 4), ("quic", 17)]
    assert all(h.ip_version == 6 for h in result.handshakes)


@pytest.mark.skipif(not (CAPTURES / "aioquic_retry.pcap").exists(), reason="captures/ absent")
def test_own_captures_quic() -> None:
    assert only(CAPTURES / "aioquic_retry.pcap").quic_restarts == 1
    assert only(CAPTURES / "aioquic_h3_v2.pcap").quic_version == "2"
    assert only(CAPTURES / "aioquic_alpn_mismatch.pcap").selection is Selection.REJECTED
    assert only(CAPTURES / "chromium_aioquic_h3_veth1500.pcap").ech
