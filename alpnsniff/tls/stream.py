"""Incremental TLS record and handshake reassembly for one direction of a stream (sans-I/O).

``TlsStreamParser.feed(data)`` takes the stream's bytes in order, in pieces of any size,
and returns the events those bytes complete: records split across feeds, several records
in one feed, a handshake message over several records, several messages in one record.

Encryption. The parser reads no keys. Handshake records become opaque
(:class:`EncryptedRecord`) after :meth:`TlsStreamParser.set_encrypted` (the caller saw a
ServerHello, not a HelloRetryRequest, select TLS 1.3) and after a ChangeCipherSpec, with
one exception for TLS 1.3 middlebox compatibility (RFC 8446 §D.4): a CCS also precedes a
client's second ClientHello after a HelloRetryRequest, and follows the HRR on the server
side before its ServerHello. So after a CCS (not after ``set_encrypted``) a handshake
record that starts at a message boundary with a plaintext ClientHello or ServerHello
header - type 1 or 2, a length of 38 bytes or more within the limit, legacy_version 3.0 to
3.4 - is still read. A CBC-encrypted TLS 1.2 Finished (a random-looking record) passes
that test by chance about 5 times in 10^9; a GCM one (explicit nonce 0) never does.

Errors. The first :class:`DissectError` becomes one :class:`StreamError` event and the
parser stops: later feeds return ``[]`` and buffer nothing.
"""

from __future__ import annotations

from typing import Final

from alpnsniff.errors import DissectError, Malformed, Unsupported
from alpnsniff.tls.detect import MAX_RECORD_LENGTH
from alpnsniff.tls.events import (
    AlertRecord,
    ChangeCipherSpec,
    EncryptedRecord,
    HandshakeMessage,
    SSLv2ClientHello,
    StreamError,
    TlsEvent,
    parse_sslv2_client_hello,
)

__all__ = [
    "MAX_HANDSHAKE_MESSAGE",
    "AlertRecord",
    "ChangeCipherSpec",
    "EncryptedRecord",
    "HandshakeMessage",
    "SSLv2ClientHello",
    "StreamError",
    "TlsEvent",
    "TlsStreamParser",
]

# The largest ClientHello the syntax allows (RFC 8446 §4.1.2): version 2 + random 32 +
# session_id 1+32 + cipher_suites 2+65534 + compression 1+255 + extensions 2+65535 bytes.
# Every hello fits; only a longer message (a certificate chain, which carries nothing
# this tool reads) is refused, so one direction never holds more than this plus a record.
MAX_HANDSHAKE_MESSAGE: Final = 2 + 32 + 1 + 32 + 2 + 65534 + 1 + 255 + 2 + 65535

_CT_CHANGE_CIPHER_SPEC: Final = 20
_CT_ALERT: Final = 21
_CT_HANDSHAKE: Final = 22
_CT_APPLICATION_DATA: Final = 23
_CT_HEARTBEAT: Final = 24

_LAYER: Final = "tls.record"
_HS_LAYER: Final = "tls.handshake"


def _looks_like_plain_hello(frag: bytes, limit: int) -> bool:
    """A plaintext ClientHello/ServerHello header at the start of a record (see module doc).

    A record shorter than the six header bytes is checked as far as it goes: no encrypted
    record is that short (an AEAD tag alone is 16 bytes).
    """
    n = len(frag)
    if n == 0 or frag[0] not in (1, 2):
        return False
    if n >= 4 and not 38 <= (frag[1] << 16) | (frag[2] << 8) | frag[3] <= limit:
        return False
    return (n < 5 or frag[4] == 3) and (n < 6 or frag[5] <= 4)


class TlsStreamParser:
    """Records and handshake messages of one direction of a TLS-over-TCP stream."""

    __slots__ = (
        "_buf",
        "_ccs_seen",
        "_encrypted",
        "_hs",
        "_hs_version",
        "_max",
        "_offset",
        "_sslv2_ok",
        "_stopped",
    )

    def __init__(self, *, max_message: int = MAX_HANDSHAKE_MESSAGE) -> None:
        self._max = max_message
        self._buf = bytearray()  # bytes of an incomplete record
        self._offset = 0  # stream offset of _buf[0], for error messages
        self._hs = bytearray()  # bytes of an incomplete handshake message
        self._hs_version = 0  # record version where the message in _hs started
        self._encrypted = False  # set_encrypted() was called
        self._ccs_seen = False  # a ChangeCipherSpec went by
        self._sslv2_ok = True  # no TLS record yet: an SSLv2 record may start the stream
        self._stopped = False

    @property
    def buffered(self) -> int:
        """Bytes held: an incomplete record plus an incomplete handshake message."""
        return len(self._buf) + len(self._hs)

    @property
    def stopped(self) -> bool:
        """True once a StreamError has been returned."""
        return self._stopped

    def set_encrypted(self) -> None:
        """From now on handshake records are opaque (TLS 1.3 was negotiated)."""
        self._encrypted = True

    def feed(self, data: bytes) -> list[TlsEvent]:
        """Take the next contiguous bytes of the stream; return the events they complete."""
        if self._stopped:
            return []
        events: list[TlsEvent] = []
        if self._buf:
            self._buf += data
            buf: bytes | bytearray = self._buf
        else:
            buf = data  # nothing pending: parse the caller's bytes without copying
        try:
            used = self._records(buf, events)
        except DissectError as err:
            events.append(StreamError(err))
            self._stopped = True
            self._buf = bytearray()
            self._hs = bytearray()
            return events
        self._offset += used
        if buf is self._buf:
            del self._buf[:used]
        elif used < len(buf):
            self._buf = bytearray(buf[used:])
        return events

    # -- records --------------------------------------------------------------------

    def _records(self, b: bytes | bytearray, events: list[TlsEvent]) -> int:
        """Handle every complete record in ``b``; return the bytes consumed."""
        pos = 0
        n = len(b)
        while pos < n:
            ct = b[pos]
            if ct & 0x80 and self._sslv2_ok:
                used = self._sslv2_record(b, pos, events)
                if used == 0:
                    break
                pos += used
                continue
            if not _CT_CHANGE_CIPHER_SPEC <= ct <= _CT_HEARTBEAT:
                raise Malformed(f"record type {ct}", layer=_LAYER, offset=self._offset + pos)
            if n - pos >= 2 and b[pos + 1] != 3:
                raise Malformed(
                    f"record version major {b[pos + 1]}",
                    layer=_LAYER,
                    offset=self._offset + pos + 1,
                )
            if n - pos < 5:
                break
            version = (b[pos + 1] << 8) | b[pos + 2]
            length = (b[pos + 3] << 8) | b[pos + 4]
            if length > MAX_RECORD_LENGTH:
                raise Malformed(
                    f"record of {length} bytes (the maximum is {MAX_RECORD_LENGTH})",
                    layer=_LAYER,
                    offset=self._offset + pos + 3,
                )
            end = pos + 5 + length
            if end > n:
                break
            self._sslv2_ok = False
            self._record(ct, version, bytes(b[pos + 5 : end]), pos, events)
            pos = end
        return pos

    def _record(self, ct: int, version: int, frag: bytes, pos: int, events: list[TlsEvent]) -> None:
        length = len(frag)
        if ct == _CT_HANDSHAKE:
            if self._encrypted or (
                self._ccs_seen and not self._hs and not _looks_like_plain_hello(frag, self._max)
            ):
                events.append(EncryptedRecord(ct, length, version, frag))
                return
            if length == 0:
                raise Malformed(
                    "empty handshake record (RFC 8446 §5.1)",
                    layer=_LAYER,
                    offset=self._offset + pos,
                )
            self._handshake(version, frag, pos, events)
        elif ct == _CT_CHANGE_CIPHER_SPEC:
            if self._hs:
                raise Malformed(
                    "ChangeCipherSpec inside a fragmented handshake message",
                    layer=_LAYER,
                    offset=self._offset + pos,
                )
            if frag != b"\x01":
                raise Malformed(
                    f"ChangeCipherSpec body {frag.hex()!r}",
                    layer=_LAYER,
                    offset=self._offset + pos + 5,
                )
            self._ccs_seen = True
            events.append(ChangeCipherSpec())
        elif ct == _CT_ALERT:
            self._alert(frag, version, events)
        else:  # application data, heartbeat: never read here
            events.append(EncryptedRecord(ct, length, version, frag))

    def _alert(self, frag: bytes, version: int, events: list[TlsEvent]) -> None:
        """Plaintext alerts (level, description pairs); anything else is opaque."""
        length = len(frag)
        if not (self._encrypted or self._ccs_seen) and (
            length == 2 or (length and not length & 1 and all(lv in (1, 2) for lv in frag[0::2]))
        ):
            for i in range(0, length, 2):
                events.append(AlertRecord(frag[i], frag[i + 1]))
        else:
            events.append(EncryptedRecord(_CT_ALERT, length, version, frag))

    def _handshake(self, version: int, frag: bytes, pos: int, events: list[TlsEvent]) -> None:
        """Append a handshake fragment; emit every message it completes."""
        hs = self._hs
        if not hs:
            self._hs_version = version
        hs += frag
        start = 0
        have = len(hs)
        while have - start >= 4:
            mlen = (hs[start + 1] << 16) | (hs[start + 2] << 8) | hs[start + 3]
            if mlen > self._max:
                raise Unsupported(
                    f"handshake message type {hs[start]} of {mlen} bytes is over the "
                    f"{self._max}-byte limit (MAX_HANDSHAKE_MESSAGE)",
                    layer=_HS_LAYER,
                    offset=self._offset + pos,
                )
            end = start + 4 + mlen
            if end > have:
                break
            events.append(HandshakeMessage(hs[start], bytes(hs[start + 4 : end]), self._hs_version))
            self._hs_version = version  # any further message starts in this record
            start = end
        if start:
            del hs[:start]

    def _sslv2_record(self, b: bytes | bytearray, pos: int, events: list[TlsEvent]) -> int:
        """An SSLv2 record (two-byte header, top bit set) at the stream start; 0 = need more.

        Its 15-bit length bounds what is buffered to 32767 bytes (RFC 6101 appendix E).
        """
        if len(b) - pos < 2:
            return 0
        length = ((b[pos] & 0x7F) << 8) | b[pos + 1]
        if length == 0:
            raise Malformed("SSLv2 record of 0 bytes", layer=_LAYER, offset=self._offset + pos)
        end = pos + 2 + length
        if end > len(b):
            return 0
        body = bytes(b[pos + 2 : end])
        if body[0] != 1:
            raise Unsupported(
                f"SSLv2 message type {body[0]} (only CLIENT-HELLO is read)",
                layer=_LAYER,
                offset=self._offset + pos + 2,
            )
        hello: SSLv2ClientHello = parse_sslv2_client_hello(body)
        events.append(hello)
        return end - pos
