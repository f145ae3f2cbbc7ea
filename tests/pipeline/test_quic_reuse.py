"""Two QUIC connections on one UDP 5-tuple: each is its own record.

Built from two real aioquic captures (v1, then v2) with the second one's client port
rewritten to the first one's, the way a client reusing its socket would look.
"""

from __future__ import annotations

import struct

from alpnsniff.capture import open_capture
from alpnsniff.pipeline import Dissector, dissect
from alpnsniff.records import Selection
from tests.conftest import shared_file

ETH = 14


def frames(name: str) -> list[tuple[int, int, bytes]]:
    with open_capture(shared_file("realcap", name)) as src:
        return list(src.packets())


def onto_5tuple(
    packets: list[tuple[int, int, bytes]], like: list[tuple[int, int, bytes]]
) -> list[tuple[int, int, bytes]]:
    """``packets`` with their ports set to those of ``like`` (same direction, same place)."""
    client, server = ports(like[0][2])
    old_client, old_server = ports(packets[0][2])
    mapping = {old_client: client, old_server: server}
    out = []
    for ts, lt, data in packets:
        buf = bytearray(data)
        l4 = ETH + (buf[ETH] & 15) * 4
        sport, dport = struct.unpack_from(">HH", buf, l4)
        struct.pack_into(">HH", buf, l4, mapping[sport], mapping[dport])
        out.append((ts, lt, bytes(buf)))
    return out


def ports(data: bytes) -> tuple[int, int]:
    sport, dport = struct.unpack_from(">HH", data, ETH + (data[ETH] & 15) * 4)
    return int(sport), int(dport)


def test_second_connection_on_the_same_5_tuple_is_seen() -> None:
    first, second = frames("aioquic_h3_v1.pcap"), frames("aioquic_h3_v2.pcap")
    gap = 5_000_000_000
    shift = first[-1][0] + gap - second[0][0]
    second = [(ts + shift, lt, d) for ts, lt, d in second]
    packets = first + onto_5tuple(second, first)
    d = Dissector()
    records = list(dissect(packets, d))
    assert [(r.frame, r.quic_version, r.selection) for r in records] == [
        (1, "1", Selection.ENCRYPTED),
        (len(first) + 1, "2", Selection.ENCRYPTED),
    ]
    assert d.stats["quic_5tuple_reuse"] == 1
    assert [r.quic_restarts for r in records] == [0, 0]


def test_unanswered_connection_then_a_new_one_are_two_records() -> None:
    first, second = frames("aioquic_h3_v1.pcap"), frames("aioquic_h3_v2.pcap")
    packets = first[:1] + onto_5tuple(second, first)
    records = list(dissect(packets, Dissector()))
    assert [(r.frame, r.quic_version, r.selection, r.quic_restarts) for r in records] == [
        (1, "1", Selection.UNSEEN, 0),
        (2, "2", Selection.ENCRYPTED, 0),
    ]
