"""What a segment start says before any TLS: a PROXY header to skip, or a protocol that
never turns into TLS. Pure functions of bytes; imports nothing but the standard library.

The TCP flow (:mod:`alpnsniff.flows.tcp`) asks these at each segment start it probes:

- :func:`proxy_header_length` — HAProxy PROXY protocol v1 (a text line) or v2 (a binary
  header with its signature): that many bytes come before the client's first byte.
- :func:`plaintext_protocol` — SSH or an HTTP/1 request other than CONNECT: the connection
  will carry no TLS, so probing ends at once instead of after its segment budget.
"""

from __future__ import annotations

# HAProxy PROXY protocol v2 signature (v1 is the text line "PROXY ...\r\n").
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PROXY_V2_HEADER = 16  # signature, version/command, family, 2-byte length
PROXY_V1_MAX = 107  # the v1 line is at most 107 bytes with its CRLF

# Segment starts of protocols that never switch to TLS on the same connection: SSH and
# HTTP/1 requests other than CONNECT (RFC 2817's Upgrade to TLS is not seen in practice).
# HTTP CONNECT, after which TLS may follow, is not among them.
PLAINTEXT_STARTS: dict[bytes, str] = {
    b"SSH-": "ssh",
    b"GET /": "http",
    b"POST /": "http",
    b"HEAD /": "http",
    b"PUT /": "http",
    b"DELETE /": "http",
    b"OPTIONS /": "http",
    b"PATCH /": "http",
    b"GET http://": "http",
    b"POST http://": "http",
}
_PLAINTEXT_PREFIXES = tuple(PLAINTEXT_STARTS)


def has_proxy_header(data: bytes) -> bool:
    """The segment starts like a PROXY protocol v1 or v2 header."""
    return data[:6] == b"PROXY " or data[:12] == PROXY_V2_SIGNATURE


def proxy_header_length(data: bytes) -> int:
    """Length of a PROXY protocol v1/v2 header at the start of ``data`` (0: none, or cut
    short in this segment)."""
    if data[:6] == b"PROXY ":
        end = data.find(b"\r\n", 0, PROXY_V1_MAX)
        return end + 2 if end > 0 else 0
    if data[:12] == PROXY_V2_SIGNATURE and len(data) >= PROXY_V2_HEADER:
        return PROXY_V2_HEADER + (data[14] << 8 | data[15])
    return 0


def plaintext_protocol(data: bytes) -> str | None:
    """``"ssh"`` or ``"http"`` when the segment starts a protocol that never becomes TLS."""
    if data.startswith(_PLAINTEXT_PREFIXES):  # (one C call for the common "no")
        for prefix, name in PLAINTEXT_STARTS.items():
            if data.startswith(prefix):
                return name
    return None
