"""Test helper: protected QUIC Handshake packets (RFC 9001 §5), for hand-built input.

The AEAD and the header protection mask are computed here with ``cryptography`` directly
(not with the code under test); only the key schedule is shared, and RFC 9001/9369 A.5
and the real captures pin that.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from alpnsniff.keys.aead import TLS13_SUITES, hkdf_expand_label
from alpnsniff.quic.packets import LongHeaderPacket, split_datagram
from alpnsniff.quic.versions import QUIC_V2
from alpnsniff.quic.wire import encode_varint


def protect_handshake(
    secret: bytes,
    pn: int,
    payload: bytes,
    *,
    suite: int = 0x1301,
    version: int = 1,
    pn_length: int = 4,
    dcid: bytes = b"\x11" * 8,
    scid: bytes = b"\x22" * 8,
    reserved: int = 0,
    labels: bytes | None = None,
) -> bytes:
    """A protected Handshake packet; ``labels`` overrides the version's label prefix."""
    s = TLS13_SUITES[suite]
    prefix = labels or (b"quicv2" if version == QUIC_V2 else b"quic")
    key = hkdf_expand_label(s.hash_name, secret, prefix + b" key", s.key_length)
    iv = hkdf_expand_label(s.hash_name, secret, prefix + b" iv", 12)
    hp = hkdf_expand_label(s.hash_name, secret, prefix + b" hp", s.key_length)
    payload = payload + bytes(max(0, 4 - pn_length - len(payload)))  # room for the sample
    type_bits = 0x30 if version == QUIC_V2 else 0x20
    header = (
        bytes([0xC0 | type_bits | reserved << 2 | (pn_length - 1)])
        + version.to_bytes(4, "big")
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + encode_varint(pn_length + len(payload) + 16)
    )
    pn_offset = len(header)
    header += (pn & ((1 << (8 * pn_length)) - 1)).to_bytes(pn_length, "big")
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    aead = ChaCha20Poly1305(key) if suite == 0x1303 else AESGCM(key)
    sealed = aead.encrypt(nonce, payload, header)
    sample = (header + sealed)[pn_offset + 4 : pn_offset + 20]
    if suite == 0x1303:
        mask = Cipher(algorithms.ChaCha20(hp, sample), mode=None).encryptor().update(bytes(5))
    else:
        mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)
    out = bytearray(header + sealed)
    out[0] ^= mask[0] & 0x0F
    for i in range(pn_length):
        out[pn_offset + i] ^= mask[1 + i]
    return bytes(out)


def packet(data: bytes) -> LongHeaderPacket:
    (p, *_rest) = split_datagram(data)
    assert isinstance(p, LongHeaderPacket)
    return p


def crypto_frame(offset: int, data: bytes) -> bytes:
    """A CRYPTO frame (RFC 9000 §19.6)."""
    return b"\x06" + encode_varint(offset) + encode_varint(len(data)) + data
