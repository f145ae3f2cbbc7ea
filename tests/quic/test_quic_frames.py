"""Initial frame parsing: CRYPTO, PADDING, PING, ACK (+ECN), CONNECTION_CLOSE, others."""

from __future__ import annotations

import pytest
from quic_capture import REALCAP, udp_datagrams

from alpnsniff.errors import Malformed, Truncated
from alpnsniff.quic.frames import (
    ConnectionClose,
    CryptoFrame,
    parse_google_initial_frames,
    parse_initial_frames,
)
from alpnsniff.quic.initial import initial_keys, open_initial
from alpnsniff.quic.packets import LongHeaderPacket, split_datagram


def test_crypto_ping_padding_ack() -> None:
    plaintext = bytes.fromhex(
        "01"  # PING
        "0000"  # PADDING x2
        "06 4400 03 616263"  # CRYPTO offset 1024 length 3 "abc" (2-byte varint offset)
        "02 05 00 01 02 01 00"  # ACK largest 5, delay 0, 1 range, first 2, gap 1 len 0
        "03 07 10 00 00 00 01 02"  # ACK_ECN largest 7, delay 16, no range, ECT0 0 ECT1 1 CE 2
        "06 00 00"  # empty CRYPTO at 0
        "000000"
    )
    frames = parse_initial_frames(plaintext)
    assert frames.crypto == (
        CryptoFrame(offset=1024, data=b"abc"),
        CryptoFrame(offset=0, data=b""),
    )
    assert (frames.ping_count, frames.ack_count, frames.padding_bytes) == (1, 2, 5)
    assert frames.close is None


def test_transport_close_with_tls_alert() -> None:
    reason = b"No common ALPN protocols"
    plaintext = bytes.fromhex("1c 4178 06") + bytes([len(reason)]) + reason
    frames = parse_initial_frames(plaintext)
    assert frames.close == ConnectionClose(
        error_code=0x178, frame_type=0x06, reason=reason, application=False
    )
    assert frames.close.tls_alert == 120


def test_application_close_is_kept_and_flagged() -> None:
    frames = parse_initial_frames(bytes.fromhex("1d 0c 02 6869"))
    assert frames.close == ConnectionClose(
        error_code=0x0C, frame_type=None, reason=b"hi", application=True
    )
    assert frames.close.tls_alert is None


def test_non_crypto_error_has_no_alert() -> None:
    frames = parse_initial_frames(bytes.fromhex("1c 0a 00 00"))
    assert frames.close is not None and frames.close.tls_alert is None


@pytest.mark.parametrize(
    ("frame_type", "name"),
    [("08", "0x8"), ("0f", "0xf"), ("07", "0x7"), ("1e", "0x1e"), ("30", "0x30"), ("4020", "0x20")],
)
def test_frames_not_allowed_in_initial(frame_type: str, name: str) -> None:
    with pytest.raises(Malformed, match=f"frame type {name} not allowed in an Initial"):
        parse_initial_frames(bytes.fromhex("01" + frame_type + "000000"))


@pytest.mark.parametrize(
    ("plaintext", "text"),
    [
        ("06 00 05 6162", "CRYPTO data: needs 5 bytes, 2 left"),
        ("06 00", "varint: no bytes left"),
        ("02 05 00", "varint: no bytes left"),
        ("02 05 00 3f 00", "ranges cannot fit"),
        ("03 05 00 00 00 01", "varint: no bytes left"),
        ("1c 4178 06 10 6869", "CONNECTION_CLOSE reason"),
        ("1c 80", "varint: needs 4 bytes"),
    ],
)
def test_truncated_frames(plaintext: str, text: str) -> None:
    with pytest.raises(Truncated, match=text):
        parse_initial_frames(bytes.fromhex(plaintext))


def test_ack_first_range_beyond_largest() -> None:
    with pytest.raises(Malformed, match="First ACK Range exceeds"):
        parse_initial_frames(bytes.fromhex("02 05 00 00 06"))


def test_crypto_past_2_62() -> None:
    plaintext = bytes.fromhex("06 ffffffffffffffff 01 61")
    with pytest.raises(Malformed, match="ends past 2\\^62"):
        parse_initial_frames(plaintext)


def test_empty_payload_has_no_frames() -> None:
    frames = parse_initial_frames(b"")
    assert frames.crypto == () and frames.padding_bytes == 0


def test_google_frames_hand_built() -> None:
    plaintext = bytes.fromhex(
        "07"  # PING
        "64 0301 0000 02 01 00 02 01 00 00"  # ACK: 2-byte largest, 2 more 1-byte blocks
        "45 0005 0000 0001 01 05 00000001"  # ACK: 2-byte fields, 1 timestamp
        "08 00 03 616263"  # CRYPTO offset 0 length 3
        "02 00000010 0002 6869"  # CONNECTION_CLOSE 16 "hi"
        "00 ffff"  # PADDING to the end (gQUIC: the rest is padding whatever it holds)
    )
    frames = parse_google_initial_frames(plaintext)
    assert frames.crypto == (CryptoFrame(offset=0, data=b"abc"),)
    assert (frames.ping_count, frames.ack_count, frames.padding_bytes) == (1, 2, 3)
    assert frames.close == ConnectionClose(
        error_code=16, frame_type=None, reason=b"hi", application=False
    )


@pytest.mark.parametrize(
    ("plaintext", "error"),
    [("80 00", Malformed), ("06 00", Malformed), ("08 00 05 61", Truncated), ("40 01", Truncated)],
)
def test_google_frames_errors(plaintext: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_google_initial_frames(bytes.fromhex(plaintext))


@pytest.mark.skipif(not REALCAP.is_dir(), reason="../shared realcap not present")
def test_aioquic_alpn_mismatch_close_in_server_initial() -> None:
    datagrams = list(udp_datagrams(REALCAP / "aioquic_alpn_mismatch.pcap"))
    client = split_datagram(datagrams[0].payload)[0]
    server = split_datagram(datagrams[1].payload)[0]
    assert isinstance(client, LongHeaderPacket) and isinstance(server, LongHeaderPacket)
    keys = initial_keys(server.version, client.dcid, server=True)
    _, plaintext = open_initial(server, keys, largest_pn=None)
    frames = parse_initial_frames(plaintext)
    assert frames.crypto == ()
    assert frames.close == ConnectionClose(
        error_code=0x178, frame_type=0x06, reason=b"No common ALPN protocols", application=False
    )
    assert frames.close.tls_alert == 120
