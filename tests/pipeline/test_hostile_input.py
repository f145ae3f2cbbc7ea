"""Hostile and broken input through the whole pipeline: counted, bounded, never a crash.

Hand-built frames (allowed for malformed-input tests) and mutations of real frames.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpnsniff.capture import open_capture
from alpnsniff.flows.tcp import MAX_HANDSHAKE_STREAM, PROBE_SEGMENTS
from alpnsniff.pipeline import Dissector, dissect
from tests.conftest import shared_file

CLIENT = bytes([10, 0, 0, 1])
SERVER = bytes([10, 0, 0, 2])


def tcp_frame(
    payload: bytes,
    seq: int,
    *,
    flags: int = 0x18,
    sport: int = 40000,
    dport: int = 443,
    src: bytes = CLIENT,
    dst: bytes = SERVER,
) -> bytes:
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    eth = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00"
    return eth + ip + tcp + payload


def run(frames: list[bytes]) -> tuple[list, Dissector]:
    d = Dissector()
    packets = [(1_000_000_000 * (i + 1), 1, f) for i, f in enumerate(frames)]
    return list(dissect(packets, d)), d


def test_endless_handshake_record_is_cut_at_the_limit() -> None:
    # a record header announcing a ClientHello, then a never-ending stream of handshake bytes
    head = b"\x16\x03\x01\x40\x00\x01\xff\xff\xff"
    frames = [tcp_frame(b"", 999, flags=0x02)]
    seq = 1000
    chunk = b"\x00" * 1400
    frames.append(tcp_frame(head + chunk, seq))
    seq += len(head) + len(chunk)
    for _ in range(MAX_HANDSHAKE_STREAM // 1400 + 20):
        frames.append(tcp_frame(chunk, seq))
        seq += len(chunk)
    records, d = run(frames)
    assert records == []
    assert not len(d.table)  # nothing left buffering
    errors = {k: v for k, v in d.stats.items() if k.startswith("tcp_client_")}
    assert errors, d.stats  # the bad hello was counted, not silently dropped


def test_non_tls_connection_is_given_up_after_the_probe_budget() -> None:
    # text lines that could precede a STARTTLS, but never do
    frames = [tcp_frame(b"", 99, flags=0x02, dport=25)]
    seq = 100
    for _ in range(PROBE_SEGMENTS + 5):
        frames.append(tcp_frame(b"NOOP\r\n", seq, dport=25))
        seq += 6
    records, d = run(frames)
    assert records == [] and d.stats["tcp_not_tls"] == 1 and not len(d.table)
    assert d.stats["packets_fast_skipped"] == 5  # after giving up, each packet is one look-up


def test_plain_http_request_is_given_up_at_once() -> None:
    frames = [tcp_frame(b"", 99, flags=0x02, dport=80)]
    frames += [tcp_frame(b"GET / HTTP/1.1\r\n\r\n", 100 + 18 * i, dport=80) for i in range(4)]
    records, d = run(frames)
    assert records == [] and d.stats["tcp_plaintext_protocol"] == 1
    assert d.stats["packets_fast_skipped"] == 3


def test_http_connect_preamble_then_tls_is_found() -> None:
    ch = shared_client_hello()
    frames = [tcp_frame(b"", 99, flags=0x02, dport=3128)]
    connect = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    frames.append(tcp_frame(connect, 100, dport=3128))
    frames.append(
        tcp_frame(b"HTTP/1.1 200 OK\r\n\r\n", 700, src=SERVER, dst=CLIENT, sport=3128, dport=40000)
    )
    frames.append(tcp_frame(ch, 100 + len(connect), dport=3128))
    records, _ = run(frames)
    assert [r.alpn_offered_raw for r in records] == [(b"h2", b"http/1.1")]


def test_client_hello_after_a_starttls_preamble_is_found() -> None:
    ch = shared_client_hello()
    frames = [tcp_frame(b"", 99, flags=0x02, dport=25)]
    frames.append(
        tcp_frame(b"220 mx ESMTP\r\n", 500, src=SERVER, dst=CLIENT, sport=25, dport=40000)
    )
    frames.append(tcp_frame(b"STARTTLS\r\n", 100, dport=25))
    frames.append(tcp_frame(ch, 110, dport=25))
    records, _ = run(frames)
    assert len(records) == 1 and records[0].server_port == 25
    assert records[0].alpn_offered_raw == (b"h2", b"http/1.1")


def shared_client_hello() -> bytes:
    """The TCP payload of a real openssl ClientHello (frame 4 of a realcap capture)."""
    with open_capture(shared_file("realcap", "openssl_tls12_alpn_h2.pcap")) as src:
        frames = [data for _, _, data in src.packets()]
    frame = frames[3]
    ihl = (frame[14] & 15) * 4
    tcp_off = 14 + ihl
    return frame[tcp_off + (frame[tcp_off + 12] >> 4) * 4 :]


def real_frames() -> list[bytes]:
    with open_capture(shared_file("realcap", "chromium_nginx_h2_veth1500.pcap")) as src:
        return [data for _, _, data in src.packets()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    linktype=st.sampled_from([0, 1, 101, 113, 228, 229, 276, 9, 12, 108, 147]),
)
def test_mutated_real_frames_never_crash(data: st.DataObject, linktype: int) -> None:
    frames = real_frames()
    mutated = []
    for frame in frames:
        buf = bytearray(frame)
        for _ in range(data.draw(st.integers(0, 6))):
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(buf)))
        mutated.append(bytes(buf[: max(cut, len(buf) - 3)]))
    d = Dissector()
    packets = [(i, 1 if i % 3 else linktype, f) for i, f in enumerate(mutated)]
    for record in dissect(packets, d):
        assert record.transport == "tcp"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20), st.sampled_from([1, 101, 113, 276, 0]))
def test_random_frames_never_crash(frames: list[bytes], linktype: int) -> None:
    d = Dissector()
    list(dissect([(i, linktype, f) for i, f in enumerate(frames)], d))


def test_segments_after_a_broken_client_stream_are_counted() -> None:
    # a real ClientHello, then a record header of a version no TLS stack sends: the client's
    # stream breaks there (counted under its reason) and its later segments are counted too
    ch = shared_client_hello()
    frames = [tcp_frame(b"", 99, flags=0x02), tcp_frame(ch, 100)]
    seq = 100 + len(ch)
    broken = b"\x16\x09\x09\x00\x10" + bytes(16)
    frames.append(tcp_frame(broken, seq))
    seq += len(broken)
    for _ in range(3):
        frames.append(tcp_frame(b"\x17\x03\x03\x00\x02ab", seq))
        seq += 7
    records, d = run(frames)
    stream_errors = {k: v for k, v in d.stats.items() if k.startswith("tcp_client_stream_")}
    assert sum(stream_errors.values()) == 1, d.stats
    assert d.stats["tcp_segments_after_stream_error"] == 3
    # the ClientHello before the break still has its record (the server never answered)
    assert [(r.alpn_offered_raw, r.selection.value) for r in records] == [
        ((b"h2", b"http/1.1"), "unseen")
    ]
