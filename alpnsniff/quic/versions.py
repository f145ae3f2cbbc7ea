"""QUIC versions: names, Initial salts, key labels, long-header type bits, Retry keys.

What differs between the versions that carry a TLS ClientHello in their Initial packets:

* the Initial salt (RFC 9001 §5.2; each draft era, RFC 9369 §3.3.1, Google T05x);
* the HKDF labels ("quic key"… or "quicv2 key"…, RFC 9369 §3.3.2);
* the two long-header type bits (RFC 9369 §3.2 permutes them for v2);
* the Retry integrity key and nonce (RFC 9001 §5.8, RFC 9369 §3.3.3, drafts 25–32); drafts
  23–24 had no integrity tag but an Original DCID field instead.

The version → salt mapping follows Wireshark (``packet-quic.c``, ``quic_draft_version``),
which is what the project's truth files were made with: mvfst 0xfaceb001 is draft-22
based, 0xfaceb002/0xfaceb00e draft-27 based, and the reserved "forcing version
negotiation" versions 0x?a?a?a?a use the v1 salt.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF
VERSION_NEGOTIATION = 0x00000000

#: RFC 9000 §17.2: "In QUIC version 1, this value MUST NOT exceed 20 bytes." Every version
#: this module knows keeps that limit, so a longer length means "not one of ours".
MAX_CID_LENGTH = 20


class LongPacketType(enum.IntEnum):
    """The logical long-header packet type, independent of the version's bit layout."""

    INITIAL = 0
    ZERO_RTT = 1
    HANDSHAKE = 2
    RETRY = 3


#: Wire type bits (first byte & 0x30) >> 4 → logical type, RFC 9000 §17.2 and drafts.
_TYPES_V1 = (
    LongPacketType.INITIAL,
    LongPacketType.ZERO_RTT,
    LongPacketType.HANDSHAKE,
    LongPacketType.RETRY,
)
#: RFC 9369 §3.2: Initial 0b01, 0-RTT 0b10, Handshake 0b11, Retry 0b00.
_TYPES_V2 = (
    LongPacketType.RETRY,
    LongPacketType.INITIAL,
    LongPacketType.ZERO_RTT,
    LongPacketType.HANDSHAKE,
)

# Initial salts. RFC 9001 §5.2; RFC 9369 §3.3.1; draft-ietf-quic-tls-22/23/29 §5.2;
# Google T050/T051 as in Wireshark's packet-quic.c.
SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
SALT_V2 = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")
SALT_DRAFT_22 = bytes.fromhex("7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a")
SALT_DRAFT_23 = bytes.fromhex("c3eef712c72ebb5a11a7d2432bb46365bef9f502")
SALT_DRAFT_29 = bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899")
SALT_T050 = bytes.fromhex("7ff579e5acd072915580304c43a2367c60488310")
SALT_T051 = bytes.fromhex("7a4edef4e7ccee5fa4506c19124fc8ccda6e033d")

# Retry integrity (key, nonce). RFC 9001 §5.8; RFC 9369 §3.3.3; draft-ietf-quic-tls-25 and
# -29 §5.8 (draft-25 key serves drafts 25–28, draft-29 key serves 29–32).
RETRY_V1 = (
    bytes.fromhex("be0c690b9f66575a1d766b54e368c84e"),
    bytes.fromhex("461599d35d632bf2239825bb"),
)
RETRY_V2 = (
    bytes.fromhex("8fb4b01b56ac48e260fbcbcead7ccc92"),
    bytes.fromhex("d86969bc2d7c6d9990efb04a"),
)
RETRY_DRAFT_25 = (
    bytes.fromhex("4d32ecdb2a2133c841e4043df27d4430"),
    bytes.fromhex("4d1611d05513a552c587d575"),
)
RETRY_DRAFT_29 = (
    bytes.fromhex("ccce187ed09a09d05728155a6cb96be1"),
    bytes.fromhex("e54930f97f2136f0530a8c1c"),
)


class RetryFormat(enum.Enum):
    """How a Retry packet of this version is laid out after the connection IDs."""

    #: Retry Token then a 16-byte Retry Integrity Tag (draft-25 onwards, v1, v2).
    INTEGRITY_TAG = "integrity-tag"
    #: ODCID Length, Original Destination Connection ID, then the token (drafts ≤ 24).
    ODCID = "odcid"


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    """What this module knows about one QUIC version number."""

    #: The 32-bit version number as on the wire.
    version: int
    #: Display name: "1", "2", "draft-29", "mvfst-0e", "T051", or "0x…" for reserved ones.
    name: str
    #: Initial salt; the Initial keys of this version are derived from it.
    salt: bytes
    #: HKDF label prefix: b"quic" (v1, drafts, vendors) or b"quicv2" (RFC 9369).
    label_prefix: bytes
    #: Wire type bits → logical packet type.
    packet_types: tuple[LongPacketType, LongPacketType, LongPacketType, LongPacketType]
    #: Layout of the Retry packet.
    retry_format: RetryFormat
    #: (key, nonce) of the Retry Integrity Tag, or None where the version has no tag.
    retry_key: tuple[bytes, bytes] | None
    #: Google T050/T051 put Google QUIC frames (CRYPTO = 0x08, gQUIC ACK) in the
    #: IETF-style protected Initial; everything else uses RFC 9000 frames.
    google_frames: bool = False

    @property
    def initial_type_bits(self) -> int:
        """The first-byte bits (0x30 mask) that mark an Initial packet in this version."""
        return self.packet_types.index(LongPacketType.INITIAL) << 4


def _info(
    version: int,
    name: str,
    salt: bytes,
    retry: tuple[bytes, bytes] | None,
    *,
    v2: bool = False,
    google: bool = False,
) -> VersionInfo:
    return VersionInfo(
        version=version,
        name=name,
        salt=salt,
        label_prefix=b"quicv2" if v2 else b"quic",
        packet_types=_TYPES_V2 if v2 else _TYPES_V1,
        retry_format=RetryFormat.ODCID if retry is None else RetryFormat.INTEGRITY_TAG,
        retry_key=retry,
        google_frames=google,
    )


def _build_table() -> dict[int, VersionInfo]:
    table: dict[int, VersionInfo] = {
        QUIC_V1: _info(QUIC_V1, "1", SALT_V1, RETRY_V1),
        QUIC_V2: _info(QUIC_V2, "2", SALT_V2, RETRY_V2, v2=True),
        # Facebook mvfst: 0xfaceb001 follows draft-22, 0xfaceb002 and the experimental
        # 0xfaceb00e follow draft-27 (Wireshark's quic_draft_version).
        0xFACEB001: _info(0xFACEB001, "mvfst-01", SALT_DRAFT_22, None),
        0xFACEB002: _info(0xFACEB002, "mvfst-02", SALT_DRAFT_23, RETRY_DRAFT_25),
        0xFACEB00E: _info(0xFACEB00E, "mvfst-0e", SALT_DRAFT_23, RETRY_DRAFT_25),
        # Google QUIC with TLS 1.3 in CRYPTO frames (T050, T051): own salts, gQUIC frames.
        0x54303530: _info(0x54303530, "T050", SALT_T050, RETRY_DRAFT_25, google=True),
        0x54303531: _info(0x54303531, "T051", SALT_T051, RETRY_DRAFT_25, google=True),
    }
    for draft in range(23, 35):
        if draft <= 24:
            salt, retry = SALT_DRAFT_23, None
        elif draft <= 28:
            salt, retry = SALT_DRAFT_23, RETRY_DRAFT_25
        elif draft <= 32:
            salt, retry = SALT_DRAFT_29, RETRY_DRAFT_29
        else:  # draft-33 and draft-34 already use the RFC 9001 constants
            salt, retry = SALT_V1, RETRY_V1
        number = 0xFF000000 | draft
        table[number] = _info(number, f"draft-{draft}", salt, retry)
    return table


_TABLE = _build_table()

#: Every version number with a known Initial layout, in ascending order (for docs, tests).
KNOWN_VERSIONS: tuple[int, ...] = tuple(sorted(_TABLE))


def is_reserved_version(version: int) -> bool:
    """RFC 9000 §15: versions 0x?a?a?a?a are reserved to force version negotiation."""
    return version & 0x0F0F0F0F == 0x0A0A0A0A


def version_info(version: int) -> VersionInfo | None:
    """The facts about ``version``, or None when its Initial packets cannot be read.

    Reserved 0x?a?a?a?a versions get v1 rules, as in Wireshark: a client that sends one
    still protects its Initial like v1 (that is how tshark decrypts them).
    """
    info = _TABLE.get(version)
    if info is not None:
        return info
    if is_reserved_version(version):
        return _info(version, f"0x{version:08x}", SALT_V1, RETRY_V1)
    return None


def version_name(version: int) -> str:
    """ "1", "2", "draft-29", "mvfst-0e", "T051"; "0x%08x" for anything else (0 included)."""
    info = _TABLE.get(version)
    return info.name if info is not None else f"0x{version:08x}"


#: The version field of every version in the table, as it appears on the wire.
_KNOWN_WIRE = frozenset(version.to_bytes(4, "big") for version in _TABLE)
_VN_WIRE = bytes(4)


def looks_like_quic_long_header(datagram: bytes) -> bool:
    """Cheap test: could this UDP payload start with a QUIC long-header packet we can read?

    Checks the header-form and fixed bits, a version we know (or 0: Version
    Negotiation, which has no fixed bit), and connection ID lengths within RFC 9000's 20
    bytes that fit the datagram. It reads at most 7 + 20 bytes and never raises.
    """
    n = len(datagram)
    if n < 7:
        return False
    first = datagram[0]
    if first < 0x80:  # header form bit clear: short header or not QUIC
        return False
    wire_version = datagram[1:5]
    if wire_version == _VN_WIRE:
        # Version Negotiation: its other first-byte bits are arbitrary (RFC 9000 §17.2.1).
        # Then DCID, SCID and a non-empty list of 4-byte versions. RFC 8999 allows
        # 255-byte CIDs here, but a VN echoes the client's CIDs, which every version we
        # read keeps within 20 bytes; the tighter test keeps RTP and friends out.
        dcid_len = datagram[5]
        if dcid_len > MAX_CID_LENGTH or 7 + dcid_len > n:
            return False
        scid_len = datagram[6 + dcid_len]
        rest = n - 7 - dcid_len - scid_len
        return scid_len <= MAX_CID_LENGTH and rest >= 4 and rest % 4 == 0
    if first < 0xC0:  # fixed bit clear
        return False
    if wire_version not in _KNOWN_WIRE and not is_reserved_version(
        int.from_bytes(wire_version, "big")
    ):
        return False
    dcid_len = datagram[5]
    if dcid_len > MAX_CID_LENGTH or 7 + dcid_len > n:
        return False
    scid_len = datagram[6 + dcid_len]
    return scid_len <= MAX_CID_LENGTH and 7 + dcid_len + scid_len < n
