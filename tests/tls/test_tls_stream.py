"""TlsStreamParser: records and handshake messages of one direction, fed in any pieces."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tlscap import DATA, corpus, realcap, tls_payloads

from alpnsniff.errors import DissectError, Malformed, Truncated, Unsupported
from alpnsniff.tls.stream import (
    MAX_HANDSHAKE_MESSAGE,
    AlertRecord,
    ChangeCipherSpec,
    EncryptedRecord,
    HandshakeMessage,
    SSLv2ClientHello,
    StreamError,
    TlsEvent,
    TlsStreamParser,
)

NONASCII = DATA / "openssl_tls12_alpn_nonascii.pcap"
# arkime__https2-301-get.pcap, frame 4 (tshark: tls.handshake.cipherspec)
SSLV2_CIPHER_SPECS = (
    0x39, 0x38, 0x35, 0x16, 0x13, 0x0A, 0x0700C0, 0x33, 0x32, 0x2F, 0x9A, 0x99, 0x96, 0x030080,
    0x05, 0x04, 0x010080, 0x15, 0x12, 0x09, 0x060040, 0x14, 0x11, 0x08, 0x06, 0x040080, 0x03,
    0x020080, 0xFF,
)  # fmt: skip


def _directions(path: Path) -> list[bytes]:
    return [data for _d, data in tls_payloads(path)]


def _shape(events: list[TlsEvent]) -> list[object]:
    """Events as plain values (a StreamError by its class, message and offset)."""
    out: list[object] = []
    for e in events:
        if isinstance(e, StreamError):
            out.append(("error", type(e.error).__name__, str(e.error), e.error.offset))
        elif isinstance(e, HandshakeMessage):
            out.append(("hs", e.msg_type, len(e.body), e.record_version))
        else:
            out.append(e)
    return out


def _feed_pieces(data: bytes, cuts: list[int]) -> list[TlsEvent]:
    parser = TlsStreamParser()
    events: list[TlsEvent] = []
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for a, b in itertools.pairwise(bounds):
        events += parser.feed(data[a:b])
    return events


def _feed_bytewise(data: bytes) -> list[TlsEvent]:
    parser = TlsStreamParser()
    events: list[TlsEvent] = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])
    return events


# ---------------------------------------------------------------- real directions


def test_tls12_full_handshake_both_directions() -> None:
    client, server = _directions(NONASCII)
    assert _shape(TlsStreamParser().feed(client)) == [
        ("hs", 1, 333, 0x0301),
        ("hs", 16, 33, 0x0303),
        ChangeCipherSpec(),
        EncryptedRecord(22, 40),  # Finished, encrypted after the CCS
        EncryptedRecord(21, 26),  # close_notify, encrypted
    ]
    assert _shape(TlsStreamParser().feed(server)) == [
        ("hs", 2, 73, 0x0303),
        ("hs", 11, 391, 0x0303),
        ("hs", 12, 112, 0x0303),
        ("hs", 14, 0, 0x0303),
        ("hs", 4, 182, 0x0303),
        ChangeCipherSpec(),
        EncryptedRecord(22, 40),
        EncryptedRecord(21, 26),
    ]


def test_client_hello_over_three_records_of_512() -> None:
    client, _server = _directions(realcap("openssl_tls12_ch_split_records_512.pcap"))
    assert client[:5] == b"\x16\x03\x01\x02\x00"  # the first of three records: 512 bytes
    events = TlsStreamParser().feed(client)
    assert _shape(events)[:3] == [
        ("hs", 1, 1215, 0x0301),
        ("hs", 16, 33, 0x0303),
        ChangeCipherSpec(),
    ]
    first = events[0]
    assert isinstance(first, HandshakeMessage)
    # The message is the three fragments joined: record headers removed.
    assert first.body == client[9:517] + client[522:1034] + client[1039:1234]


def test_client_hello_over_two_tcp_segments() -> None:
    client = _directions(realcap("chromium_nginx_h2_veth1500.pcap"))[0]
    parser = TlsStreamParser()
    assert parser.feed(client[:1448]) == []  # the first segment: an incomplete record
    assert parser.buffered == 1448
    events = parser.feed(client[1448:1956])
    assert _shape(events) == [("hs", 1, 1947, 0x0301)]
    assert parser.buffered == 0


def test_hello_retry_request_ccs_does_not_hide_the_second_hellos() -> None:
    """TLS 1.3 middlebox mode: a CCS goes before the 2nd ClientHello and after the HRR."""
    client, server = _directions(realcap("openssl_tls13_hrr_alpn.pcap"))
    assert _shape(TlsStreamParser().feed(client)) == [
        ("hs", 1, 308, 0x0301),
        ChangeCipherSpec(),
        ("hs", 1, 373, 0x0303),
        EncryptedRecord(23, 69),
        EncryptedRecord(23, 18),
        EncryptedRecord(23, 19),
    ]
    assert _shape(TlsStreamParser().feed(server))[:4] == [
        ("hs", 2, 84, 0x0303),
        ChangeCipherSpec(),
        ("hs", 2, 183, 0x0303),
        EncryptedRecord(23, 32),
    ]


def _records(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(type, version bytes, fragment) of each record of a TLS stream."""
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos + 3 : pos + 5], "big")
        out.append((data[pos], data[pos + 1 : pos + 3], data[pos + 5 : pos + 5 + n]))
        pos += 5 + n
    return out


def _refragment(data: bytes, size: int, which: set[int]) -> bytes:
    """The same stream with the records numbered in ``which`` cut into ``size``-byte records."""
    out = b""
    for i, (ct, ver, frag) in enumerate(_records(data)):
        pieces = [frag[j : j + size] for j in range(0, len(frag), size)] if i in which else [frag]
        for p in pieces:
            out += bytes([ct]) + ver + len(p).to_bytes(2, "big") + p
    return out


@pytest.mark.parametrize("size", [1, 7, 100, 200])
def test_second_client_hello_in_many_records_after_the_ccs(size: int) -> None:
    """The real HRR client stream with its 2nd ClientHello cut into small records."""
    client = _directions(realcap("openssl_tls13_hrr_alpn.pcap"))[0]
    assert [ct for ct, _, _ in _records(client)][:3] == [22, 20, 22]
    events = TlsStreamParser().feed(_refragment(client, size, {0, 2}))
    assert _shape(events) == _shape(TlsStreamParser().feed(client))


@pytest.mark.parametrize("size", [1, 3, 50, 512])
@pytest.mark.parametrize("index", [0, 1])
def test_plaintext_handshake_in_records_of_any_size(size: int, index: int) -> None:
    """The real TLS 1.2 flights, each plaintext handshake record cut into small records."""
    data = _directions(NONASCII)[index]
    kinds = [ct for ct, _, _ in _records(data)]
    plain = set(range(kinds.index(20)))  # the records before the ChangeCipherSpec
    events = TlsStreamParser().feed(_refragment(data, size, plain))
    assert _shape(events) == _shape(TlsStreamParser().feed(data))


@pytest.mark.parametrize(
    "name",
    [
        "openssl_tls1_2_alpn_mismatch_alert120.pcap",
        "openssl_tls1_3_alpn_mismatch_alert120.pcap",
        "gnutls_tls13_alpn_fatal_mismatch.pcap",
    ],
)
def test_alert_120_instead_of_server_hello(name: str) -> None:
    _client, server = _directions(realcap(name))
    assert TlsStreamParser().feed(server) == [AlertRecord(level=2, description=120)]


def test_sslv2_client_hello_then_tls_records() -> None:
    client, server = _directions(corpus("arkime__https2-301-get.pcap"))
    events = TlsStreamParser().feed(client)
    assert events[0] == SSLv2ClientHello(
        version=0x0301,
        cipher_specs=SSLV2_CIPHER_SPECS,
        challenge_len=32,
    )
    assert _shape(events[1:]) == [
        ("hs", 16, 258, 0x0301),
        ChangeCipherSpec(),
        EncryptedRecord(22, 36),
        EncryptedRecord(23, 137),
        EncryptedRecord(21, 22),
    ]
    assert _shape(TlsStreamParser().feed(server))[:3] == [
        ("hs", 2, 77, 0x0301),
        ("hs", 11, 3633, 0x0301),
        ("hs", 14, 0, 0x0301),
    ]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda h: b"\x80\x00" + h[2:], Malformed, "SSLv2 record of 0 bytes at tls.record+0"),
        (lambda h: h[:2] + b"\x04" + h[3:], Unsupported,
         "SSLv2 message type 4 (only CLIENT-HELLO is read) at tls.record+2"),
        (lambda h: h[:6] + b"\x58" + h[7:], Malformed, "cipher_spec_length 88 at tls.sslv2+3"),
        (lambda h: h[:8] + b"\x21" + h[9:], Malformed, "session_id_length 33 at tls.sslv2+5"),
        (lambda h: h[:10] + b"\x0f" + h[11:], Malformed, "challenge_length 15 at tls.sslv2+7"),
        (lambda h: h[:6] + b"\x5a" + h[7:], Truncated, "skip: need 32 bytes, 29 left at tls.sslv2+99"),
        (lambda h: h[:10] + b"\x10" + h[11:], Malformed,
         "16 bytes left over after SSLv2 CLIENT-HELLO at tls.sslv2+112"),
    ],
)  # fmt: skip
def test_broken_sslv2_client_hello(
    change: Callable[[bytes], bytes], error: type[DissectError], message: str
) -> None:
    client = _directions(corpus("arkime__https2-301-get.pcap"))[0]
    hello = client[: 2 + (((client[0] & 0x7F) << 8) | client[1])]
    events = TlsStreamParser().feed(change(hello))
    (last,) = events
    assert isinstance(last, StreamError) and type(last.error) is error
    assert str(last.error) == message


def test_set_encrypted_makes_handshake_records_opaque() -> None:
    _client, server = _directions(NONASCII)
    parser = TlsStreamParser()
    sh_record = 5 + 4 + 73
    assert _shape(parser.feed(server[:sh_record])) == [("hs", 2, 73, 0x0303)]
    parser.set_encrypted()
    assert parser.feed(server[sh_record : sh_record + 5 + 4 + 391]) == [EncryptedRecord(22, 395)]


# ---------------------------------------------------------------- any split, same events

_SAMPLES = [
    ("nonascii", 0),
    ("nonascii", 1),
    ("hrr", 0),
    ("hrr", 1),
    ("split512", 0),
    ("chromium", 0),
    ("sslv2", 0),
]


def _sample(name: str, index: int) -> bytes:
    paths = {
        "nonascii": lambda: NONASCII,
        "hrr": lambda: realcap("openssl_tls13_hrr_alpn.pcap"),
        "split512": lambda: realcap("openssl_tls12_ch_split_records_512.pcap"),
        "chromium": lambda: realcap("chromium_nginx_h2_veth1500.pcap"),
        "sslv2": lambda: corpus("arkime__https2-301-get.pcap"),
    }
    return _directions(paths[name]())[index]


@pytest.mark.parametrize(("name", "index"), _SAMPLES)
def test_whole_bytewise_and_random_splits_give_the_same_events(name: str, index: int) -> None:
    data = _sample(name, index)
    whole = _shape(TlsStreamParser().feed(data))
    assert len(whole) >= 3
    assert _shape(_feed_bytewise(data)) == whole
    rng = random.Random(index)
    for _ in range(20):
        cuts = [rng.randrange(len(data)) for _ in range(rng.randrange(1, 12))]
        assert _shape(_feed_pieces(data, cuts)) == whole


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=30), which=st.sampled_from(_SAMPLES))
def test_any_split_gives_the_same_events(cuts: list[int], which: tuple[str, int]) -> None:
    data = _sample(*which)
    assert _shape(_feed_pieces(data, cuts)) == _shape(TlsStreamParser().feed(data))


# ---------------------------------------------------------------- malformed streams


def _alert_stream() -> bytes:
    return _directions(realcap("openssl_tls1_2_alpn_mismatch_alert120.pcap"))[1]


@pytest.mark.parametrize(
    ("tail", "error", "message"),
    [
        (b"\x99", Malformed, "record type 153 at tls.record+7"),
        (b"\x16\x02", Malformed, "record version major 2 at tls.record+8"),
        (b"\x16\x03\x03\x48\x01", Malformed, "record of 18433 bytes (the maximum is 18432) at tls.record+10"),
        (b"\x16\x03\x03\x00\x00", Malformed, "empty handshake record (RFC 8446 §5.1) at tls.record+7"),
        (b"\x14\x03\x03\x00\x01\x02", Malformed, "ChangeCipherSpec body '02' at tls.record+12"),
        (b"\x16\x03\x03\x00\x04\x0b\xff\xff\xff", Unsupported,
         "handshake message type 11 of 16777215 bytes is over the 131396-byte limit "
         "(MAX_HANDSHAKE_MESSAGE) at tls.handshake+7"),
        (b"\x16\x03\x03\x00\x02\x02\x00\x14\x03\x03\x00\x01\x01", Malformed,
         "ChangeCipherSpec inside a fragmented handshake message at tls.record+14"),
    ],
)  # fmt: skip
def test_malformed_record_stops_the_parser(
    tail: bytes, error: type[DissectError], message: str
) -> None:
    data = _alert_stream() + tail
    parser = TlsStreamParser()
    events = parser.feed(data)
    assert events[0] == AlertRecord(2, 120)
    last = events[-1]
    assert isinstance(last, StreamError) and type(last.error) is error
    assert str(last.error) == message
    assert parser.stopped and parser.buffered == 0
    assert parser.feed(b"\x16\x03\x03\x00\x01\x00") == []
    assert _shape(_feed_bytewise(data)) == _shape(events)


def test_huge_message_is_refused_before_it_is_buffered() -> None:
    parser = TlsStreamParser(max_message=1000)
    record = b"\x16\x03\x03\x00\x04" + b"\x0b\x00\x03\xe9"  # a Certificate of 1001 bytes
    (err,) = parser.feed(record)
    assert isinstance(err, StreamError) and isinstance(err.error, Unsupported)
    assert parser.buffered == 0


def test_memory_stays_bounded_while_a_long_message_arrives() -> None:
    """A message under the limit is buffered until complete; nothing else is kept."""
    parser = TlsStreamParser(max_message=20000)
    assert parser.feed(b"\x16\x03\x03\x00\x04" + b"\x0b\x00\x4e\x20") == []  # 20000 bytes
    fragment = b"\x16\x03\x03\x03\xe8" + bytes(1000)
    for i in range(19):
        assert parser.feed(fragment) == []
        assert parser.buffered == 4 + 1000 * (i + 1)
    assert _shape(parser.feed(fragment)) == [("hs", 11, 20000, 0x0303)]
    assert parser.buffered == 0


def test_default_limit_is_the_largest_possible_client_hello() -> None:
    assert MAX_HANDSHAKE_MESSAGE == 2 + 32 + 1 + 32 + 2 + 65534 + 1 + 255 + 2 + 65535


def test_plaintext_alert_of_odd_length_is_opaque() -> None:
    assert TlsStreamParser().feed(b"\x15\x03\x03\x00\x03\x02\x28\x00") == [EncryptedRecord(21, 3)]
    assert TlsStreamParser().feed(b"\x15\x03\x03\x00\x04\x01\x00\x02\x28") == [
        AlertRecord(1, 0),
        AlertRecord(2, 40),
    ]


# ---------------------------------------------------------------- fuzz rule


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_any_bytes_give_events_or_one_final_stream_error(data: bytes, cuts: list[int]) -> None:
    events = _feed_pieces(data, cuts)
    errors = [i for i, e in enumerate(events) if isinstance(e, StreamError)]
    assert errors in ([], [len(events) - 1])
    assert _shape(events) == _shape(TlsStreamParser().feed(data))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_real_streams_never_raise(data: st.DataObject) -> None:
    stream = bytearray(_sample("nonascii", 1))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(stream) - 1))
        stream[i] = data.draw(st.integers(0, 255))
    parser = TlsStreamParser()
    events = parser.feed(bytes(stream))
    assert all(isinstance(e, TlsEvent.__args__) for e in events)  # type: ignore[attr-defined]
    assert parser.buffered <= 5 + 18432 + MAX_HANDSHAKE_MESSAGE
