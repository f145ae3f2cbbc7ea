"""Initial packet protection: keys from the client's DCID, header protection, AEAD open.

RFC 9001 §5.2 (Initial secrets), §5.1 (key, iv, hp from a secret), §5.3 (AEAD nonce and
AAD), §5.4 (header protection with AES-ECB), §5.8 (Retry integrity); RFC 9000 §17.1 and
Appendix A.3 (packet number recovery). Initial packets always use AEAD_AES_128_GCM with
SHA-256 (RFC 9001 §5.2). All primitives come from ``cryptography``.
"""

from __future__ import annotations

import hmac as _hmac
from dataclasses import dataclass, field
from typing import ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alpnsniff.errors import Malformed, Truncated, Unsupported
from alpnsniff.quic.packets import RETRY_INTEGRITY_TAG_LENGTH, LongHeaderPacket, RetryPacket
from alpnsniff.quic.versions import VersionInfo, version_info
from alpnsniff.quic.wire import LAYER

#: RFC 9001 §5.4.2: header protection samples 16 bytes of ciphertext …
SAMPLE_LENGTH = 16
#: … starting 4 bytes after the Packet Number field's start (its maximum length).
PN_MAX_LENGTH = 4
#: AEAD_AES_128_GCM's tag (RFC 5116 §5.1), the last 16 bytes of every protected payload.
AEAD_TAG_LENGTH = 16
#: Initial packets: AEAD_AES_128_GCM, so a 16-byte key and a 16-byte AES header key.
INITIAL_KEY_LENGTH = 16
#: RFC 9001 §5.3: the AEAD nonce (and so the iv) is 12 bytes.
IV_LENGTH = 12
#: SHA-256 output: the length of the Initial secrets.
SECRET_LENGTH = 32
HASH_LENGTH = 32  # SHA-256


class DecryptError(Malformed):
    """The AEAD tag did not verify: wrong keys (not the DCID we think) or damaged bytes."""

    reason: ClassVar[str] = "quic-decrypt-failed"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PacketKeys:
    """One direction's Initial keys, with the cipher objects built once."""

    version: int
    # Initial keys follow from the DCID on the wire (RFC 9001 §5.2), so they are no secret,
    # but no key material is printed anywhere: left out of the repr all the same.
    #: The client_initial_secret or server_initial_secret they come from.
    secret: bytes = field(repr=False)
    key: bytes = field(repr=False)
    iv: bytes = field(repr=False)
    hp: bytes = field(repr=False)
    _aead: AESGCM = field(repr=False)
    _hp_ecb: CipherContext = field(repr=False)

    def mask(self, sample: bytes) -> bytes:
        """RFC 9001 §5.4.3: the 5-byte header protection mask, AES-ECB(hp, sample)[:5]."""
        return self._hp_ecb.update(sample)[:5]

    def nonce(self, pn: int) -> bytes:
        """RFC 9001 §5.3: the iv XORed with the packet number, left-padded to 12 bytes."""
        return (int.from_bytes(self.iv, "big") ^ pn).to_bytes(IV_LENGTH, "big")

    def decrypt(self, pn: int, ciphertext: bytes, header: bytes) -> bytes:
        """Open one payload (ciphertext plus tag) with the unprotected header as AAD.

        Raises ``cryptography.exceptions.InvalidTag`` when the tag does not verify.
        """
        return self._aead.decrypt(self.nonce(pn), ciphertext, header)


# HKDF with SHA-256 is two HMAC calls here (every output is at most one hash long), so it is
# written with the standard library's one-shot HMAC: ~1 µs a call, against ~10 µs for
# building cryptography's HKDFExpand object per label (measured; a new QUIC connection derives
# ten labels). The RFC 9001 / RFC 9369 Appendix A vectors pin both functions.


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """RFC 5869 §2.2 HKDF-Extract with SHA-256: HMAC-Hash(salt, IKM)."""
    return _hmac.digest(salt, ikm, "sha256")


def hkdf_label(label: bytes, length: int) -> bytes:
    """RFC 8446 §7.1 HkdfLabel with an empty context: the HKDF-Expand ``info``."""
    full = b"tls13 " + label
    return length.to_bytes(2, "big") + bytes((len(full),)) + full + b"\x00"


def hkdf_expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """RFC 8446 §7.1 HKDF-Expand-Label with an empty context, SHA-256 (length ≤ 32)."""
    if not 0 < length <= HASH_LENGTH:
        raise ValueError(f"HKDF-Expand-Label of {length} bytes: at most one SHA-256 block here")
    # RFC 5869 §2.3: T(1) = HMAC(PRK, info | 0x01); one block is all any label needs here
    return _hmac.digest(secret, hkdf_label(label, length) + b"\x01", "sha256")[:length]


def _info_or_raise(version: int) -> VersionInfo:
    info = version_info(version)
    if info is None:
        raise Unsupported(f"no Initial keys for QUIC version 0x{version:08x}", layer=LAYER)
    return info


def initial_secrets(version: int, dcid: bytes) -> tuple[bytes, bytes, bytes]:
    """(initial_secret, client_initial_secret, server_initial_secret), RFC 9001 §5.2."""
    initial = hkdf_extract(_info_or_raise(version).salt, dcid)
    return (
        initial,
        hkdf_expand_label(initial, b"client in", SECRET_LENGTH),
        hkdf_expand_label(initial, b"server in", SECRET_LENGTH),
    )


def keys_from_secret(version: int, secret: bytes) -> PacketKeys:
    """RFC 9001 §5.1: key, iv and hp from one Initial secret (labels per version)."""
    prefix = _info_or_raise(version).label_prefix
    key = hkdf_expand_label(secret, prefix + b" key", INITIAL_KEY_LENGTH)
    iv = hkdf_expand_label(secret, prefix + b" iv", IV_LENGTH)
    hp = hkdf_expand_label(secret, prefix + b" hp", INITIAL_KEY_LENGTH)
    return PacketKeys(
        version=version,
        secret=secret,
        key=key,
        iv=iv,
        hp=hp,
        _aead=AESGCM(key),
        # ECB keeps no state between blocks, so one encryptor serves every sample.
        _hp_ecb=Cipher(algorithms.AES(hp), modes.ECB()).encryptor(),
    )


def initial_keys(version: int, dcid: bytes, *, server: bool) -> PacketKeys:
    """The Initial keys of one direction, from the DCID of the client's first Initial.

    ``server=False`` gives the keys protecting the client's packets, ``server=True`` the
    server's. Raises :class:`Unsupported` for a version without a known salt.
    """
    initial = hkdf_extract(_info_or_raise(version).salt, dcid)
    label = b"server in" if server else b"client in"
    return keys_from_secret(version, hkdf_expand_label(initial, label, SECRET_LENGTH))


def decode_packet_number(truncated: int, pn_nbits: int, largest_pn: int | None) -> int:
    """RFC 9000 Appendix A.3: the full packet number closest to ``largest_pn + 1``."""
    expected = 0 if largest_pn is None else largest_pn + 1
    pn_win = 1 << pn_nbits
    pn_hwin = pn_win // 2
    candidate = (expected & ~(pn_win - 1)) | truncated
    if candidate <= expected - pn_hwin and candidate < (1 << 62) - pn_win:
        return candidate + pn_win
    if candidate > expected + pn_hwin and candidate >= pn_win:
        return candidate - pn_win
    return candidate


def remove_header_protection(packet: LongHeaderPacket, keys: PacketKeys) -> tuple[bytes, int, int]:
    """RFC 9001 §5.4.1: (unprotected header, truncated packet number, its length in bytes)."""
    data = packet.data
    pn_offset = packet.pn_offset
    sample_start = pn_offset + PN_MAX_LENGTH
    if sample_start + SAMPLE_LENGTH > len(data):
        raise Truncated(
            f"packet of {len(data)} bytes too short for the header protection sample",
            layer=LAYER,
            offset=packet.offset + len(data),
        )
    mask = keys.mask(data[sample_start : sample_start + SAMPLE_LENGTH])
    first = data[0] ^ (mask[0] & 0x0F)  # long header: the low 4 bits are protected
    pn_length = (first & 0x03) + 1
    truncated = int.from_bytes(data[pn_offset : pn_offset + pn_length], "big") ^ int.from_bytes(
        mask[1 : 1 + pn_length], "big"
    )
    header = bytes((first,)) + data[1:pn_offset] + truncated.to_bytes(pn_length, "big")
    return header, truncated, pn_length


def open_initial(
    packet: LongHeaderPacket, keys: PacketKeys, *, largest_pn: int | None
) -> tuple[int, bytes]:
    """Remove header protection and open the AEAD: (packet number, plaintext frames).

    ``largest_pn`` is the largest packet number seen so far in this packet number space
    and direction (None before the first). Raises :class:`DecryptError` when the tag does
    not verify and :class:`Truncated` when the packet is too short to be protected.
    """
    header, truncated, pn_length = remove_header_protection(packet, keys)
    pn = decode_packet_number(truncated, pn_length * 8, largest_pn)
    try:
        plaintext = keys.decrypt(pn, packet.data[len(header) :], header)
    except InvalidTag:
        raise DecryptError(
            f"Initial packet {pn}: AEAD tag does not verify", layer=LAYER, offset=packet.offset
        ) from None
    return pn, plaintext


def retry_integrity_tag(retry: RetryPacket, odcid: bytes) -> bytes | None:
    """RFC 9001 §5.8: the tag the Retry should carry given the client's Original DCID.

    None for versions whose Retry has no tag (drafts ≤ 24).
    """
    info = version_info(retry.version)
    if info is None or info.retry_key is None:
        return None
    key, nonce = info.retry_key
    pseudo = bytes((len(odcid),)) + odcid + retry.data[:-RETRY_INTEGRITY_TAG_LENGTH]
    return AESGCM(key).encrypt(nonce, b"", pseudo)


def verify_retry(retry: RetryPacket, odcid: bytes) -> bool | None:
    """Whether the Retry's tag matches ``odcid``; None where the version has no tag."""
    expected = retry_integrity_tag(retry, odcid)
    if expected is None:
        return retry.odcid == odcid if retry.odcid else None
    return expected == retry.integrity_tag
