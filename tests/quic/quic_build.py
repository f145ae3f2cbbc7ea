"""Test helper: build correctly protected Initial packets (RFC 9001 §5) from frames."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alpnsniff.quic.initial import initial_keys
from alpnsniff.quic.versions import version_info
from alpnsniff.quic.wire import encode_varint


def protect_initial(
    version: int, odcid: bytes, dcid: bytes, scid: bytes, pn: int, payload: bytes, *, server: bool
) -> bytes:
    """A protected Initial (RFC 9001 §5), 4-byte packet number, for the tests."""
    info = version_info(version)
    assert info is not None
    keys = initial_keys(version, odcid, server=server)
    payload = payload + bytes(max(0, 4 - len(payload)))  # room for the sample
    length = 4 + len(payload) + 16
    header = (
        bytes([0xC0 | info.initial_type_bits | 0x03])
        + version.to_bytes(4, "big")
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + b"\x00"  # Token Length 0
        + encode_varint(length)
    )
    pn_offset = len(header)
    header += pn.to_bytes(4, "big")
    nonce = (int.from_bytes(keys.iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(keys.key).encrypt(nonce, payload, header)
    sample = sealed[:16]
    mask = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor().update(sample)
    protected = bytearray(header + sealed)
    protected[0] ^= mask[0] & 0x0F
    for i in range(4):
        protected[pn_offset + i] ^= mask[1 + i]
    return bytes(protected)


def crypto_frame(offset: int, data: bytes) -> bytes:
    """A CRYPTO frame (RFC 9000 §19.6)."""
    return b"\x06" + encode_varint(offset) + encode_varint(len(data)) + data
