"""classify_stream_start on the first bytes of real streams: TLS found, nothing else taken."""

from __future__ import annotations

import random
import struct

import pytest
from tlscap import DATA, corpus, realcap, tcp_directions, udp_payloads

from alpnsniff.tls.detect import (
    NOT_TLS,
    SSLV2_CLIENT_HELLO,
    TLS_ALERT,
    TLS_CLIENT_HELLO,
    TLS_HANDSHAKE,
    classify_stream_start,
)

TLS_KINDS = {TLS_CLIENT_HELLO, TLS_HANDSHAKE, TLS_ALERT, SSLV2_CLIENT_HELLO}


def _stream(path: object, src_port: int) -> bytes:
    for d in tcp_directions(path):  # type: ignore[arg-type]
        if d.sport == src_port:
            return d.payload()
    raise AssertionError(f"no direction from port {src_port}")


def _assert_prefixes(data: bytes, expected: str, decided_at: int) -> None:
    """Every prefix gives None or the final answer, and the final answer from decided_at on."""
    for k in range(1, min(len(data), 64) + 1):
        got = classify_stream_start(data[:k])
        if k >= decided_at:
            assert got == expected, (k, data[:k])
        else:
            assert got in (None, expected), (k, data[:k])


# ---------------------------------------------------------------- TLS starts

TLS_STARTS = [
    # (capture, source port of the direction, expected kind)
    ("realcap", "openssl_tls12_alpn_h2.pcap", 59160, TLS_CLIENT_HELLO),
    ("realcap", "openssl_tls12_alpn_h2.pcap", 4431, TLS_HANDSHAKE),
    ("realcap", "chromium_nginx_h2_veth1500.pcap", 36780, TLS_CLIENT_HELLO),
    ("realcap", "chromium_nginx_h2_veth1500.pcap", 8443, TLS_HANDSHAKE),
    ("realcap", "openssl_tls1_3_alpn_mismatch_alert120.pcap", 4433, TLS_ALERT),
    ("realcap", "gnutls_tls13_alpn_fatal_mismatch.pcap", 4471, TLS_ALERT),
    ("corpus", "arkime__https2-301-get.pcap", 50754, SSLV2_CLIENT_HELLO),
    ("corpus", "nDPI__google_ssl.pcap", 42835, SSLV2_CLIENT_HELLO),
    ("corpus", "zeek__tls_ssl.v3.pcap", 58868, SSLV2_CLIENT_HELLO),
    ("corpus", "arkime__openssl-ssl3.pcap", None, TLS_CLIENT_HELLO),
]


@pytest.mark.parametrize(("where", "name", "port", "kind"), TLS_STARTS)
def test_tls_starts_are_found(where: str, name: str, port: int | None, kind: str) -> None:
    path = realcap(name) if where == "realcap" else corpus(name)
    if port is None:
        port = next(d.sport for d in tcp_directions(path) if d.syn_only)
    data = _stream(path, port)
    _assert_prefixes(data, kind, 3 if kind == SSLV2_CLIENT_HELLO else 6)


def test_every_tls_start_in_the_corpus_is_found() -> None:
    """Each TCP direction whose first bytes tshark reads as a ClientHello (truth rows)."""
    found = 0
    for path in sorted(corpus("arkime__tls13.pcap").parent.iterdir()):
        for d in tcp_directions(path):
            data = d.payload()
            if data[:1] == b"\x16" and data[1:2] == b"\x03" and data[5:6] == b"\x01":
                assert classify_stream_start(data[:6]) == TLS_CLIENT_HELLO, (path.name, d)
                found += 1
    assert found > 550


# ---------------------------------------------------------------- other protocols

NOT_TLS_STARTS = [
    # (capture, source port, dest port, first bytes for the record)
    ("suricata-verify__app-layer-protocol-prefilter.pcap", 43220, 80, b"GET / HTTP/1"),
    ("suricata-verify__app-layer-protocol-prefilter.pcap", 80, 43220, b"HTTP/1.1 200"),
    ("suricata-verify__bug-2430_backwards.pcap", 53909, 8080, b"CONNECT "),
    ("suricata-verify__smtp-startssl.pcap", 25, 34634, b"220 "),
    ("suricata-verify__smtp-startssl.pcap", 34634, 25, b"EHLO "),
    ("mercury__imap2.pcap", 143, 53477, b"* OK"),
    ("zeek__tls_pop3-starttls.pcap", 110, 54775, b"+OK "),
    ("zeek__ftp_ftp-auth-tls.pcap", 21, 40284, b"220 (vsFTPd"),
    ("arkime__mysql-tls.pcap", 3306, 41324, b"J\x00\x00\x00\n5.7.16"),
    ("zeek__mysql_tls-12-amazon-rds.pcap", 3306, 58132, b"J\x00\x00\x00\n8.0.28"),
    ("zeek__modbus_modbus-and-non-modbus-p502.pcap", 7488, 502, b"\x03\x00\x00+&\xe0"),  # RDP X.224
    ("zeek__ldap_ldap-starttls.pcap", 45936, 389, b"0\x1d\x02\x01\x01w"),
    ("mercury__openvpn_tcp_multi.pcap", 51089, 1194, b"\x00*8("),
    ("nDPI__haproxy.pcap", 48502, 443, b"PROXY TCP4"),
    ("nDPI__tls_heur__trojan-tcp-tls.pcapng", 60654, 1080, b"\x05\x02\x00\x01"),  # SOCKS5
    ("nDPI__stun.pcapng", 41588, 42000, b"\x00h\x00\x01"),
    ("nDPI__waze.pcap", 42256, 5222, b"\x80\x00\x16\x05"),  # top bit set, not SSLv2
    ("zeek__modbus_modbus-and-non-modbus-p502.pcap", 60175, 502, b"\x80\x00\x00("),
    (
        "zeek__modbus_modbus-and-non-modbus-p502.pcap",
        502,
        58380,
        b"\x16\x03\x01\x00\x00",
    ),  # 0 bytes
    ("nDPI__alexa-app.pcapng", 443, 41821, b"\x15\x00\x00\x00\x02"),
    ("nDPI__KakaoTalk_talk.pcap", 49217, 443, b"\x15\x03\x01\x00\x16"),  # encrypted alert
    ("nDPI__whatsapp_login_call.pcap", 443, 49172, b"\x15\x03\x03\x00P"),  # encrypted alert
    ("zeek__tls_tls13-ech.pcap", 51053, 443, b"\x17\x03\x03"),  # application data: mid-stream
]


@pytest.mark.parametrize(("name", "sport", "dport", "start"), NOT_TLS_STARTS)
def test_other_protocols_are_not_tls(name: str, sport: int, dport: int, start: bytes) -> None:
    path = corpus(name)
    data = next(d.payload() for d in tcp_directions(path) if (d.sport, d.dport) == (sport, dport))
    assert data.startswith(start)
    _assert_prefixes(data, NOT_TLS, 6)


def test_ssh_banner_is_not_tls() -> None:
    data = _stream(DATA / "openssh_client_banner.pcap", next(
        d.sport for d in tcp_directions(DATA / "openssh_client_banner.pcap") if d.syn_only
    ))  # fmt: skip
    assert data == b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n"
    _assert_prefixes(data, NOT_TLS, 1)


def test_dns_over_tcp_is_not_tls() -> None:
    """Real DNS messages framed as over TCP: a two-byte length first (RFC 1035 §4.2.2)."""
    messages = udp_payloads(corpus("mercury__dns_packet.capture2.pcap"), 53)
    assert len(messages) >= 10
    for msg in messages:
        _assert_prefixes(struct.pack(">H", len(msg)) + msg, NOT_TLS, 1)


def test_random_bytes_are_not_tls() -> None:
    rng = random.Random(20261122)
    hits = [
        data
        for data in (rng.randbytes(16) for _ in range(200_000))
        if classify_stream_start(data) in TLS_KINDS
    ]
    assert hits == []


def test_short_inputs() -> None:
    assert classify_stream_start(b"") is None
    assert classify_stream_start(b"\x16") is None
    assert classify_stream_start(b"\x16\x03\x01\x00") is None
    assert classify_stream_start(b"\x16\x03\x05") == NOT_TLS  # version 3.5 does not exist
    assert classify_stream_start(b"\x16\x03\x03\x48\x01") == NOT_TLS  # over 2^14 + 2048
    assert classify_stream_start(b"\x16\x03\x03\x00\x30\x00") == NOT_TLS  # HelloRequest first
    assert classify_stream_start(b"\x80") is None
