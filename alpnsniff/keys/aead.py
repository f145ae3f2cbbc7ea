"""What the decryptors share: TLS 1.3 cipher suites, HKDF-Expand-Label, traffic keys.

RFC 8446 §7.1 (HKDF-Expand-Label), §7.3 (traffic keys), §5.3 (per-record nonce) and
Appendix B.4 (the cipher suites). Every primitive comes from ``cryptography`` except HMAC,
which the standard library computes in one call (see :mod:`alpnsniff.quic.initial` for the
measurement behind that choice).

Key material never appears in a ``repr``, a ``str`` or an error message: the classes that
hold it print what they are, never what they hold.
"""

from __future__ import annotations

import hmac as _hmac
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from alpnsniff.errors import Malformed, Unsupported

__all__ = [
    "LAYER",
    "NONCE_LENGTH",
    "TLS13_SUITES",
    "Aead",
    "DecryptFailed",
    "Tls13Suite",
    "TrafficKeys",
    "check_secret",
    "hkdf_expand_label",
    "tls13_suite",
    "traffic_keys",
]

LAYER: Final = "keys"

#: RFC 8446 §5.3: the per-record nonce is iv_length = max(8, N_MIN) = 12 bytes for every
#: TLS 1.3 AEAD (RFC 5116 §5.1-5.3, RFC 8439); QUIC uses the same (RFC 9001 §5.3).
NONCE_LENGTH: Final = 12

#: The hash functions HKDF runs on, with their output lengths.
_HASH_LENGTHS: Final = {"sha256": 32, "sha384": 48}


class DecryptFailed(Malformed):
    """The AEAD tag (or a CBC record's padding or MAC) did not verify.

    Wrong keys (a key log for another connection) or damaged bytes; the message says
    which record or packet, never the keys.
    """

    reason: ClassVar[str] = "decrypt-failed"


class Aead(Protocol):
    """What the decryptors need from a ``cryptography`` AEAD object."""

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


def _ccm8(key: bytes) -> Aead:
    return AESCCM(key, tag_length=8)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tls13Suite:
    """One TLS 1.3 cipher suite (RFC 8446 Appendix B.4)."""

    code: int
    name: str
    #: HKDF hash: "sha256" or "sha384"; the traffic secrets are this long.
    hash_name: str
    hash_length: int
    #: AEAD key length in bytes (also the QUIC header protection key length).
    key_length: int
    #: AEAD tag length in bytes.
    tag_length: int
    #: The AEAD class (None: AES-CCM with an 8-byte tag, built by :meth:`make_aead`).
    aead: type[AESGCM] | type[ChaCha20Poly1305] | type[AESCCM] | None
    #: QUIC header protection (RFC 9001 §5.4.3, §5.4.4): "aes" or "chacha20".
    header_protection: str
    #: RFC 9001 §5.3: AEAD_AES_128_CCM_8 is not usable with QUIC.
    quic_ok: bool

    def make_aead(self, key: bytes) -> Aead:
        if self.aead is None:
            return _ccm8(key)
        return self.aead(key)


_AeadClass = type[AESGCM] | type[ChaCha20Poly1305] | type[AESCCM] | None


def _suite(
    code: int, name: str, hash_name: str, key_length: int, tag_length: int, aead: _AeadClass
) -> Tls13Suite:
    return Tls13Suite(
        code=code,
        name=name,
        hash_name=hash_name,
        hash_length=_HASH_LENGTHS[hash_name],
        key_length=key_length,
        tag_length=tag_length,
        aead=aead,
        header_protection="chacha20" if aead is ChaCha20Poly1305 else "aes",
        quic_ok=tag_length == 16,
    )


#: RFC 8446 Appendix B.4 (and RFC 9001 §5.3 for which of them QUIC allows).
TLS13_SUITES: Final[dict[int, Tls13Suite]] = {
    s.code: s
    for s in (
        _suite(0x1301, "TLS_AES_128_GCM_SHA256", "sha256", 16, 16, AESGCM),
        _suite(0x1302, "TLS_AES_256_GCM_SHA384", "sha384", 32, 16, AESGCM),
        _suite(0x1303, "TLS_CHACHA20_POLY1305_SHA256", "sha256", 32, 16, ChaCha20Poly1305),
        _suite(0x1304, "TLS_AES_128_CCM_SHA256", "sha256", 16, 16, AESCCM),
        _suite(0x1305, "TLS_AES_128_CCM_8_SHA256", "sha256", 16, 8, None),
    )
}


def tls13_suite(code: int, *, layer: str = LAYER) -> Tls13Suite:
    """The suite for ``code``; :class:`Unsupported` for anything not in RFC 8446 B.4."""
    suite = TLS13_SUITES.get(code)
    if suite is None:
        raise Unsupported(
            f"TLS 1.3 cipher suite 0x{code:04x} is not one this tool decrypts", layer=layer
        )
    return suite


def hkdf_expand_label(
    hash_name: str, secret: bytes, label: bytes, length: int, context: bytes = b""
) -> bytes:
    """RFC 8446 §7.1 HKDF-Expand-Label(secret, label, context, length) with SHA-256/384.

    ``label`` without the "tls13 " prefix. RFC 5869 §2.3: T(i) = HMAC(PRK, T(i-1) | info | i).
    """
    hash_length = _HASH_LENGTHS[hash_name]
    if not 0 < length <= 255 * hash_length:
        raise ValueError(f"HKDF-Expand of {length} bytes")  # a programming error
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes((len(full),)) + full + bytes((len(context),)) + context
    out = b""
    block = b""
    i = 1
    while len(out) < length:
        block = _hmac.digest(secret, block + info + bytes((i,)), hash_name)
        out += block
        i += 1
    return out[:length]


class TrafficKeys:
    """A write key and iv (RFC 8446 §7.3) with the AEAD object built once.

    Its ``repr`` names the suite only: the key and iv are secrets.
    """

    __slots__ = ("_aead", "_iv_int", "iv", "key", "suite")

    def __init__(self, suite: Tls13Suite, key: bytes, iv: bytes) -> None:
        self.suite = suite
        self.key = key
        self.iv = iv
        self._iv_int = int.from_bytes(iv, "big")
        self._aead = suite.make_aead(key)

    def __repr__(self) -> str:
        return f"TrafficKeys({self.suite.name}, key and iv hidden)"

    def __str__(self) -> str:
        return self.__repr__()

    def nonce(self, seq: int) -> bytes:
        """RFC 8446 §5.3 / RFC 9001 §5.3: the iv XOR the 64-bit sequence (packet) number."""
        return (self._iv_int ^ seq).to_bytes(NONCE_LENGTH, "big")

    def open(self, seq: int, ciphertext: bytes, aad: bytes) -> bytes:
        """Decrypt and verify; raises ``cryptography.exceptions.InvalidTag`` on failure."""
        return self._aead.decrypt(self.nonce(seq), ciphertext, aad)


def check_secret(suite: Tls13Suite, secret: bytes, what: str, *, layer: str = LAYER) -> None:
    """A traffic secret is exactly one hash long (RFC 8446 §7.1: Derive-Secret's output)."""
    if len(secret) != suite.hash_length:
        raise Malformed(
            f"{what} of {len(secret)} bytes, {suite.name} needs {suite.hash_length}",
            layer=layer,
        )


def traffic_keys(
    suite: Tls13Suite, secret: bytes, *, key_label: bytes = b"key", iv_label: bytes = b"iv"
) -> TrafficKeys:
    """RFC 8446 §7.3: [sender]_write_key and _iv from a traffic secret.

    QUIC passes its own labels ("quic key", "quic iv"; "quicv2 …" for v2, RFC 9369 §3.3.2).
    """
    key = hkdf_expand_label(suite.hash_name, secret, key_label, suite.key_length)
    iv = hkdf_expand_label(suite.hash_name, secret, iv_label, NONCE_LENGTH)
    return TrafficKeys(suite, key, iv)
