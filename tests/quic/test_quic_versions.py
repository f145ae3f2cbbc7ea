"""Version table, names, and the cheap long-header test against real UDP payloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import quic_rfc_vectors as v
from quic_capture import CORPUS, REALCAP, index_rows, udp_datagrams

from alpnsniff.quic.packets import (
    LongHeaderPacket,
    RetryPacket,
    VersionNegotiationPacket,
    split_datagram,
)
from alpnsniff.quic.versions import (
    KNOWN_VERSIONS,
    QUIC_V1,
    QUIC_V2,
    SALT_DRAFT_22,
    SALT_DRAFT_23,
    SALT_DRAFT_29,
    SALT_T051,
    SALT_V1,
    SALT_V2,
    LongPacketType,
    RetryFormat,
    looks_like_quic_long_header,
    version_info,
    version_name,
)

needs_shared = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared corpus not present")


@pytest.mark.parametrize(
    ("version", "name"),
    [
        (0x00000001, "1"),
        (0x6B3343CF, "2"),
        (0xFF000017, "draft-23"),
        (0xFF00001D, "draft-29"),
        (0xFF000022, "draft-34"),
        (0xFACEB001, "mvfst-01"),
        (0xFACEB00E, "mvfst-0e"),
        (0x54303531, "T051"),
        (0x00000000, "0x00000000"),
        (0x1A2A3A4A, "0x1a2a3a4a"),
        (0x51303530, "0x51303530"),
        (0xFF000016, "0xff000016"),
    ],
)
def test_version_name(version: int, name: str) -> None:
    assert version_name(version) == name


@pytest.mark.parametrize(
    ("version", "salt", "retry_format"),
    [
        (QUIC_V1, SALT_V1, RetryFormat.INTEGRITY_TAG),
        (QUIC_V2, SALT_V2, RetryFormat.INTEGRITY_TAG),
        (0xFF000017, SALT_DRAFT_23, RetryFormat.ODCID),  # draft-23: no Retry tag yet
        (0xFF000018, SALT_DRAFT_23, RetryFormat.ODCID),
        (0xFF000019, SALT_DRAFT_23, RetryFormat.INTEGRITY_TAG),  # draft-25 brought the tag
        (0xFF00001C, SALT_DRAFT_23, RetryFormat.INTEGRITY_TAG),
        (0xFF00001D, SALT_DRAFT_29, RetryFormat.INTEGRITY_TAG),
        (0xFF000020, SALT_DRAFT_29, RetryFormat.INTEGRITY_TAG),
        (0xFF000021, SALT_V1, RetryFormat.INTEGRITY_TAG),
        (0xFF000022, SALT_V1, RetryFormat.INTEGRITY_TAG),
        (0xFACEB001, SALT_DRAFT_22, RetryFormat.ODCID),
        (0xFACEB002, SALT_DRAFT_23, RetryFormat.INTEGRITY_TAG),
        (0x54303531, SALT_T051, RetryFormat.INTEGRITY_TAG),
        (0x0A0A0A0A, SALT_V1, RetryFormat.INTEGRITY_TAG),  # reserved: v1 rules (Wireshark)
    ],
)
def test_version_salt_eras(version: int, salt: bytes, retry_format: RetryFormat) -> None:
    info = version_info(version)
    assert info is not None
    assert info.salt == salt
    assert info.retry_format is retry_format


def test_unknown_versions_have_no_info() -> None:
    for version in (0, 0xFF000016, 0xFF000023, 0x51303530, 0x51303436, 0xDEADBEEF):
        assert version_info(version) is None


def test_v2_long_header_types_and_labels() -> None:
    v2 = version_info(QUIC_V2)
    v1 = version_info(QUIC_V1)
    assert v2 is not None and v1 is not None
    assert v2.packet_types == (
        LongPacketType.RETRY,
        LongPacketType.INITIAL,
        LongPacketType.ZERO_RTT,
        LongPacketType.HANDSHAKE,
    )
    assert v2.initial_type_bits == 0x10 and v1.initial_type_bits == 0x00
    assert (v1.label_prefix, v2.label_prefix) == (b"quic", b"quicv2")


def test_known_versions_cover_drafts_23_to_34() -> None:
    drafts = [x & 0xFF for x in KNOWN_VERSIONS if x >> 8 == 0xFF0000]
    assert drafts == list(range(23, 35))


def test_looks_like_rfc_packets_and_vn() -> None:
    assert looks_like_quic_long_header(v.V1_CLIENT_PACKET)
    assert looks_like_quic_long_header(v.V2_CLIENT_PACKET)
    assert looks_like_quic_long_header(v.V1_SERVER_PACKET)
    vn = bytes.fromhex("80 00000000 08 0001020304050607 00 00000001 ff00001d".replace(" ", ""))
    assert looks_like_quic_long_header(vn)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc0\x00\x00\x00",
        v.V1_CLIENT_PACKET[:6],
        bytes([0x40]) + v.V1_CLIENT_PACKET[1:],  # short header (form bit clear)
        bytes([0x80]) + v.V1_CLIENT_PACKET[1:],  # fixed bit clear
        bytes([0xC0]) + (0x51303530).to_bytes(4, "big") + v.V1_CLIENT_PACKET[5:],  # Q050
        bytes.fromhex("c0 00000001 15") + bytes(40),  # DCID of 21 bytes
        bytes.fromhex("c0 00000001 08") + bytes(8) + b"\x15" + bytes(40),  # SCID of 21
        bytes.fromhex("c0 00000001 08") + bytes(8),  # no SCID length
        bytes.fromhex("80 00000000 08 0001020304050607 00 000001"),  # VN: 3 bytes of versions
        bytes.fromhex("80 00000000 08 0001020304050607 00"),  # VN without versions
    ],
)
def test_looks_like_rejects(payload: bytes) -> None:
    assert not looks_like_quic_long_header(payload)


def _corpus_files_without_quic() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return [
        CORPUS / "pcaps" / row["file"]
        for row in index_rows()
        if not row["quic_versions"] and "quic" not in row["file"].lower()
    ]


@needs_shared
def test_no_false_positive_on_corpus_udp() -> None:
    """DNS, STUN, DTLS, RTP, mDNS, NTP, gQUIC…: no UDP payload of a capture without IETF
    QUIC passes the test (checked once against tshark's frame.protocols for all 10k UDP
    datagrams of the corpus: no false positive either)."""
    seen = 0
    for path in _corpus_files_without_quic():
        for d in udp_datagrams(path):
            seen += 1
            assert not looks_like_quic_long_header(d.payload), (path.name, d.frame)
    assert seen > 2000  # the test really looked at a lot of non-QUIC UDP


@needs_shared
def test_every_corpus_hit_parses_as_a_long_header() -> None:
    """Where the cheap test says yes, the full parser agrees (first packet parses)."""
    hits = 0
    for row in index_rows():
        if not row["quic_versions"]:
            continue
        for d in udp_datagrams(CORPUS / "pcaps" / row["file"]):
            if looks_like_quic_long_header(d.payload):
                hits += 1
                first = split_datagram(d.payload)[0]
                assert isinstance(
                    first, LongHeaderPacket | RetryPacket | VersionNegotiationPacket
                ), (row["file"], d.frame)
    assert hits >= 275  # 275 long-header datagrams in the QUIC captures when written


@pytest.mark.skipif(not REALCAP.is_dir(), reason="../shared realcap not present")
def test_first_datagram_of_every_realcap_quic_flow_looks_like_quic() -> None:
    for path in sorted(REALCAP.glob("*quic*.pcap")):
        first = next(iter(udp_datagrams(path)))
        assert looks_like_quic_long_header(first.payload), path.name


def test_looks_like_vn_whatever_its_unused_bits() -> None:
    for first in (0x80, 0xC0, 0xFF, 0xAA):
        vn = bytes([first]) + bytes.fromhex("00000000 00 04 01020304 6b3343cf 00000001")
        assert looks_like_quic_long_header(vn), hex(first)
