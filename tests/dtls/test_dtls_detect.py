"""DTLS is recognised on UDP, counted and skipped (not dissected yet), on real captures."""

from __future__ import annotations

import pytest

import alpnsniff
from alpnsniff.capture import open_capture
from alpnsniff.dtls.detect import looks_like_dtls
from alpnsniff.net.decode import PacketDecoder
from alpnsniff.net.segment import Segment
from tests.conftest import shared_file

# the corpus's DTLS captures: DTLS 1.0, 1.2, 1.3 (wolfSSL), fragmented hellos, the pre-RFC
# 0x0100 of old Cisco AnyConnect, DTLS beside STUN
DTLS_CAPTURES = [
    "arkime__wireshark-dtls12.pcap",
    "ja4__dtls-udp.notest.pcap",
    "mercury__dtls_fragmented_client_hello.pcap",
    "nDPI__dtls2.pcap",
    "nDPI__dtls_old_version.pcapng",
    "nDPI__dtls_session_id_and_coockie_both.pcap",
    "nDPI__stun_dtls_unidirectional_client.pcapng",
    "zeek__tls_dtls13-wolfssl.pcap",
]


@pytest.mark.parametrize("name", DTLS_CAPTURES)
def test_dtls_connections_are_counted_not_dissected(name: str) -> None:
    (result,) = alpnsniff.analyze(shared_file("corpus", "pcaps", name))
    assert result.handshakes == []
    assert result.stats["dtls_connections_not_dissected"] >= 1
    assert "udp_not_quic" not in result.stats


def first_udp_payloads(name: str, n: int = 40) -> list[bytes]:
    decoder = PacketDecoder()
    out = []
    with open_capture(shared_file("corpus", "pcaps", name)) as source:
        for i, (ts, lt, data) in enumerate(source.packets()):
            seg = decoder.decode(lt, data, ts)
            if isinstance(seg, Segment) and seg.proto == 17:
                out.append(seg.payload)
            if i >= n:
                break
    return out


def test_quic_and_dns_are_not_dtls() -> None:
    for name in (
        "zeek__quic_interop_quic-go_quic-go_handshake.pcap",
        "mercury__dns_packet.capture2.pcap",
    ):
        payloads = first_udp_payloads(name)
        assert payloads
        assert not any(looks_like_dtls(p) for p in payloads)


def test_cut_and_garbled_records_are_not_dtls() -> None:
    (hello,) = [p for p in first_udp_payloads("nDPI__dtls2.pcap")[:1]]
    assert looks_like_dtls(hello)
    assert not looks_like_dtls(hello[:12])  # no room for the record header
    assert not looks_like_dtls(hello[:1] + b"\x03\x03" + hello[3:])  # a TLS version
    assert not looks_like_dtls(hello[:3] + b"\x00\x01" + hello[5:])  # epoch 1: encrypted
    too_long = hello[:11] + (len(hello)).to_bytes(2, "big") + hello[13:]
    assert not looks_like_dtls(too_long)
