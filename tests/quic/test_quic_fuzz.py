"""Fuzz rule: any bytes either parse or raise DissectError; the connection never raises.

Random datagrams rarely get past the header, so a second family of cases wraps arbitrary
frame bytes in correctly protected Initial packets (built here with ``cryptography``) to
reach the frame parser, the reassembler and the event logic behind the AEAD.
"""

from __future__ import annotations

import contextlib

import quic_rfc_vectors as v
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quic_build import protect_initial

from alpnsniff.errors import DissectError
from alpnsniff.quic.connection import QuicConnection, QuicSkipped
from alpnsniff.quic.frames import parse_google_initial_frames, parse_initial_frames
from alpnsniff.quic.packets import split_datagram
from alpnsniff.quic.versions import KNOWN_VERSIONS, QUIC_V1
from alpnsniff.quic.wire import encode_varint

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_protect_initial_round_trips_the_rfc_packet() -> None:
    payload = v.CLIENT_CRYPTO_FRAME + bytes(v.CLIENT_PAYLOAD_LENGTH - 245)
    built = protect_initial(QUIC_V1, v.DCID, v.DCID, b"", 2, payload, server=False)
    assert built == v.V1_CLIENT_PACKET


@given(st.binary(max_size=1500))
@FUZZ
def test_split_datagram_parses_or_raises_dissect_error(data: bytes) -> None:
    with contextlib.suppress(DissectError):
        split_datagram(data)


@given(st.binary(max_size=600))
@FUZZ
def test_frame_parsers_parse_or_raise_dissect_error(data: bytes) -> None:
    for parse in (parse_initial_frames, parse_google_initial_frames):
        with contextlib.suppress(DissectError):
            parse(data)


long_header_prefix = st.builds(
    lambda first, version, rest: bytes([first]) + version.to_bytes(4, "big") + rest,
    st.integers(0x80, 0xFF),
    st.sampled_from((0, *KNOWN_VERSIONS, 0x1A2A3A4A, 0x51303530)),
    st.binary(max_size=300),
)


@given(st.lists(st.tuples(st.booleans(), st.one_of(st.binary(max_size=300), long_header_prefix))))
@FUZZ
def test_connection_never_raises_on_random_datagrams(
    datagrams: list[tuple[bool, bytes]],
) -> None:
    conn = QuicConnection()
    for ts, (from_client, data) in enumerate(datagrams):
        for event in conn.receive_datagram(data, from_client=from_client, ts_ns=ts):
            if isinstance(event, QuicSkipped):
                assert event.reason


frame_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.one_of(
            st.just(b"\x01"),
            st.just(b"\x00" * 8),
            st.builds(
                lambda off, data: b"\x06" + encode_varint(off) + encode_varint(len(data)) + data,
                st.integers(0, 3000),
                st.binary(max_size=300),
            ),
            st.builds(
                lambda data: b"\x06\x00" + encode_varint(len(data) + 4) + b"\x01\x00\x00" + data,
                st.binary(max_size=100),
            ),
            st.just(bytes.fromhex("02 05 00 01 02 01 00")),
            st.just(bytes.fromhex("1c 4178 06 02 6869")),
            st.binary(max_size=10),
        ),
        max_size=12,
    ).map(b"".join),
)


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from((QUIC_V1, 0x6B3343CF, 0xFF00001D, 0xFACEB002, 0x54303531)),
            st.integers(0, 50),
            frame_bytes,
        ),
        max_size=8,
    )
)
@FUZZ
def test_connection_never_raises_behind_a_valid_aead(
    packets: list[tuple[bool, int, int, bytes]],
) -> None:
    conn = QuicConnection()
    odcid = b"\x11" * 8
    # The client's first Initial fixes the keys; then anything goes, from either side.
    first = protect_initial(QUIC_V1, odcid, odcid, b"c", 0, b"\x01", server=False)
    assert conn.receive_datagram(first, from_client=True, ts_ns=0) == []
    for ts, (from_client, version, pn, payload) in enumerate(packets, 1):
        datagram = protect_initial(version, odcid, odcid, b"s", pn, payload, server=not from_client)
        for event in conn.receive_datagram(datagram, from_client=from_client, ts_ns=ts):
            # Every packet here is protected with the attempt's keys: all of them open.
            assert not (isinstance(event, QuicSkipped) and event.reason == "quic-decrypt-failed")
