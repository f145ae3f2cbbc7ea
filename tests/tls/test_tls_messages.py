"""The message parsers of alpnsniff.tls.messages: EncryptedExtensions and NextProtocol
bodies, well-formed, with protocol violations that do not stop the reading, and broken.

Their use on real decrypted flights is tested with the decryptors, in tests/keys.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpnsniff.errors import DissectError, Malformed, Truncated
from alpnsniff.tls.messages import (
    EncryptedExtensionsInfo,
    parse_encrypted_extensions,
    parse_next_protocol,
)

#: An EncryptedExtensions body selecting h2 (the message without its 4-byte header).
EE_H2_BODY = bytes.fromhex("0009001000050003026832")

# ------------------------------------------------------------------ EncryptedExtensions


@pytest.mark.parametrize(
    ("body", "alpn", "has_alpn", "types", "errors"),
    [
        (b"\x00\x00", (), False, (), ()),
        (EE_H2_BODY, (b"h2",), True, (16,), ()),
        (
            bytes.fromhex("000c 0010 0008 0006 026832 086874"),
            (b"h2",),
            True,
            (16,),
            (
                "application_layer_protocol_negotiation(16): opaque of 8 bytes, 2 left at tls13.ee+11",
            ),
        ),
        (
            bytes.fromhex("0012 0010 000e 000c 026832 08") + b"http/1.1",
            (b"h2", b"http/1.1"),
            True,
            (16,),
            ("alpn: server selected 2 protocols (RFC 7301 §3.1 requires exactly one)",),
        ),
        (
            bytes.fromhex("0006 0010 0002 0000"),
            (),
            True,
            (16,),
            ("alpn: empty protocol_name_list (RFC 7301 §3.1 requires one name)",),
        ),
        (
            bytes.fromhex("0012 0010 0005 0003 026832 0010 0005 0003 026833"),
            (b"h2",),
            True,
            (16, 16),
            (
                "application_layer_protocol_negotiation(16): repeated, first one read (RFC 8446 §4.2)",
            ),
        ),
        (bytes.fromhex("0008 000a 0004 0002 001d"), (), False, (10,), ()),
    ],
)
def test_parse_encrypted_extensions(
    body: bytes,
    alpn: tuple[bytes, ...],
    has_alpn: bool,
    types: tuple[int, ...],
    errors: tuple[str, ...],
) -> None:
    assert parse_encrypted_extensions(body) == EncryptedExtensionsInfo(
        alpn=alpn, has_alpn=has_alpn, extensions=types, errors=errors
    )


@pytest.mark.parametrize(
    ("body", "exc", "message"),
    [
        (b"", Truncated, "block length: need 2 bytes, 0 left at tls13.ee+0"),
        (b"\x00\x05\x00\x10", Truncated, "block of 5 bytes, 2 left at tls13.ee+0"),
        (b"\x00\x00\x00", Malformed, "1 byte left over after EncryptedExtensions at tls13.ee+2"),
        (b"\x00\x03\x00\x10\x00", Truncated, "block length: need 2 bytes, 1 left at tls13.ee+4"),
        (b"\x00\x04\x00\x10\x00\x09", Truncated, "block of 9 bytes, 0 left at tls13.ee+4"),
    ],
)
def test_parse_encrypted_extensions_framing_errors(body: bytes, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        parse_encrypted_extensions(body)
    assert str(info.value) == message


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=100))
def test_fuzz_parse_encrypted_extensions(body: bytes) -> None:
    try:
        info = parse_encrypted_extensions(body)
    except DissectError:
        return
    assert info.has_alpn == (16 in info.extensions)


# ------------------------------------------------------------------ NextProtocol


@pytest.mark.parametrize(
    ("body", "result"),
    [
        (b"\x02h2\x1c" + bytes(28), b"h2"),
        (b"\x08http/1.1\x16" + bytes(22), b"http/1.1"),
        (b"\x00\x00", b""),
    ],
)
def test_parse_next_protocol(body: bytes, result: bytes) -> None:
    assert parse_next_protocol(body) == result


@pytest.mark.parametrize(
    ("body", "exc", "message"),
    [
        (b"", Truncated, "opaque length: need 1 byte, 0 left at tls12.npn+0"),
        (b"\x05h2", Truncated, "opaque of 5 bytes, 2 left at tls12.npn+0"),
        (b"\x02h2", Truncated, "opaque length: need 1 byte, 0 left at tls12.npn+3"),
        (b"\x02h2\x00!", Malformed, "1 byte left over after NextProtocol at tls12.npn+4"),
    ],
)
def test_parse_next_protocol_errors(body: bytes, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        parse_next_protocol(body)
    assert str(info.value) == message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_parse_next_protocol(body: bytes) -> None:
    with contextlib.suppress(DissectError):
        assert len(parse_next_protocol(body)) <= 255
