"""QuicConnection on real captures: ours (realcap) and third-party ones (corpus vs tshark)."""

from __future__ import annotations

from collections import Counter

import pytest
import quic_rfc_vectors as v
from quic_build import crypto_frame, protect_initial
from quic_capture import (
    CORPUS,
    REALCAP,
    FlowEvent,
    alpn_hex,
    index_rows,
    run_quic,
    truth_rows,
    udp_datagrams,
)

from alpnsniff.quic.connection import (
    SKIP_NO_CLIENT_INITIAL,
    ClientHelloEvent,
    ConnectionCloseEvent,
    QuicConnection,
    QuicSkipped,
    RetryEvent,
    ServerHelloEvent,
    VersionNegotiationEvent,
)
from alpnsniff.quic.versions import QUIC_V1, QUIC_V2
from alpnsniff.tls.hello import parse_client_hello  # the real consumer of these bytes

needs_realcap = pytest.mark.skipif(not REALCAP.is_dir(), reason="../shared realcap not present")
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared corpus not present")


def _alpn(message: bytes) -> str:
    """ALPN list as truth.tsv writes it, through the TLS module when it is there."""
    assert message[0] == 1
    assert int.from_bytes(message[1:4], "big") == len(message) - 4
    local = alpn_hex(message)
    assert ",".join(p.hex() for p in parse_client_hello(message[4:]).alpn) == local
    return local


def _summary(events: list[FlowEvent]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for fe in events:
        e = fe.event
        if isinstance(e, ClientHelloEvent):
            out.append((fe.frame, "CH", e.version, e.attempt, len(e.message), _alpn(e.message)))
        elif isinstance(e, ServerHelloEvent):
            out.append((fe.frame, "SH", e.version, e.attempt, len(e.message)))
        elif isinstance(e, RetryEvent):
            out.append((fe.frame, "Retry", e.integrity_ok, len(e.token)))
        elif isinstance(e, VersionNegotiationEvent):
            out.append((fe.frame, "VN", e.versions))
        elif isinstance(e, ConnectionCloseEvent):
            out.append((fe.frame, "CC", e.from_client, e.close.error_code, e.close.tls_alert))
        else:
            out.append((fe.frame, "skip", e.reason))
    return out


H3 = "6833"

REALCAP_EXPECTED: dict[str, list[tuple[object, ...]]] = {
    "aioquic_h3_v1.pcap": [(1, "CH", QUIC_V1, 1, 466, H3), (2, "SH", QUIC_V1, 1, 123)],
    "aioquic_h3_v2.pcap": [(1, "CH", QUIC_V2, 1, 466, H3), (2, "SH", QUIC_V2, 1, 123)],
    # 1670-byte ClientHello in two Initial packets (CRYPTO 0+1152, 1152+518).
    "aioquic_h3_v1_bigCH_2initials.pcap": [
        (2, "CH", QUIC_V1, 1, 1670, H3),
        (4, "SH", QUIC_V1, 1, 123),
    ],
    # Retry: integrity tag verified against the first DCID; aioquic builds a new
    # ClientHello (new random and key share) for attempt 2, keyed by the Retry's SCID.
    "aioquic_h3_v1_retry.pcap": [
        (1, "CH", QUIC_V1, 1, 466, H3),
        (2, "Retry", True, 61),
        (3, "CH", QUIC_V1, 2, 466, H3),
        (4, "SH", QUIC_V1, 2, 123),
    ],
    # Compatible VN: the server answers in v2 with keys from the same DCID; aioquic's
    # next client Initial (v2 header, v1 keys) opens too and carries no new CRYPTO.
    "aioquic_h3_v1_to_v2_compatible_vn.pcap": [
        (1, "CH", QUIC_V1, 1, 470, H3),
        (2, "SH", QUIC_V2, 1, 123),
    ],
    "aioquic_h3_v2_incompatible_vn_to_v1.pcap": [
        (1, "CH", QUIC_V2, 1, 470, H3),
        (2, "VN", (QUIC_V1,)),
        (3, "CH", QUIC_V1, 2, 470, H3),
        (4, "SH", QUIC_V1, 2, 123),
    ],
    "aioquic_alpn_mismatch.pcap": [
        (1, "CH", QUIC_V1, 1, 476, "6833,68332d3239"),
        (2, "CC", False, 0x178, 120),
    ],
    "aioquic_custom_alpn_doq.pcap": [
        (1, "CH", QUIC_V1, 1, 485, "6833,646f71,68712d696e7465726f70"),
        (2, "SH", QUIC_V1, 1, 123),
    ],
    # Chromium: CH over two Initials with shuffled, split CRYPTO frames, PING, PADDING.
    "chromium_aioquic_h3_lo.pcap": [(2, "CH", QUIC_V1, 1, 1887, H3), (5, "SH", QUIC_V1, 1, 90)],
    "chromium_aioquic_h3_veth1500.pcap": [
        (2, "CH", QUIC_V1, 1, 1944, H3),
        (5, "SH", QUIC_V1, 1, 90),
    ],
    "chromium_aioquic_h3_quicv2_lo.pcap": [
        (2, "CH", QUIC_V2, 1, 1921, H3),
        (5, "SH", QUIC_V2, 1, 90),
    ],
    "ipv6_openssl_tls12_and_aioquic_h3.pcap": [
        (17, "CH", QUIC_V1, 1, 466, H3),
        (18, "SH", QUIC_V1, 1, 123),
    ],
}


@needs_realcap
@pytest.mark.parametrize("name", sorted(REALCAP_EXPECTED))
def test_realcap(name: str) -> None:
    assert _summary(run_quic(REALCAP / name)) == REALCAP_EXPECTED[name]


@needs_realcap
def test_each_datagram_twice_emits_each_event_once() -> None:
    conn = QuicConnection()
    seen: list[str] = []
    client = None
    for d in udp_datagrams(REALCAP / "chromium_aioquic_h3_lo.pcap"):
        client = client or (d.src, d.sport)
        for _ in range(2):
            for e in conn.receive_datagram(
                d.payload, from_client=(d.src, d.sport) == client, ts_ns=d.ts_ns
            ):
                seen.append(type(e).__name__)
    assert seen == ["ClientHelloEvent", "ServerHelloEvent"]


@needs_realcap
def test_datagrams_in_reverse_order_within_the_client_flight() -> None:
    """Chromium's second Initial before its first: the CH completes on the first."""
    datagrams = [d for d in udp_datagrams(REALCAP / "chromium_aioquic_h3_lo.pcap")]
    conn = QuicConnection()
    events = conn.receive_datagram(datagrams[1].payload, from_client=True, ts_ns=2)
    assert events == []
    events = conn.receive_datagram(datagrams[0].payload, from_client=True, ts_ns=1)
    assert len(events) == 1 and isinstance(events[0], ClientHelloEvent)
    assert (events[0].ts_ns, len(events[0].message)) == (1, 1887)


def test_server_initial_before_any_client_initial_is_skipped() -> None:
    conn = QuicConnection()
    events = conn.receive_datagram(v.V1_SERVER_PACKET, from_client=False, ts_ns=5)
    assert events == [
        QuicSkipped(reason=SKIP_NO_CLIENT_INITIAL, detail="", from_client=False, ts_ns=5)
    ]


def test_rfc_client_then_server() -> None:
    conn = QuicConnection()
    [ch] = conn.receive_datagram(v.V1_CLIENT_PACKET, from_client=True, ts_ns=1)
    assert isinstance(ch, ClientHelloEvent)
    assert ch.message == v.CLIENT_CRYPTO_FRAME[4:]
    assert (ch.original_dcid, ch.scid, ch.attempt, ch.version) == (v.DCID, b"", 1, QUIC_V1)
    [sh] = conn.receive_datagram(v.V1_SERVER_PACKET, from_client=False, ts_ns=2)
    assert isinstance(sh, ServerHelloEvent)
    assert sh.message == v.SERVER_PAYLOAD[9:]  # after ACK (5 bytes) and CRYPTO header (4)
    assert sh.scid.hex() == "f067a5502a4262b5"
    assert conn.original_dcid == v.DCID


def test_garbage_gives_a_skip_event() -> None:
    conn = QuicConnection()
    [skip] = conn.receive_datagram(b"\xc0\x00\x00\x00\x01\x30", from_client=True, ts_ns=0)
    assert isinstance(skip, QuicSkipped) and skip.reason == "truncated"
    tampered = bytearray(v.V1_CLIENT_PACKET)
    tampered[-1] ^= 1
    [skip] = conn.receive_datagram(bytes(tampered), from_client=True, ts_ns=0)
    assert isinstance(skip, QuicSkipped) and skip.reason == "quic-decrypt-failed"


# ------------------------------------------------------------------ corpus vs tshark

#: Captures where tshark's truth is known to miss what is there (truth README caveat 4):
#: a quiche client forcing version negotiation with a reserved version, then a Retry:
#: three distinct ClientHellos (different randoms), of which tshark decrypts none.
TRUTH_MISSES = {"nDPI__quic-forcing-vn-with-data.pcapng"}


def _quic_corpus_files(*, with_truth_misses: bool = True) -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        row["file"]
        for row in index_rows()
        if (int(row["n_quic_ch"] or 0) > 0 or "quic" in row["file"].lower())
        and (with_truth_misses or row["file"] not in TRUTH_MISSES)
    )


@needs_corpus
@pytest.mark.parametrize("name", _quic_corpus_files(with_truth_misses=False))
def test_corpus_client_and_server_hellos_match_tshark(name: str) -> None:
    events = run_quic(CORPUS / "pcaps" / name)
    # Keyed by the frame that completes the message: tshark reports a reassembled
    # hello in its last frame, and so do we (the datagram whose CRYPTO completed it).
    mine_ch = Counter(
        (fe.frame, fe.client[0], fe.client[1], fe.server[0], fe.server[1], _alpn(fe.event.message))
        for fe in events
        if isinstance(fe.event, ClientHelloEvent)
    )
    mine_sh = Counter(
        (fe.frame, fe.server[0], fe.server[1], fe.client[0], fe.client[1])
        for fe in events
        if isinstance(fe.event, ServerHelloEvent)
    )
    rows = [r for r in truth_rows(name.rsplit(".", 1)[0]) if r["proto"] == "quic"]
    truth_ch = Counter(
        (int(r["frame"]), r["src"], int(r["sport"]), r["dst"], int(r["dport"]), r["alpn_hex"])
        for r in rows
        if r["hs_type"] == "1"
    )
    truth_sh = Counter(
        (int(r["frame"]), r["src"], int(r["sport"]), r["dst"], int(r["dport"]))
        for r in rows
        if r["hs_type"] == "2"
    )
    assert mine_ch == truth_ch
    assert mine_sh == truth_sh
    # Nothing in these captures should fail to decrypt where tshark succeeded.
    assert not [
        fe for fe in events if isinstance(fe.event, QuicSkipped) and "decrypt" in fe.event.reason
    ]


@needs_corpus
def test_corpus_forcing_vn_with_data_three_attempts() -> None:
    events = run_quic(CORPUS / "pcaps" / "nDPI__quic-forcing-vn-with-data.pcapng")
    quiche_alpn = (
        "6833,68332d3239,68332d3238,68332d3237,68712d696e7465726f70,"
        "68712d3239,68712d3238,68712d3237,687474702f302e39"
    )
    assert _summary(events) == [
        (1, "CH", 0xBABABABA, 1, 283, quiche_alpn),  # reserved version, v1 keys
        (2, "VN", (QUIC_V1, 0xFF00001D, 0xFF00001C, 0xFF00001B)),
        (3, "CH", QUIC_V1, 2, 283, quiche_alpn),
        (4, "Retry", True, 38),
        (5, "CH", QUIC_V1, 3, 283, quiche_alpn),
        (6, "SH", QUIC_V1, 3, 90),
    ]


def _total_quic_ch() -> int:
    return sum(int(r["n_quic_ch"] or 0) for r in index_rows()) if CORPUS.is_dir() else 0


@needs_corpus
def test_corpus_total_quic_client_hellos() -> None:
    """Every QUIC ClientHello tshark reports in the corpus (69 when written), plus the 3
    of the truth miss above."""
    total = 0
    for name in _quic_corpus_files():
        total += sum(
            isinstance(fe.event, ClientHelloEvent) for fe in run_quic(CORPUS / "pcaps" / name)
        )
    assert total == _total_quic_ch() + 3


@needs_corpus
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "zeek__ppp_quic-interop-retry.pcap",
            [(5, "CH", QUIC_V1, 1, 279, "68712d696e7465726f70"), (6, "Retry", True, 98)],
        ),
        (
            "nDPI__doq_adguard.pcapng",
            [(1, "CH", 0xFF00001D, 1, 512, "646f712d693030"), (2, "Retry", True, 96)],
        ),
    ],
)
def test_corpus_same_client_hello_after_retry_is_not_emitted_twice(
    name: str, expected: list[tuple[object, ...]]
) -> None:
    summary = _summary(run_quic(CORPUS / "pcaps" / name))
    assert summary[:2] == expected
    assert [s[1] for s in summary] == ["CH", "Retry", "SH"]  # the resent CH is identical
    assert summary[2][3] == 2  # the SH opened with keys from the Retry's SCID


@needs_corpus
def test_corpus_t051_google_frames() -> None:
    assert _summary(run_quic(CORPUS / "pcaps" / "nDPI__quic_t51.pcap"))[:2] == [
        (1, "CH", 0x54303531, 1, 307, "68332d54303531"),
        (2, "SH", 0x54303531, 1, 90),
    ]


# ------------------------------------------------------------------ hand-built flows

ODCID = bytes.fromhex("0102030405060708")
HELLO = bytes([1, 0, 0, 5]) + b"hello"


def _client(payload: bytes, *, odcid: bytes = ODCID, pn: int = 0, version: int = QUIC_V1) -> bytes:
    return protect_initial(version, odcid, odcid, b"c", pn, payload, server=False)


def test_new_connection_on_the_same_five_tuple_starts_attempt_two() -> None:
    conn = QuicConnection()
    [first] = conn.receive_datagram(_client(crypto_frame(0, HELLO)), from_client=True, ts_ns=1)
    other = bytes(range(20, 28))
    second_hello = bytes([1, 0, 0, 3]) + b"bye"
    [second] = conn.receive_datagram(
        _client(crypto_frame(0, second_hello), odcid=other), from_client=True, ts_ns=2
    )
    assert isinstance(first, ClientHelloEvent) and isinstance(second, ClientHelloEvent)
    assert (first.attempt, first.original_dcid, first.message) == (1, ODCID, HELLO)
    assert (second.attempt, second.original_dcid, second.message) == (2, other, second_hello)
    assert conn.original_dcid == other


def test_client_initial_under_server_chosen_dcid_keeps_the_original_keys() -> None:
    conn = QuicConnection()
    conn.receive_datagram(_client(crypto_frame(0, HELLO[:4])), from_client=True, ts_ns=1)
    later = protect_initial(
        QUIC_V1, ODCID, b"\x99" * 8, b"c", 1, crypto_frame(4, HELLO[4:]), server=False
    )
    [ch] = conn.receive_datagram(later, from_client=True, ts_ns=2)
    assert isinstance(ch, ClientHelloEvent) and ch.attempt == 1 and ch.message == HELLO


def test_not_a_client_hello_is_reported_once() -> None:
    conn = QuicConnection()
    finished = bytes([20, 0, 0, 1]) + b"x"
    events = conn.receive_datagram(_client(crypto_frame(0, finished)), from_client=True, ts_ns=1)
    assert [(e.reason, e.detail) for e in events if isinstance(e, QuicSkipped)] == [
        ("quic-crypto-not-a-hello", "handshake type 20")
    ]
    again = conn.receive_datagram(
        _client(crypto_frame(5, finished), pn=1), from_client=True, ts_ns=2
    )
    assert again == []


def test_crypto_past_the_cap_is_reported_once() -> None:
    conn = QuicConnection()
    events = conn.receive_datagram(
        _client(crypto_frame(0, HELLO) + crypto_frame(70_000, b"x")), from_client=True, ts_ns=1
    )
    assert [type(e).__name__ for e in events] == ["ClientHelloEvent", "QuicSkipped"]
    skip = events[1]
    assert isinstance(skip, QuicSkipped) and skip.reason == "quic-crypto-too-large"
    assert (
        conn.receive_datagram(_client(crypto_frame(80_000, b"y"), pn=1), from_client=True, ts_ns=2)
        == []
    )


def test_close_is_reported_once_per_direction() -> None:
    conn = QuicConnection()
    close = bytes.fromhex("1c 4178 06 00")
    conn.receive_datagram(_client(crypto_frame(0, HELLO)), from_client=True, ts_ns=1)
    server = protect_initial(QUIC_V1, ODCID, b"c", b"s", 0, close, server=True)
    [cc] = conn.receive_datagram(server, from_client=False, ts_ns=2)
    assert isinstance(cc, ConnectionCloseEvent) and cc.close.tls_alert == 120
    resent = protect_initial(QUIC_V1, ODCID, b"c", b"s", 1, close, server=True)
    assert conn.receive_datagram(resent, from_client=False, ts_ns=3) == []


def test_retry_and_vn_in_the_wrong_direction_or_too_early() -> None:
    conn = QuicConnection()
    [skip] = conn.receive_datagram(v.V1_RETRY, from_client=True, ts_ns=1)
    assert isinstance(skip, QuicSkipped) and skip.reason == "quic-retry-from-client"
    [retry] = conn.receive_datagram(v.V1_RETRY, from_client=False, ts_ns=2)
    assert isinstance(retry, RetryEvent) and retry.integrity_ok is None  # no ODCID known
    vn = bytes.fromhex("80 00000000 00 00 00000001")
    [skip] = conn.receive_datagram(vn, from_client=True, ts_ns=3)
    assert isinstance(skip, QuicSkipped) and skip.reason == "quic-vn-from-client"
    [event] = conn.receive_datagram(vn, from_client=False, ts_ns=4)
    assert event == VersionNegotiationEvent(versions=(QUIC_V1,), ts_ns=4)


def test_junk_after_a_packet_is_a_skip_event() -> None:
    conn = QuicConnection()
    datagram = _client(crypto_frame(0, HELLO)) + bytes.fromhex("c0 00000001 30") + b"x" * 10
    events = conn.receive_datagram(datagram, from_client=True, ts_ns=1)
    assert [type(e).__name__ for e in events] == ["ClientHelloEvent", "QuicSkipped"]


def test_key_cache_stays_bounded_across_reserved_versions() -> None:
    from alpnsniff.quic.connection import MAX_KEY_VERSIONS

    conn = QuicConnection()
    for i in range(12):
        version = 0x0A0A0A0A | (i << 4)  # 0x0a0a0a0a, 0x0a0a0a1a, … all reserved
        packet = protect_initial(version, ODCID, ODCID, b"c", i, b"\x01", server=False)
        assert conn.receive_datagram(packet, from_client=True, ts_ns=i) == []
        assert len(conn._client.keys) <= MAX_KEY_VERSIONS
