"""split_datagram: coalesced packets, padding, Retry, Version Negotiation, bad input."""

from __future__ import annotations

import pytest
import quic_rfc_vectors as v
from quic_capture import REALCAP, udp_datagrams

from alpnsniff.errors import Malformed, Truncated, Unsupported
from alpnsniff.quic.packets import (
    Junk,
    LongHeaderPacket,
    Padding,
    RetryPacket,
    ShortHeaderMarker,
    VersionNegotiationPacket,
    split_datagram,
)
from alpnsniff.quic.versions import QUIC_V2, LongPacketType
from alpnsniff.quic.wire import encode_varint, read_varint

needs_realcap = pytest.mark.skipif(not REALCAP.is_dir(), reason="../shared realcap not present")


def _datagram(name: str, frame: int) -> bytes:
    for d in udp_datagrams(REALCAP / name):
        if d.frame == frame:
            return d.payload
    raise LookupError(f"{name} has no UDP frame {frame}")


@needs_realcap
def test_aioquic_initial_then_zero_padding() -> None:
    packets = split_datagram(_datagram("aioquic_h3_v1.pcap", 1))
    assert len(packets) == 2
    initial, padding = packets
    assert isinstance(initial, LongHeaderPacket)
    assert initial.packet_type is LongPacketType.INITIAL
    assert (initial.offset, len(initial.data), initial.pn_offset) == (0, 514, 26)
    assert initial.dcid.hex() == "996887b8cf00d42e"
    assert initial.scid.hex() == "9c3e2c62be07a8d4"
    assert padding == Padding(offset=514, length=686)


@needs_realcap
def test_server_coalesces_initial_handshake_and_short_header() -> None:
    packets = split_datagram(_datagram("aioquic_h3_v1.pcap", 2))
    assert [type(p) for p in packets] == [LongHeaderPacket, LongHeaderPacket, ShortHeaderMarker]
    initial, handshake, short = packets
    assert isinstance(initial, LongHeaderPacket) and isinstance(handshake, LongHeaderPacket)
    assert initial.packet_type is LongPacketType.INITIAL
    assert handshake.packet_type is LongPacketType.HANDSHAKE
    assert (initial.offset, len(initial.data)) == (0, 177)
    assert (handshake.offset, len(handshake.data), handshake.pn_offset) == (177, 730, 25)
    assert handshake.token == b""
    assert short == ShortHeaderMarker(offset=907, length=293)


@needs_realcap
def test_retry_packet() -> None:
    packets = split_datagram(_datagram("aioquic_h3_v1_retry.pcap", 2))
    assert len(packets) == 1
    retry = packets[0]
    assert isinstance(retry, RetryPacket)
    assert retry.version == 1
    assert retry.dcid.hex() == "a4b07aff2939d387"
    assert retry.scid.hex() == "38dd62f4c9644b80"
    assert len(retry.token) == 61
    assert retry.integrity_tag.hex() == "86687f69105978a61d88f9d6791b1f8b"
    assert retry.odcid == b""
    # The client's next Initial carries the token and uses the Retry's SCID as DCID.
    initial = split_datagram(_datagram("aioquic_h3_v1_retry.pcap", 3))[0]
    assert isinstance(initial, LongHeaderPacket)
    assert (initial.dcid, initial.token) == (retry.scid, retry.token)


@needs_realcap
def test_version_negotiation_packet() -> None:
    first = split_datagram(_datagram("aioquic_h3_v2_incompatible_vn_to_v1.pcap", 1))[0]
    assert isinstance(first, LongHeaderPacket) and first.version == QUIC_V2
    packets = split_datagram(_datagram("aioquic_h3_v2_incompatible_vn_to_v1.pcap", 2))
    assert packets == [
        VersionNegotiationPacket(dcid=first.scid, scid=first.dcid, versions=(0x00000001,), offset=0)
    ]


def test_v2_type_bits_map_to_initial() -> None:
    packet = split_datagram(v.V2_CLIENT_PACKET)[0]
    assert isinstance(packet, LongHeaderPacket)
    assert packet.packet_type is LongPacketType.INITIAL  # wire bits 0b01 in v2
    retry = split_datagram(v.V2_RETRY)[0]
    assert isinstance(retry, RetryPacket)  # wire bits 0b00 in v2


def test_junk_after_a_good_packet_is_reported_not_raised() -> None:
    datagram = v.V1_SERVER_PACKET + bytes.fromhex("c0 00000001 30") + b"x" * 10
    packets = split_datagram(datagram)
    assert len(packets) == 2
    junk = packets[1]
    assert isinstance(junk, Junk)
    assert (junk.offset, junk.length, junk.reason) == (len(v.V1_SERVER_PACKET), 16, "malformed")
    assert "DCID length 48 > 20" in junk.detail


def test_unknown_version_after_a_good_packet_is_junk() -> None:
    datagram = v.V1_SERVER_PACKET + bytes.fromhex("c0 51303530 00 00 00") + b"x" * 20
    junk = split_datagram(datagram)[1]
    assert isinstance(junk, Junk) and junk.reason == "unsupported"


def _initial(length_field: int, body: bytes, dcid: bytes = b"\x01" * 8) -> bytes:
    return (
        bytes([0xC3, 0, 0, 0, 1, len(dcid)])
        + dcid
        + b"\x00\x00"  # SCID length 0, token length 0
        + encode_varint(length_field)
        + body
    )


@pytest.mark.parametrize(
    ("datagram", "error", "text"),
    [
        (b"\x00" * 30, Malformed, "zero bytes only"),
        (bytes.fromhex("c0000000"), Truncated, "shorter than 7 bytes"),
        (bytes.fromhex("c0 51303530 00 00") + bytes(30), Unsupported, "0x51303530"),
        (bytes.fromhex("c0 00000001 15") + bytes(40), Malformed, "DCID length 21 > 20"),
        (bytes.fromhex("c0 00000001 08") + bytes(8) + b"\x15" + bytes(40), Malformed, "SCID"),
        (bytes.fromhex("c0 00000001 08 0102"), Truncated, "DCID: needs 8 bytes, 2 left"),
        (_initial(100, bytes(50)), Truncated, "Length 100 but 50 bytes left"),
        (bytes.fromhex("c0 00000001 00 00 44"), Truncated, "varint: needs 2 bytes"),
        (bytes.fromhex("c0 00000001 00 00 05 aabb"), Truncated, "Initial token"),
        (bytes.fromhex("f0 00000001 00 00") + bytes(10), Truncated, "integrity tag"),
        (bytes.fromhex("80 00000000 00 00 0000000100"), Malformed, "not a non-zero multiple"),
        (bytes.fromhex("80 00000000 00 00"), Malformed, "0 bytes of versions"),
        (bytes.fromhex("80 00000000 04 0102"), Truncated, "VN DCID"),
    ],
)
def test_bad_first_packet_raises(datagram: bytes, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        split_datagram(datagram)


def test_short_header_first_is_a_marker() -> None:
    assert split_datagram(b"\x41" + bytes(30)) == [ShortHeaderMarker(offset=0, length=31)]


def test_exact_length_initial_and_trailing_zeros() -> None:
    datagram = _initial(21, bytes(21)) + bytes(7)
    packets = split_datagram(datagram)
    assert isinstance(packets[0], LongHeaderPacket)
    assert len(packets[0].data) == len(datagram) - 7
    assert packets[1] == Padding(offset=len(datagram) - 7, length=7)


@pytest.mark.parametrize(
    ("encoded", "value"),
    [
        ("25", 37),
        ("7bbd", 15293),
        ("9d7f3e7d", 494878333),
        ("c2197c5eff14e88c", 151288809941952652),  # RFC 9000 Appendix A.1 examples
    ],
)
def test_varint_rfc9000_examples(encoded: str, value: int) -> None:
    data = bytes.fromhex(encoded)
    assert read_varint(data, 0) == (value, len(data))
    assert encode_varint(value) == data


def test_draft_23_retry_carries_the_odcid_instead_of_a_tag() -> None:
    from alpnsniff.quic.initial import verify_retry

    odcid = bytes.fromhex("8394c8f03e515708")
    datagram = bytes.fromhex("f0 ff000017 00 08 f067a5502a4262b5 08") + odcid + b"token"
    [retry] = split_datagram(datagram)
    assert isinstance(retry, RetryPacket)
    assert (retry.odcid, retry.token, retry.integrity_tag) == (odcid, b"token", b"")
    assert verify_retry(retry, odcid) is True
    assert verify_retry(retry, bytes(8)) is False
    with pytest.raises(Truncated, match="Retry ODCID"):
        split_datagram(datagram[:20])
