"""Faults a review of the flow layer found, each held fixed on real packets (copied onto
other ports or cut where a case needs it; the frames stay real)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from alpnsniff.capture import open_capture
from alpnsniff.flows.state import HANDSHAKE
from alpnsniff.flows.table import shard_of
from alpnsniff.flows.tcp import TcpFlow
from alpnsniff.keys.keylog import KeyLog
from alpnsniff.keys.store import KeyStore
from alpnsniff.net.decode import PacketDecoder
from alpnsniff.net.segment import Segment
from alpnsniff.parallel import analyze_parallel
from alpnsniff.pipeline import Dissector, analyze_file, dissect
from alpnsniff.quic.initial import initial_keys, open_initial
from alpnsniff.quic.packets import LongHeaderPacket, split_datagram
from tests.conftest import pure_python_only, shared_file
from tests.quic.quic_build import protect_initial

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
ETH = 14


def frames(name: str) -> list[tuple[int, int, bytes]]:
    with open_capture(CAPTURES / name) as source:
        return list(source.packets())


def raw_ipv4(seg: Segment, payload: bytes) -> bytes:
    """The datagram as LINKTYPE_IPV4 (228): the same addresses and ports, this payload."""
    udp = struct.pack(">HHHH", seg.sport, seg.dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        ">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, seg.src, seg.dst
    )
    return ip + udp


def test_new_quic_connections_after_a_decrypting_one_do_not_leave_it_stuck() -> None:
    # aioquic with keys: after the ServerHello the flow waits for EncryptedExtensions; two
    # client Initials with new DCIDs (no Retry, no VN) are new connections on the 5-tuple
    real = frames("aioquic_h3_v1.pcap")
    decoder = PacketDecoder()
    c1, s2 = (decoder.decode(lt, data, ts) for ts, lt, data in real[:2])
    assert isinstance(c1, Segment) and isinstance(s2, Segment)
    init = split_datagram(c1.payload)[0]
    assert isinstance(init, LongHeaderPacket)
    _, plain = open_initial(
        init, initial_keys(init.version, init.dcid, server=False), largest_pn=None
    )
    at = plain.index(b"\x06\x00") + 4  # the CRYPTO frame's ClientHello
    assert plain[at] == 1

    def client_initial(dcid: bytes) -> bytes:
        body = bytearray(plain)
        body[at + 6] ^= dcid[0]  # another client random: another ClientHello
        pkt = protect_initial(init.version, dcid, dcid, init.scid, 0, bytes(body), server=False)
        return pkt + bytes(1200 - len(pkt))

    cut = split_datagram(s2.payload)[1].offset  # the server's Initial; Handshake packets later
    ts = real[0][0]
    packets = [
        (ts, 228, raw_ipv4(c1, c1.payload)),
        (ts + 1, 228, raw_ipv4(s2, s2.payload[:cut])),
        (ts + 2, 228, raw_ipv4(c1, client_initial(b"\xbb" * 8))),
        (ts + 3, 228, raw_ipv4(c1, client_initial(b"\xcc" * 8))),
        (ts + 4, 228, raw_ipv4(s2, s2.payload[cut:])),
    ]
    keylog = KeyLog()
    keylog.load(CAPTURES / "aioquic_h3_v1.keys")
    d = Dissector(keys=KeyStore(keylog))
    records = list(d.run(packets))
    assert d.stats["internal_error"] == 0, d.all_errors()
    assert [f.state for f in d.table._order] == [HANDSHAKE]
    records += d.finish()
    # the first connection (its flight not seen before the 5-tuple moved on), the second
    # (superseded by the third) and the third, unanswered
    assert [(r.frame, r.selection.value) for r in records] == [
        (1, "encrypted"),
        (3, "unseen"),
        (4, "unseen"),
    ]
    assert "keys-given-but-flight-not-seen" in records[0].notes


def test_zero_rtt_before_its_initial_is_one_connection() -> None:
    # a client's 0-RTT datagrams seen before its Initial: one connection, nothing given up
    result = analyze_file(
        shared_file("corpus", "pcaps", "zeek__quic_quic-decrypt-fail-google-de-51833.pcap")
    )
    assert result.stats["quic_connections"] == 1
    assert result.stats["quic_initial_undecryptable"] == 0


def with_tcp_payload(
    frame: tuple[int, int, bytes], seq: int, payload: bytes
) -> tuple[int, int, bytes]:
    ts, lt, data = frame
    ihl = (data[ETH] & 15) * 4
    l4 = ETH + ihl
    thl = (data[l4 + 12] >> 4) * 4
    head = bytearray(data[: l4 + thl])
    struct.pack_into(">H", head, ETH + 2, ihl + thl + len(payload))
    struct.pack_into(">I", head, l4 + 4, seq)
    return ts, lt, bytes(head) + payload


def test_a_broken_client_stream_still_ends_at_the_handshake_cap() -> None:
    # openssl's ClientHello, then 400 KB that is no TLS (an upload after a broken stream)
    real = frames("openssl_tls12_h2.pcap")
    hello = real[3]
    seq = struct.unpack_from(">I", hello[2], ETH + 20 + 4)[0] + 340
    junk = [
        with_tcp_payload(
            (hello[0] + i, hello[1], hello[2]), (seq + i * 1400) & 0xFFFFFFFF, b"\x99" * 1400
        )
        for i in range(300)
    ]
    d = Dissector()
    records = list(d.run(real[:4] + junk))
    assert len(d.table) == 0  # the flow is done, its key remembered
    assert d.stats["tcp_handshake_stream_too_long"] == 1
    assert d.stats["packets_fast_skipped"] > 100  # the rest costs one look-up each
    assert [r.selection.value for r in records] == ["unseen"]


def test_an_exception_while_flows_leave_at_the_end_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = frames("openssl_tls12_h2.pcap")[:4]  # the ClientHello waits until the end
    abandon = TcpFlow.abandon

    def broken(self: TcpFlow, *, at_end: bool) -> list:
        raise ValueError("bug in one flow's abandon")

    monkeypatch.setattr(TcpFlow, "abandon", broken)
    d = Dissector()
    assert list(dissect(real, d)) == []
    assert d.stats["internal_error"] == 1
    assert d.all_errors() == [
        "internal error leaving a flow: ValueError: bug in one flow's abandon"
    ]
    monkeypatch.setattr(TcpFlow, "abandon", abandon)


@pure_python_only
def test_a_packet_that_raises_leaves_no_decoder_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    real = frames("openssl_tls12_vxlan.pcap")[:2]
    decode = PacketDecoder.decode

    def counted_then_raises(self: PacketDecoder, lt: int, data: bytes, ts: int) -> object:
        out = decode(self, lt, data, ts)  # counts the tunnel
        if data == real[0][2]:
            raise ValueError("bug after counting")
        return out

    monkeypatch.setattr(PacketDecoder, "decode", counted_then_raises)
    d = Dissector()
    list(dissect(real, d))
    assert d.stats["internal_error"] == 1
    # the second packet's counts, not the first's too (unpatched, the two count 2 each)
    assert dict(d.decoder_stats) == {"bridged-ethernet": 1, "tunnel-fallback:vxlan": 1}


@pure_python_only
def test_parallel_run_counts_a_decoder_exception_once(monkeypatch: pytest.MonkeyPatch) -> None:
    path = CAPTURES / "openssl_tls12_vxlan.pcap"
    first = frames(path.name)[0][2]
    decode = PacketDecoder.decode

    def raises_once(self: PacketDecoder, lt: int, data: bytes, ts: int) -> object:
        if data == first:
            raise ValueError("decoder bug")
        return decode(self, lt, data, ts)

    monkeypatch.setattr(PacketDecoder, "decode", raises_once)  # inherited by forked workers
    one, three = analyze_file(path), analyze_parallel(path, 3)
    assert one.stats["internal_error"] == three.stats["internal_error"] == 1
    assert three.errors == one.errors == ["frame 1: internal error: ValueError: decoder bug"]


def test_parallel_run_counts_the_captures_secrets_once(tmp_path: Path) -> None:
    # two TLS 1.3 connections served by the pcapng's one DSB, their flows in shards 1 and 2:
    # shard 0 never looks a key up, yet the key log's counts are the capture's, once
    src = (CAPTURES / "openssl_tls13_h2_dsb.pcapng").read_bytes()
    blocks, i = [], 0
    while i < len(src):
        btype, blen = struct.unpack_from("<II", src, i)
        blocks.append((btype, src[i : i + blen]))
        i += blen
    (h,) = analyze_file(CAPTURES / "openssl_tls13_h2_dsb.pcapng").handshakes
    cport, sport = struct.pack(">H", h.client_port), struct.pack(">H", h.server_port)
    ports = [
        next(p for p in range(40000, 41000) if shard_of(p, h.server_port, 3) == s) for s in (1, 2)
    ]

    def on_port(block: bytes, port: int) -> bytes:
        b = bytearray(block)
        for off in range(28, len(b) - 3):
            if b[off : off + 2] == cport and sport in (b[off + 2 : off + 4], b[off - 2 : off]):
                b[off : off + 2] = struct.pack(">H", port)
        return bytes(b)

    head = b"".join(b for t, b in blocks if t != 6)
    epbs = [b for t, b in blocks if t == 6]
    path = tmp_path / "two_flows_one_dsb.pcapng"
    path.write_bytes(
        head
        + b"".join(on_port(b, ports[0]) for b in epbs)
        + b"".join(on_port(b, ports[1]) for b in epbs)
    )
    one, three = analyze_file(path), analyze_parallel(path, 3)
    assert [r.selection.value for r in three.handshakes] == ["decrypted", "decrypted"]

    def keylog(stats: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in stats.items() if k.startswith("keylog_")}

    assert (
        keylog(three.stats) == keylog(one.stats) == {"keylog_dsb_blocks": 1, "keylog_sessions": 1}
    )
