"""The plaintext before TLS: PROXY headers and protocols that never turn into TLS."""

from __future__ import annotations

import struct

import pytest

from alpnsniff.http.preamble import (
    PROXY_V2_SIGNATURE,
    has_proxy_header,
    plaintext_protocol,
    proxy_header_length,
)

# the v1 example of the PROXY protocol specification (haproxy doc/proxy-protocol.txt §2.1)
V1 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"


def test_proxy_v1_line_length() -> None:
    assert has_proxy_header(V1 + b"\x16\x03\x01")
    assert proxy_header_length(V1 + b"\x16\x03\x01") == len(V1)
    assert proxy_header_length(V1[:-2]) == 0  # cut short in this segment: no header yet
    # the line is at most 107 bytes: a longer "line" is not a PROXY header
    assert proxy_header_length(b"PROXY " + b"x" * 200 + b"\r\n") == 0


def test_proxy_v2_header_length() -> None:
    # v2, PROXY command, TCP over IPv4: 12 bytes of addresses and ports
    body = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">HH", 40000, 443)
    header = PROXY_V2_SIGNATURE + b"\x21\x11" + struct.pack(">H", len(body)) + body
    assert has_proxy_header(header)
    assert proxy_header_length(header + b"\x16\x03\x01") == 16 + 12
    assert proxy_header_length(header[:15]) == 0


@pytest.mark.parametrize(
    ("start", "protocol"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1\r\n", "ssh"),
        (b"GET / HTTP/1.1\r\n", "http"),
        (b"POST /api HTTP/1.1\r\n", "http"),
        (b"GET http://example.com/ HTTP/1.1\r\n", "http"),
        (b"CONNECT example.com:443 HTTP/1.1\r\n", None),  # TLS may follow a CONNECT
        (b"EHLO mx.example\r\n", None),  # SMTP may STARTTLS
        (b"\x16\x03\x01\x02\x00\x01", None),
        (b"", None),
    ],
)
def test_plaintext_protocols_that_never_become_tls(start: bytes, protocol: str | None) -> None:
    assert plaintext_protocol(start) == protocol
