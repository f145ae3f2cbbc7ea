"""The events :class:`~alpnsniff.tls.stream.TlsStreamParser` hands back, and SSLv2 hellos.

Frozen, slotted dataclasses (as h11's events): plain values, no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from alpnsniff.errors import DissectError, Malformed
from alpnsniff.tls.cursor import Cursor

__all__ = [
    "AlertRecord",
    "ChangeCipherSpec",
    "EncryptedRecord",
    "HandshakeMessage",
    "SSLv2ClientHello",
    "StreamError",
    "TlsEvent",
    "parse_sslv2_client_hello",
]


@dataclass(frozen=True, slots=True)
class HandshakeMessage:
    """One complete plaintext handshake message, reassembled across records if need be.

    ``record_version`` is the version field of the record that carried its first byte.
    """

    msg_type: int
    body: bytes
    record_version: int


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A plaintext alert (level 1 warning, 2 fatal; description as in registry.ALERT_NAMES)."""

    level: int
    description: int


@dataclass(frozen=True, slots=True)
class ChangeCipherSpec:
    """A ChangeCipherSpec record (TLS <= 1.2; a no-op in TLS 1.3 middlebox mode)."""


@dataclass(frozen=True, slots=True)
class EncryptedRecord:
    """A record whose content is not read: encrypted, application data or heartbeat.

    ``version`` and ``payload`` are the record's own (the decryption stage needs them: the
    5-byte header is TLS 1.3's additional data); ``payload`` is empty where unknown.
    """

    content_type: int
    length: int
    # not part of equality or repr: events compare by what they say, and ciphertext is noise
    version: int = field(default=0, compare=False)
    payload: bytes = field(default=b"", compare=False, repr=False)

    @property
    def header(self) -> bytes:
        """The record header as on the wire."""
        return bytes((self.content_type, self.version >> 8, self.version & 255)) + (
            self.length.to_bytes(2, "big")
        )


@dataclass(frozen=True, slots=True)
class SSLv2ClientHello:
    """An SSL 2.0-format CLIENT-HELLO (RFC 6101 app. E, RFC 5246 app. E.2): no extensions.

    ``version`` is the highest version the client offers (0x0002, or 0x0300-0x0304 for
    a TLS client in SSLv2 compatibility form); ``cipher_specs`` are 24-bit values.
    """

    version: int
    cipher_specs: tuple[int, ...]
    challenge_len: int


@dataclass(frozen=True, slots=True)
class StreamError:
    """The stream stopped parsing here; the parser returns nothing more."""

    error: DissectError


TlsEvent = (
    HandshakeMessage | AlertRecord | ChangeCipherSpec | EncryptedRecord | SSLv2ClientHello
) | StreamError

_SSLV2_LAYER: Final = "tls.sslv2"


def parse_sslv2_client_hello(body: bytes) -> SSLv2ClientHello:
    """Parse the body of an SSLv2 record holding CLIENT-HELLO (message type 1 first)."""
    c = Cursor(body, _SSLV2_LAYER)
    msg_type = c.pull_uint8()
    if msg_type != 1:
        raise Malformed(f"SSLv2 message type {msg_type}, not CLIENT-HELLO", layer=_SSLV2_LAYER)
    version = c.pull_uint16()
    cs_len = c.pull_uint16()
    sid_len = c.pull_uint16()
    ch_len = c.pull_uint16()
    if cs_len == 0 or cs_len % 3:
        raise Malformed(f"cipher_spec_length {cs_len}", layer=_SSLV2_LAYER, offset=3)
    if sid_len > 32:
        raise Malformed(f"session_id_length {sid_len}", layer=_SSLV2_LAYER, offset=5)
    if not 16 <= ch_len <= 32:
        raise Malformed(f"challenge_length {ch_len}", layer=_SSLV2_LAYER, offset=7)
    specs = c.pull_bytes(cs_len)
    c.skip(sid_len)
    c.skip(ch_len)
    c.finish("SSLv2 CLIENT-HELLO")
    cipher_specs = tuple(
        (specs[i] << 16) | (specs[i + 1] << 8) | specs[i + 2] for i in range(0, cs_len, 3)
    )
    return SSLv2ClientHello(version=version, cipher_specs=cipher_specs, challenge_len=ch_len)
