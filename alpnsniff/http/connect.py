"""HTTP/1.x CONNECT: the request that opens a tunnel, its RFC 7639 ``ALPN`` header, and
the proxy's answer. Pure functions of bytes; errors are values, never exceptions.

The TCP flow asks, at a segment start that :func:`is_connect_start`:

- :func:`parse_connect_request` — the tunnel's target, the protocols the client says it
  will speak inside (RFC 7639), and ``head_length``: the client's tunnel bytes (its TLS
  ClientHello) start at ``data[head_length]``;
- :func:`parse_connect_response` on the other direction — the proxy's final status and
  where the server's tunnel bytes start.

Both return ``None`` while ``data`` may still grow into a complete head, a
:class:`ConnectError` once it cannot, and never raise.

Choices, for a recipient that only watches:

- Line ends: LF ends a line and an optional CR before it is dropped (RFC 9112 §2.2 lets a
  recipient accept a bare LF, and many servers do: a proxy that does would open the
  tunnel). A bare CR elsewhere is an ordinary octet: inside an ``ALPN`` element it makes
  the element non-token.
- A head is at most :data:`MAX_HEAD_BYTES` octets, its blank line included; for a
  response, interim heads count against the same budget.
- The request must begin at ``data[0]``: empty lines before it, which RFC 9112 §2.2 lets
  a server skip, are not skipped (the flow asks at the connection's first segment).
- Header lines that are not ``name ":" value`` are skipped; a name followed by whitespace
  before the colon (``ALPN : h2``) is not the ``ALPN`` field (a proxy must reject that
  request with 400, RFC 9112 §5.1). An obs-fold line (starting with SP or HTAB) continues
  the previous field with one SP (RFC 9112 §5.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from alpnsniff.tls.alpn import alpn_text

__all__ = [
    "MAX_ALPN_IDS",
    "MAX_HEAD_BYTES",
    "ConnectError",
    "ConnectRequest",
    "ConnectResponse",
    "is_connect_start",
    "parse_connect_request",
    "parse_connect_response",
]

MAX_HEAD_BYTES: Final = 16384  # a request or response head, its blank line included
MAX_ALPN_IDS: Final = 255  # protocol IDs kept from one request's ALPN header

_CONNECT: Final = b"CONNECT "
_HTTP1: Final = b"HTTP/1."
_VERSIONS: Final = (b"HTTP/1.0", b"HTTP/1.1")
_OWS: Final = b" \t"
_CR: Final = 0x0D
_PERCENT: Final = 0x25

# tchar (RFC 9110 §5.6.2): the octets a token is made of
_TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# octets that RFC 7639 §2.1 forbids to percent-encode: every tchar but "%"
_TCHAR_NOT_PERCENT: Final = frozenset(_TCHAR) - {_PERCENT}
# an authority's octets: none of the controls, SP or DEL (obs-text 0x80-0xff is kept)
_NOT_IN_TARGET: Final = bytes(range(0x21)) + b"\x7f"
# value of a hex digit, -1 for any other octet
_HEX_VALUE: Final = tuple(
    int(chr(b), 16) if chr(b) in "0123456789abcdefABCDEF" else -1 for b in range(256)
)


@dataclass(frozen=True, slots=True)
class ConnectError:
    """Bytes that are not (or can no longer become) what the parser reads.

    ``reason``, for a request: ``"not_connect"`` (not a ``CONNECT <target> HTTP/1.0|1.1``
    request line), ``"bad_target"`` (the target is empty or holds a control octet, SP or
    DEL), ``"head_too_long"``; for a response: ``"not_http"`` (not an ``HTTP/1.0|1.1``
    status line), ``"bad_status"`` (the code is not three digits 100-599, or is not
    followed by SP or the line end), ``"head_too_long"``.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """A complete CONNECT request head.

    - ``target``: the authority as on the wire (``b"example.com:443"``), not checked for a
      port.
    - ``alpn_raw``: the protocol IDs of the ``ALPN`` header, percent-decoded, in order,
      empty elements left out, at most :data:`MAX_ALPN_IDS`; ``None`` without the header.
      An element that is not a token, or holds a ``%`` not followed by two hex digits, is
      kept whole and undecoded (``b"http/1.1"``, ``b"h2%zz"``): a watcher keeps what the
      client sent, and one bad element does not hide the valid ones beside it. The flag
      below tells these apart from decoded IDs.
    - ``alpn_header``: the field value as sent, trimmed of OWS; several ``ALPN`` lines
      joined with ``", "`` in order (RFC 9110 §5.3). ``None`` without the header.
    - ``alpn_canonical``: the value (unfolded) is exactly what a conforming sender writes:
      at least one element, no empty element (RFC 9110 §5.6.1.1), each a token in which
      the octets outside tchar, and ``%`` itself, and only those, are percent-encoded,
      with uppercase hex digits (RFC 7639 §2.1). Only then does comparing header text
      compare the IDs. Judged on every element, those past :data:`MAX_ALPN_IDS` too.
      ``None`` without the header.
    - ``alpn_truncated``: the header held more than :data:`MAX_ALPN_IDS` IDs.
    - ``head_length``: octets up to and including the blank line; the tunnel starts at
      ``data[head_length]``.
    """

    target: bytes
    alpn_raw: tuple[bytes, ...] | None
    alpn_header: bytes | None
    alpn_canonical: bool | None
    alpn_truncated: bool
    head_length: int

    @property
    def target_text(self) -> str:
        """The target, escaped as :func:`~alpnsniff.tls.alpn.alpn_text` escapes."""
        return alpn_text(self.target)

    @property
    def alpn_texts(self) -> tuple[str, ...] | None:
        """The protocol IDs, each escaped by :func:`~alpnsniff.tls.alpn.alpn_text`."""
        if self.alpn_raw is None:
            return None
        return tuple([alpn_text(raw) for raw in self.alpn_raw])


@dataclass(frozen=True, slots=True)
class ConnectResponse:
    """The proxy's final response head: ``status`` (100-599) and ``head_length``, the
    octets of every head read (interim 1xx ones included) up to and including the final
    head's blank line. After a 2xx the server's tunnel bytes start at
    ``data[head_length]`` (a 2xx to CONNECT has no body, RFC 9110 §9.3.6); after any other
    status there is no tunnel, and what follows is the proxy's error body.
    """

    status: int
    head_length: int

    @property
    def tunnel_established(self) -> bool:
        """A 2xx: the proxy opened the tunnel (RFC 9110 §9.3.6)."""
        return 200 <= self.status < 300


def is_connect_start(data: bytes) -> bool:
    """The segment starts like a CONNECT request (the method is case-sensitive)."""
    return data.startswith(_CONNECT)


def parse_connect_request(data: bytes) -> ConnectRequest | ConnectError | None:
    """Read the CONNECT request head at the start of ``data``.

    ``None``: no complete head yet, but more bytes could make one. A request line that
    is complete is judged at once, without waiting for the rest of the head.
    """
    if not data.startswith(_CONNECT):
        return None if _CONNECT.startswith(data) else ConnectError("not_connect")
    limit = min(len(data), MAX_HEAD_BYTES)
    line_end = data.find(b"\n", 0, limit)
    if line_end < 0:
        return _incomplete(data)
    request_line = _without_cr(data[len(_CONNECT) : line_end])
    target, _, version = request_line.rpartition(b" ")
    if version not in _VERSIONS:
        return ConnectError("not_connect")
    if not target or target.translate(None, _NOT_IN_TARGET) != target:
        return ConnectError("bad_target")
    head_end = _head_end(data, line_end, limit)
    if head_end < 0:
        return _incomplete(data)
    alpn_values = _alpn_field_values(data[line_end + 1 : head_end])
    if alpn_values is None:
        return ConnectRequest(target, None, None, None, False, head_end)
    alpn_header = b", ".join(alpn_values)
    ids, canonical, truncated = _parse_alpn_value(alpn_header)
    return ConnectRequest(target, ids, alpn_header, canonical, truncated, head_end)


def parse_connect_response(data: bytes) -> ConnectResponse | ConnectError | None:
    """Read the proxy's response head at the start of ``data``, past any interim 1xx
    response (100 Continue, 102, 103: each a head of its own, RFC 9110 §15.2) to the
    final one. A 101 is final: after it the connection speaks another protocol.
    """
    limit = min(len(data), MAX_HEAD_BYTES)
    start = 0
    while True:
        head = data[start : start + len(_HTTP1)]
        if head != _HTTP1:
            return _incomplete(data) if _HTTP1.startswith(head) else ConnectError("not_http")
        line_end = data.find(b"\n", start, limit)
        if line_end < 0:
            return _incomplete(data)
        status = _status_code(_without_cr(data[start:line_end]))
        if isinstance(status, ConnectError):
            return status
        head_end = _head_end(data, line_end, limit)
        if head_end < 0:
            return _incomplete(data)
        if status >= 200 or status == 101:
            return ConnectResponse(status, head_end)
        start = head_end


def _incomplete(data: bytes) -> ConnectError | None:
    """No head end within the bytes read: wait for more, unless the budget is spent."""
    return ConnectError("head_too_long") if len(data) >= MAX_HEAD_BYTES else None


def _without_cr(line: bytes) -> bytes:
    """A line without the CR of its CRLF end."""
    return line[:-1] if line and line[-1] == _CR else line


def _head_end(data: bytes, first_lf: int, limit: int) -> int:
    """Offset just past the blank line that ends a head whose first line ends with the LF
    at ``first_lf``; -1 when it is not in ``data[:limit]``. A blank line is an LF right
    after the LF ending the line before, or a CR and an LF there."""
    bare = data.find(b"\n\n", first_lf, limit)
    crlf = data.find(b"\n\r\n", first_lf, limit)
    if bare < 0:
        return crlf + 3 if crlf >= 0 else -1
    if 0 <= crlf < bare:
        return crlf + 3
    return bare + 2


def _status_code(line: bytes) -> int | ConnectError:
    """The status code of a status line (``HTTP/1.1 200 Connection established``)."""
    if line[:8] not in _VERSIONS:
        return ConnectError("not_http")
    code = line[9:12]
    if line[8:9] != b" " or len(code) != 3 or not code.isdigit() or line[12:13] not in (b"", b" "):
        return ConnectError("bad_status")
    status = int(code)
    return status if 100 <= status <= 599 else ConnectError("bad_status")


def _alpn_field_values(header_lines: bytes) -> list[bytes] | None:
    """The values of the ``ALPN`` field lines among a head's header lines, in order,
    OWS trimmed, obs-folds unfolded; ``None`` when there is none."""
    values: list[bytes] | None = None
    in_alpn = False  # the line before was an ALPN field line (or a fold of one)
    for raw_line in header_lines.split(b"\n"):
        line = _without_cr(raw_line)
        if not line:
            continue  # the blank line that ends the head, and the empty tail after it
        if line[0] in _OWS:
            folded = line.strip(_OWS)
            if in_alpn and values is not None and folded:
                values[-1] = values[-1] + b" " + folded if values[-1] else folded
            continue
        name, colon, value = line.partition(b":")
        in_alpn = bool(colon) and name.lower() == b"alpn"
        if in_alpn:
            if values is None:
                values = []
            values.append(value.strip(_OWS))
    return values


def _parse_alpn_value(value: bytes) -> tuple[tuple[bytes, ...], bool, bool]:
    """The decoded protocol IDs of an ``ALPN`` value (``1#protocol-id``), whether the
    value is canonical, and whether IDs past :data:`MAX_ALPN_IDS` were dropped."""
    ids: list[bytes] = []
    canonical = True
    truncated = False
    for element in value.split(b","):
        protocol_id = element.strip(_OWS)
        if not protocol_id:
            canonical = False  # recipients skip empty elements; senders must not send them
            continue
        raw, id_canonical = _decode_protocol_id(protocol_id)
        if not id_canonical:
            canonical = False
        if len(ids) < MAX_ALPN_IDS:
            ids.append(raw)
        else:
            truncated = True
    return tuple(ids), canonical and bool(ids), truncated


def _decode_protocol_id(protocol_id: bytes) -> tuple[bytes, bool]:
    """The ALPN ID a percent-encoded token names, and whether its encoding is the
    canonical one of RFC 7639 §2.1. Not a token, or a ``%`` without two hex digits after
    it: the element itself, not canonical."""
    if protocol_id.translate(None, _TCHAR):
        return protocol_id, False
    if _PERCENT not in protocol_id:
        return protocol_id, True
    decoded = bytearray()
    canonical = True
    i = 0
    end = len(protocol_id)
    while i < end:
        octet = protocol_id[i]
        if octet != _PERCENT:
            decoded.append(octet)
            i += 1
            continue
        if i + 2 >= end:
            return protocol_id, False
        high = _HEX_VALUE[protocol_id[i + 1]]
        low = _HEX_VALUE[protocol_id[i + 2]]
        if high < 0 or low < 0:
            return protocol_id, False
        octet = high << 4 | low
        if protocol_id[i + 1] >= 0x61 or protocol_id[i + 2] >= 0x61 or octet in _TCHAR_NOT_PERCENT:
            canonical = False  # lowercase hex digits, or an octet that must stay as it is
        decoded.append(octet)
        i += 3
    return bytes(decoded), canonical
