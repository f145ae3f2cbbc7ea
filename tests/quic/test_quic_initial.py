"""Initial protection edge cases: packet number recovery, tampering, short packets."""

from __future__ import annotations

import pytest
import quic_rfc_vectors as v

from alpnsniff.errors import DissectError, Malformed, Truncated, Unsupported
from alpnsniff.quic.initial import (
    DecryptError,
    decode_packet_number,
    initial_keys,
    open_initial,
)
from alpnsniff.quic.packets import LongHeaderPacket, split_datagram


def _client_packet(data: bytes = v.V1_CLIENT_PACKET) -> LongHeaderPacket:
    packet = split_datagram(data)[0]
    assert isinstance(packet, LongHeaderPacket)
    return packet


@pytest.mark.parametrize(
    ("largest", "truncated", "nbits", "expected"),
    [
        (0xA82F30EA, 0x9B32, 16, 0xA82F9B32),  # RFC 9000 Appendix A.3
        (None, 2, 32, 2),
        (None, 0xFF, 8, 0xFF),
        (0xFF, 0x00, 8, 0x100),  # wraps forward past the window
        (0x1FE, 0xFF, 8, 0x1FF),
        (0x100, 0xFF, 8, 0xFF),  # late packet: just below the largest
        (0, 0x80, 8, 0x80),
    ],
)
def test_decode_packet_number(
    largest: int | None, truncated: int, nbits: int, expected: int
) -> None:
    assert decode_packet_number(truncated, nbits, largest) == expected


def test_largest_pn_changes_the_nonce_and_breaks_the_tag() -> None:
    # With a largest of 2^16 the 4-byte packet number 2 decodes to 2^32 + 2: wrong nonce.
    keys = initial_keys(1, v.DCID, server=False)
    assert open_initial(_client_packet(), keys, largest_pn=1)[0] == 2
    with pytest.raises(DecryptError):
        open_initial(_client_packet(), keys, largest_pn=(1 << 32) - 1)


@pytest.mark.parametrize("index", [0, 18, 30, 600, 1199])
def test_any_flipped_byte_fails_the_tag(index: int) -> None:
    data = bytearray(v.V1_CLIENT_PACKET)
    data[index] ^= 0x01
    keys = initial_keys(1, v.DCID, server=False)
    with pytest.raises(DecryptError) as info:
        open_initial(_client_packet(bytes(data)), keys, largest_pn=None)
    assert isinstance(info.value, Malformed)
    assert info.value.reason == "quic-decrypt-failed"


def test_wrong_dcid_fails_the_tag() -> None:
    keys = initial_keys(1, bytes(8), server=False)
    with pytest.raises(DecryptError, match="AEAD tag does not verify"):
        open_initial(_client_packet(), keys, largest_pn=None)


def test_v1_keys_do_not_open_v2_packet() -> None:
    keys = initial_keys(1, v.DCID, server=False)
    with pytest.raises(DecryptError):
        open_initial(_client_packet(v.V2_CLIENT_PACKET), keys, largest_pn=None)


def test_packet_too_short_for_the_sample() -> None:
    # An Initial whose Length leaves fewer than 4 + 16 bytes after the Length field.
    datagram = bytes.fromhex("c0 00000001 00 00 00 13") + bytes(0x13)
    packet = _client_packet(datagram)
    keys = initial_keys(1, b"", server=False)
    with pytest.raises(Truncated, match="too short for the header protection sample"):
        open_initial(packet, keys, largest_pn=None)


def test_unknown_version_has_no_keys() -> None:
    with pytest.raises(Unsupported, match="0x51303530"):
        initial_keys(0x51303530, v.DCID, server=False)
    assert issubclass(Unsupported, DissectError)


def test_reserved_version_uses_v1_keys() -> None:
    assert initial_keys(0x0A0A0A0A, v.DCID, server=False).key == v.V1_CLIENT_KEY
