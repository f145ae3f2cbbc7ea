"""Does this UDP datagram start with a DTLS record? A cheap look at its first 13 bytes.

DTLS 1.0/1.2 record header (RFC 6347 §4.1; DTLS 1.3's plaintext records, RFC 9147 §4, keep
it): ``type(1) version(2) epoch(2) sequence_number(6) length(2)``. A datagram is taken for
DTLS only when every field is one a DTLS stack sends in its first flight: type 22
(handshake) or 21 (alert), version 0xfeff (1.0), 0xfefd (1.2; DTLS 1.3 records say 1.2) or
0x0100 (OpenSSL's DTLS1_BAD_VER, the pre-RFC DTLS of old Cisco AnyConnect), epoch 0, and a
length that fits the datagram. Imports nothing.
"""

from __future__ import annotations

from typing import Final

RECORD_HEADER: Final = 13
_VERSIONS: Final = frozenset({b"\xfe\xff", b"\xfe\xfd", b"\x01\x00"})
#: Bytes a DTLS datagram of a connection's first flight starts with (handshake, alert).
FIRST_BYTES: Final = frozenset({22, 21})


def looks_like_dtls(payload: bytes) -> bool:
    """The datagram starts with a plaintext DTLS handshake or alert record of epoch 0."""
    if len(payload) < RECORD_HEADER or payload[0] not in FIRST_BYTES:
        return False
    if payload[1:3] not in _VERSIONS or payload[3:5] != b"\x00\x00":
        return False
    length = payload[11] << 8 | payload[12]
    return 0 < length <= len(payload) - RECORD_HEADER
