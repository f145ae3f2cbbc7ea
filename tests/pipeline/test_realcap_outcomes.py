"""End to end on real captures (../shared/realcap, made with the software named in each file
name; see its RECIPES.md): every outcome of a negotiation, every field of the record."""

from __future__ import annotations

import pytest

from alpnsniff.pipeline import analyze_file
from alpnsniff.records import Selection
from tests.conftest import shared_file

H2_H11 = (b"h2", b"http/1.1")


def one(name: str):
    result = analyze_file(shared_file("realcap", name))
    assert len(result.handshakes) == 1, result.handshakes
    return result.handshakes[0]


def test_openssl_tls12_selection_visible_every_field() -> None:
    h = one("openssl_tls12_alpn_h2.pcap")
    assert h.ts_ns == 1795302742069708000
    assert (h.frame, h.server_frame) == (4, 6)
    assert h.transport == "tcp" and h.ip_version == 4
    assert (h.client_ip, h.server_ip, h.server_port) == ("127.0.0.1", "127.0.0.1", 4431)
    assert h.client_port == 59160
    assert h.sni == "localhost"
    assert h.alpn_offered_raw == H2_H11
    assert h.alpn_selected_raw == b"h2"
    assert h.selection is Selection.VISIBLE
    assert (h.tls_version, h.client_version) == ("1.2", "1.2")
    assert h.cipher_suite == 0xC02C
    assert h.extensions == (0, 11, 10, 35, 16, 22, 23, 13)
    assert not (h.ech or h.npn or h.grease or h.sslv2 or h.hello_retry)
    assert h.alert is None and h.violation is None and h.quic_version is None


def test_openssl_tls13_selection_encrypted() -> None:
    h = one("openssl_tls13_alpn_h2.pcap")
    assert h.selection is Selection.ENCRYPTED
    assert h.alpn_selected_raw is None
    assert (h.tls_version, h.client_version) == ("1.3", "1.3")
    assert h.alpn_offered_raw == H2_H11


@pytest.mark.parametrize(
    "name",
    ["openssl_tls1_2_alpn_mismatch_alert120.pcap", "openssl_tls1_3_alpn_mismatch_alert120.pcap"],
)
def test_alert_120_is_rejected(name: str) -> None:
    h = one(name)
    assert h.selection is Selection.REJECTED
    assert h.alert == 120
    assert h.tls_version is None and h.alpn_selected_raw is None
    assert h.server_frame == 6


def test_gnutls_fatal_mismatch_is_rejected() -> None:
    h = one("gnutls_tls13_alpn_fatal_mismatch.pcap")
    assert (h.selection, h.alert, h.alpn_offered_raw) == (Selection.REJECTED, 120, (b"h2",))


def test_cpython_silent_mismatch_is_encrypted_not_guessed() -> None:
    # CPython's ssl completes the TLS 1.3 handshake without ALPN and sends no alert: without
    # keys the observer cannot know, so the record says encrypted and guesses nothing.
    h = one("pyssl_tls13_alpn_mismatch.pcap")
    assert h.selection is Selection.ENCRYPTED and h.alpn_selected_raw is None


def test_server_without_alpn_is_none() -> None:
    h = one("openssl_tls12_server_no_alpn.pcap")
    assert h.selection is Selection.NONE and h.tls_version == "1.2"


def test_hello_retry_request_pairs_with_second_client_hello() -> None:
    result = analyze_file(shared_file("realcap", "openssl_tls13_hrr_alpn.pcap"))
    first, second = result.handshakes
    assert (first.frame, first.selection, first.hello_retry) == (4, Selection.RETRIED, False)
    assert (second.frame, second.selection, second.hello_retry) == (8, Selection.ENCRYPTED, True)
    assert first.alpn_offered_raw == second.alpn_offered_raw == H2_H11
    assert (first.client_port, first.server_port) == (second.client_port, second.server_port)


def test_npn_server_list_tls12() -> None:
    h = one("openssl_tls12_npn.pcap")
    assert h.npn is True
    assert h.npn_server == (b"h2", b"http/1.1")
    assert h.alpn_offered_raw == () and h.selection is Selection.NOT_OFFERED


def test_client_hello_over_several_records() -> None:
    h = one("openssl_tls12_ch_split_records_512.pcap")
    assert len(h.alpn_offered_raw) > 10
    assert h.alpn_offered_raw[0] == b"proto-00-" + b"y" * 20


def test_chromium_two_segment_client_hello_at_mtu_1500() -> None:
    result = analyze_file(shared_file("realcap", "chromium_nginx_h2_veth1500.pcap"))
    assert [h.frame for h in result.handshakes] == [5, 14]  # the second segment completes it
    for h in result.handshakes:
        assert h.alpn_offered_raw == H2_H11
        assert h.ech and h.grease and h.sni == "www.example.test"
        assert h.alps == (b"h2",)
        assert 0xFE0D in h.extensions and 0x44CD in h.extensions
        assert h.selection is Selection.ENCRYPTED


def test_resumed_tls12_session_keeps_visible_selection() -> None:
    result = analyze_file(shared_file("realcap", "openssl_tls12_resumed_alpn.pcap"))
    assert [(h.frame, h.selection, h.alpn_selected_raw) for h in result.handshakes] == [
        (4, Selection.VISIBLE, b"h2"),
        (20, Selection.VISIBLE, b"h2"),
    ]


def test_curl_without_alpn_then_http11() -> None:
    result = analyze_file(shared_file("realcap", "nginx_curl_noalpn_and_http11.pcap"))
    first, second = result.handshakes
    assert first.alpn_offered_raw == () and first.selection is Selection.NOT_OFFERED
    assert second.alpn_offered_raw == (b"http/1.1",) and second.alpn_selected_raw == b"http/1.1"


def test_ipv6_connection() -> None:
    result = analyze_file(shared_file("realcap", "ipv6_openssl_tls12_and_aioquic_h3.pcap"))
    tcp = [h for h in result.handshakes if h.transport == "tcp"]
    assert len(tcp) == 1
    assert tcp[0].ip_version == 6 and ":" in tcp[0].client_ip
    assert tcp[0].alpn_selected_raw == b"h2"
