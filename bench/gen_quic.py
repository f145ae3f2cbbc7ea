"""QUIC v1 Initial packet protection for the benchmark generator (RFC 9001 section 5).

Builds (and, for template extraction and tests, removes) the protection of QUIC version 1
Initial packets: initial secrets derived from the client's Destination Connection ID with
HKDF-SHA256, AES-128-GCM payload protection and AES-ECB header protection. This is the
benchmark's traffic *generator*, not the dissector: the dissector has its own implementation
in ``alpnsniff/quic`` and the two are checked against each other only through tshark and
aioquic in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

QUIC_V1 = 0x00000001
# RFC 9001 section 5.2: the salt of QUIC version 1's initial secret.
INITIAL_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
# AEAD_AES_128_GCM authentication tag length (RFC 9001 section 5.3).
TAG_LEN = 16
# Header protection samples 16 bytes starting 4 bytes after the packet number's start.
SAMPLE_LEN = 16
SAMPLE_OFFSET = 4


def hkdf_expand_label(secret: bytes, label: str, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label with an empty context (RFC 8446 section 7.1), SHA-256."""
    full = b"tls13 " + label.encode()
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


@dataclass(frozen=True, slots=True)
class InitialKeys:
    """One direction's Initial packet protection keys."""

    key: bytes
    iv: bytes
    hp: bytes


def initial_keys(dcid: bytes, *, server: bool) -> InitialKeys:
    """Derive the client's (or server's) Initial keys from the client's first DCID."""
    initial_secret = hmac.new(INITIAL_SALT_V1, dcid, hashlib.sha256).digest()
    secret = hkdf_expand_label(initial_secret, "server in" if server else "client in", 32)
    return InitialKeys(
        key=hkdf_expand_label(secret, "quic key", 16),
        iv=hkdf_expand_label(secret, "quic iv", 12),
        hp=hkdf_expand_label(secret, "quic hp", 16),
    )


def header_protection_mask(hp_key: bytes, sample: bytes) -> bytes:
    """AES-ECB(hp_key, sample)[:5] (RFC 9001 section 5.4.3)."""
    enc = Cipher(algorithms.AES(hp_key), modes.ECB()).encryptor()
    return enc.update(sample)[:5]


def encode_varint(value: int) -> bytes:
    """QUIC variable-length integer (RFC 9000 section 16), shortest form."""
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return struct.pack("!H", 0x4000 | value)
    if value < 0x40000000:
        return struct.pack("!I", 0x80000000 | value)
    return struct.pack("!Q", 0xC000000000000000 | value)


def decode_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a QUIC varint at ``pos``; return (value, next position)."""
    first = buf[pos]
    size = 1 << (first >> 6)
    value = first & 0x3F
    for i in range(1, size):
        value = (value << 8) | buf[pos + i]
    return value, pos + size


class InitialProtector:
    """Protects Initial packets of one connection direction with precomputed ciphers."""

    __slots__ = ("_aead", "_hp", "_iv")

    def __init__(self, keys: InitialKeys) -> None:
        self._aead = AESGCM(keys.key)
        self._hp = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor()
        self._iv = keys.iv

    def protect(
        self, *, dcid: bytes, scid: bytes, token: bytes, pn: int, pn_len: int, payload: bytes
    ) -> bytes:
        """Return a protected Initial packet carrying ``payload`` (plaintext frames).

        ``payload`` must be long enough for the header-protection sample
        (pn_len + len(payload) + 16 >= 20).
        """
        length = pn_len + len(payload) + TAG_LEN
        header = (
            bytes([0xC0 | (pn_len - 1)])
            + struct.pack("!I", QUIC_V1)
            + bytes([len(dcid)])
            + dcid
            + bytes([len(scid)])
            + scid
            + encode_varint(len(token))
            + token
            + struct.pack("!H", 0x4000 | length)
        )
        pn_bytes = pn.to_bytes(pn_len, "big")
        aad = header + pn_bytes
        nonce = (int.from_bytes(self._iv, "big") ^ pn).to_bytes(12, "big")
        ciphertext = self._aead.encrypt(nonce, payload, aad)
        sample_start = SAMPLE_OFFSET - pn_len
        mask = self._hp.update(ciphertext[sample_start : sample_start + SAMPLE_LEN])
        first = bytes([header[0] ^ (mask[0] & 0x0F)])
        masked_pn = bytes(b ^ m for b, m in zip(pn_bytes, mask[1 : 1 + pn_len], strict=True))
        return first + header[1:] + masked_pn + ciphertext


def unprotect_initial(packet: bytes, keys: InitialKeys) -> tuple[int, bytes, int]:
    """Remove the protection of the Initial packet at the start of ``packet``.

    Returns (packet number, plaintext frames, total protected packet length). Used to
    extract templates from real captures and in tests; raises ValueError when the packet is
    not a v1 Initial or does not authenticate.
    """
    if packet[0] & 0xF0 != 0xC0 or struct.unpack_from("!I", packet, 1)[0] != QUIC_V1:
        raise ValueError("not a QUIC v1 Initial")
    pos = 5
    dcid_len = packet[pos]
    pos += 1 + dcid_len
    scid_len = packet[pos]
    pos += 1 + scid_len
    token_len, pos = decode_varint(packet, pos)
    pos += token_len
    length, pos = decode_varint(packet, pos)
    pn_offset = pos
    sample = packet[pn_offset + SAMPLE_OFFSET : pn_offset + SAMPLE_OFFSET + SAMPLE_LEN]
    mask = header_protection_mask(keys.hp, sample)
    first = packet[0] ^ (mask[0] & 0x0F)
    pn_len = (first & 0x03) + 1
    pn_bytes = bytes(
        b ^ m for b, m in zip(packet[pn_offset : pn_offset + pn_len], mask[1:], strict=False)
    )
    pn = int.from_bytes(pn_bytes, "big")
    header = bytes([first]) + packet[1:pn_offset] + pn_bytes
    end = pn_offset + length
    nonce = (int.from_bytes(keys.iv, "big") ^ pn).to_bytes(12, "big")
    plaintext = AESGCM(keys.key).decrypt(nonce, packet[pn_offset + pn_len : end], header)
    return pn, plaintext, end


def crypto_frames(plaintext: bytes) -> list[tuple[int, bytes]]:
    """The (offset, data) CRYPTO frames of decrypted Initial frames (PADDING, PING, ACK skipped)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(plaintext):
        ftype = plaintext[pos]
        pos += 1
        if ftype in (0x00, 0x01):  # PADDING, PING
            continue
        if ftype in (0x02, 0x03):  # ACK
            _, pos = decode_varint(plaintext, pos)  # largest acknowledged
            _, pos = decode_varint(plaintext, pos)  # ack delay
            count, pos = decode_varint(plaintext, pos)
            _, pos = decode_varint(plaintext, pos)  # first range
            for _ in range(count * 2):
                _, pos = decode_varint(plaintext, pos)
            if ftype == 0x03:
                for _ in range(3):
                    _, pos = decode_varint(plaintext, pos)
            continue
        if ftype == 0x06:
            offset, pos = decode_varint(plaintext, pos)
            size, pos = decode_varint(plaintext, pos)
            out.append((offset, plaintext[pos : pos + size]))
            pos += size
            continue
        raise ValueError(f"unexpected frame type {ftype:#x} in an Initial")
    return out
