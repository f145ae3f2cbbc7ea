"""Does this TCP stream start with TLS? A cheap look at its first bytes.

Called at every segment start a TCP flow probes (up to its probe budget), so it reads at
most the first six bytes of a TLS record (eleven of an SSLv2 hello) and allocates nothing.

TLS (RFC 8446 §5.1): a record header ``type(1) version(2) length(2)`` then, for a
handshake record, the handshake type. A stream start is taken for TLS only when every
field is one a TLS stack can send there: type 22 (handshake) or 21 (alert), version
3.0-3.4, a length of 1 to 2^14 + 2048 (the largest record, RFC 5246 §6.2.3) and, for a
handshake, a registered handshake type. SSLv2 (RFC 6101 appendix E, RFC 5246 appendix
E.2): a two-byte header with the top bit set, then CLIENT-HELLO (1) and a version of
0x0002 or 0x0300-0x0304.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_RECORD_LENGTH",
    "NOT_TLS",
    "SSLV2_CLIENT_HELLO",
    "TLS_ALERT",
    "TLS_CLIENT_HELLO",
    "TLS_HANDSHAKE",
    "classify_stream_start",
]

TLS_CLIENT_HELLO: Final = "tls-client-hello"
TLS_HANDSHAKE: Final = "tls-handshake"
TLS_ALERT: Final = "tls-alert"
SSLV2_CLIENT_HELLO: Final = "sslv2-client-hello"
NOT_TLS: Final = "not-tls"

# Largest TLSCiphertext fragment: 2^14 plus 2048 of expansion (RFC 5246 §6.2.3); RFC 8446
# allows only 2^14 + 256, so this bound accepts every record either version can send.
MAX_RECORD_LENGTH: Final = 2**14 + 2048

# Smallest SSLv2 CLIENT-HELLO: 9 header bytes, one 3-byte cipher spec, a 16-byte
# challenge (RFC 6101 E.2 allows 16 to 32). Largest: a stream start never carries more
# than one TLS record's worth of hello, so the TLS record bound is used.
_SSLV2_MIN_LENGTH: Final = 9 + 3 + 16

# Handshake types that can open a direction of TLS over TCP other than ClientHello (1):
# ServerHello (2), a TLS 1.3 draft HelloRetryRequest (6), and the later messages of a
# flight when the capture missed its first segment (4, 11-16, 20, 22). HelloRequest (0)
# is left out: zero bytes are common in other protocols and it never opens a stream.
_HANDSHAKE_TYPES: Final = frozenset({2, 4, 6, 11, 12, 13, 14, 15, 16, 20, 22})


def classify_stream_start(data: bytes) -> str | None:
    """Classify the first bytes of one direction of a TCP stream.

    Returns ``"tls-client-hello"``, ``"tls-handshake"`` (another handshake message first,
    e.g. a ServerHello), ``"tls-alert"``, ``"sslv2-client-hello"``, ``"not-tls"``, or None
    when the bytes so far fit TLS but are too few to decide (never None from six bytes on,
    nor for SSLv2 from three).
    """
    n = len(data)
    if n == 0:
        return None
    b0 = data[0]
    if b0 == 0x16 or b0 == 0x15:
        if n < 2:
            return None
        if data[1] != 3:
            return NOT_TLS
        if n < 3:
            return None
        if data[2] > 4:
            return NOT_TLS
        if n < 5:
            return None
        length = (data[3] << 8) | data[4]
        if b0 == 0x15:
            # A plaintext alert is level(1) description(2); one or more per record.
            if length == 0 or length & 1 or length > 64:
                return NOT_TLS
            if n < 6:
                return None
            return TLS_ALERT if data[5] in (1, 2) else NOT_TLS
        if length == 0 or length > MAX_RECORD_LENGTH:
            return NOT_TLS
        if n < 6:
            return None
        hs_type = data[5]
        if hs_type == 1:
            return TLS_CLIENT_HELLO
        return TLS_HANDSHAKE if hs_type in _HANDSHAKE_TYPES else NOT_TLS
    if b0 & 0x80:
        return _classify_sslv2(data, n)
    return NOT_TLS


def _classify_sslv2(data: bytes, n: int) -> str | None:
    if n < 3:
        return None
    length = ((data[0] & 0x7F) << 8) | data[1]
    if data[2] != 1 or length < _SSLV2_MIN_LENGTH or length > MAX_RECORD_LENGTH:
        return NOT_TLS
    if n >= 5:  # version: SSL 2.0 or an SSL 3.0 / TLS version in SSLv2 form
        major, minor = data[3], data[4]
        if not ((major == 0 and minor == 2) or (major == 3 and minor <= 4)):
            return NOT_TLS
    if n >= 7:  # cipher_spec_length: non-zero, whole 3-byte specs
        cs_len = (data[5] << 8) | data[6]
        if cs_len == 0 or cs_len % 3:
            return NOT_TLS
        if n >= 11:  # session_id_length 0..32 (0 or 16 in practice), challenge 16..32
            sid_len = (data[7] << 8) | data[8]
            ch_len = (data[9] << 8) | data[10]
            if sid_len > 32 or not 16 <= ch_len <= 32:
                return NOT_TLS
            if 9 + cs_len + sid_len + ch_len != length:
                return NOT_TLS
    return SSLV2_CLIENT_HELLO
