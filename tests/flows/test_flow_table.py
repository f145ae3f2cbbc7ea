"""The flow table's limits, through the Dissector, on real packets.

Real frames from captures made here (``captures/``), copied onto other client ports where a
test needs many connections (a flood is hostile input; the bytes of each packet stay real).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from alpnsniff.capture import open_capture
from alpnsniff.flows.table import IDLE_TIMEOUT_NS, SWEEP_INTERVAL_NS, reverse_key
from alpnsniff.net.decode import PacketDecoder
from alpnsniff.pipeline import Dissector, dissect
from alpnsniff.records import Selection
from tests.conftest import pure_python_only

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
ETH_IP = 14
SECOND = 1_000_000_000


def frames(name: str) -> list[tuple[int, int, bytes]]:
    with open_capture(CAPTURES / name) as source:
        return list(source.packets())


def on_port(data: bytes, client_port: int, server_port: int) -> bytes:
    """The same Ethernet/IPv4 frame with the client's port changed (either direction)."""
    l4 = ETH_IP + ((data[ETH_IP] & 15) << 2)
    sport, dport = struct.unpack_from(">HH", data, l4)
    if sport == server_port:
        dport = client_port
    else:
        sport = client_port
    return data[:l4] + struct.pack(">HH", sport, dport) + data[l4 + 4 :]


TLS12 = "openssl_tls12_h2.pcap"  # frames 1-3 handshake, 4 ClientHello, 6 ServerHello (h2)
TLS12_SERVER_PORT = 4431
QUIC = "aioquic_h3_v1.pcap"  # frame 1 the client's Initial, 2 the server's


def test_reverse_key_swaps_addresses_and_ports() -> None:
    key = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">HH", 40000, 443)
    assert reverse_key(key) == bytes([10, 0, 0, 2, 10, 0, 0, 1]) + struct.pack(">HH", 443, 40000)
    assert reverse_key(reverse_key(key)) == key
    v6 = bytes(range(32)) + b"\x01\x02\x03\x04"
    assert reverse_key(v6) == bytes(range(16, 32)) + bytes(range(16)) + b"\x03\x04\x01\x02"


def test_tick_flushes_an_idle_flow_without_a_packet() -> None:
    # the client's SYN, handshake and ClientHello; the server never answers; the link is quiet
    packets = frames(TLS12)[:4]
    packets = [p for p in packets if p[2][ETH_IP + 20 : ETH_IP + 22] != b"\x11\x4f"]  # client's
    d = Dissector()
    assert list(d.run(packets)) == []
    assert len(d.table) == 1
    last = packets[-1][0]
    # a quiet link: time passes, no packet comes
    assert d.tick(last + IDLE_TIMEOUT_NS // 2) == []
    records = d.tick(last + IDLE_TIMEOUT_NS + SWEEP_INTERVAL_NS + 1)
    assert [r.selection for r in records] == [Selection.UNSEEN]
    assert records[0].frame == 3  # the third packet fed
    assert d.stats["tcp_evicted_idle"] == 1
    assert len(d.table) == 0
    assert d.finish() == []


def test_table_full_evicts_the_least_recently_active() -> None:
    real = frames(TLS12)
    syn = real[0]
    d = Dissector()
    d.table.max_flows = 10
    flood = [(syn[0] + i, 1, on_port(syn[2], 20000 + i, TLS12_SERVER_PORT)) for i in range(30)]
    records = list(dissect(flood + real, d))
    assert d.stats["tcp_evicted_table_full"] == 21  # 30 half-open + the real one, 10 kept
    assert d.stats["tcp_evicted_while_probing"] == 21
    assert [(r.frame, r.selection, r.alpn_selected_raw) for r in records] == [
        (34, Selection.VISIBLE, b"h2")
    ]


def test_byte_budget_evicts_the_oldest_and_the_real_handshake_survives() -> None:
    # a ClientHello cut after its first segment, copied onto 40 client ports: each flow holds
    # the 1448 bytes of a record that never completes; then one real handshake
    real = frames("chromium_nginx_h2_veth1500.pcap")[:9]
    server_port = 8443
    first = real[:4]  # SYN, SYN-ACK, ACK, the ClientHello's first segment
    d = Dissector()
    d.table.max_buffered = 10 * 1448
    flood = []
    for i in range(40):
        flood += [(ts + i, lt, on_port(data, 30000 + i, server_port)) for ts, lt, data in first]
    records = list(d.run(flood + real))
    assert d.table.buffered <= d.table.max_buffered
    assert d.stats["tcp_evicted_byte_budget"] >= 30
    # (TLS 1.3: without keys the server's choice is encrypted)
    assert [(r.client_port, r.selection) for r in records[-1:]] == [(36062, Selection.ENCRYPTED)]
    # every stalled hello is counted, evicted or still in the table at the end
    assert len(d.table) == 40 - d.stats["tcp_evicted_byte_budget"] > 0
    assert d.finish() == []  # no ClientHello of the flood was ever complete
    assert len(d.table) == 0
    assert d.stats["tcp_client_hello_incomplete"] == 40


def test_undecryptable_quic_initials_leave_the_table_at_once() -> None:
    real = frames(QUIC)
    client_initial = real[0]
    ts, lt, data = client_initial
    flood = []
    for i in range(25):
        # the same Initial header, its protected payload garbled: it cannot decrypt
        garbled = bytearray(data)
        for j in range(ETH_IP + 28 + 60, ETH_IP + 28 + 400):  # after the long header
            garbled[j] ^= 0x5A
        flood.append((ts - 1000 + i, lt, on_port(bytes(garbled), 50000 + i, 4433)))
    d = Dissector()
    sizes = []
    for packet in flood:
        list(d.run([packet]))
        sizes.append(len(d.table))
    assert sizes == [0] * 25
    assert d.stats["quic_initial_undecryptable"] == 25
    records = list(dissect(real, d))
    assert [(r.transport, r.selection) for r in records] == [("quic", Selection.ENCRYPTED)]


@pure_python_only
def test_a_packet_that_raises_is_counted_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = frames(TLS12)
    d = Dissector()
    decode = PacketDecoder.decode
    calls = 0

    def flaky(self: PacketDecoder, linktype: int, data: bytes, ts_ns: int) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("decoder bug \x1b[31m")
        return decode(self, linktype, data, ts_ns)

    monkeypatch.setattr(PacketDecoder, "decode", flaky)
    records = list(dissect(real, d))
    assert d.stats["internal_error"] == 1
    assert d.all_errors()[0] == "frame 2: internal error: RuntimeError: decoder bug \\x1b[31m"
    # the lost packet was the server's SYN-ACK: the handshake itself still comes out
    assert [(r.frame, r.alpn_selected_raw) for r in records] == [(4, b"h2")]
