"""Timing of the QUIC layer's hot spots (run by hand: python tests/quic/bench_quic.py)."""

from __future__ import annotations

import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quic_rfc_vectors as v

from alpnsniff.quic.connection import QuicConnection
from alpnsniff.quic.frames import parse_initial_frames
from alpnsniff.quic.initial import initial_keys, open_initial
from alpnsniff.quic.packets import LongHeaderPacket, split_datagram
from alpnsniff.quic.versions import looks_like_quic_long_header

DNS_QUERY = bytes.fromhex("abcd0100000100000000000003777777076578616d706c6503636f6d0000010001")
RTP = bytes.fromhex("80000001") + bytes(160)
SHORT = b"\x41" + bytes(1199)


def per_call_us(stmt: object, number: int) -> float:
    # CPU time of this process: steadier than wall time on a shared, loaded machine.
    runs = timeit.repeat(stmt, number=number, repeat=5, timer=time.process_time)  # type: ignore[arg-type]
    return min(runs) / number * 1e6


def main() -> None:
    packet = split_datagram(v.V1_CLIENT_PACKET)[0]
    assert isinstance(packet, LongHeaderPacket)
    keys = initial_keys(1, v.DCID, server=False)
    _, plaintext = open_initial(packet, keys, largest_pn=None)
    rows = [
        ("looks_like: DNS query", lambda: looks_like_quic_long_header(DNS_QUERY), 200_000),
        ("looks_like: RTP (0x80…)", lambda: looks_like_quic_long_header(RTP), 200_000),
        ("looks_like: 1-RTT short header", lambda: looks_like_quic_long_header(SHORT), 200_000),
        (
            "looks_like: v1 Initial",
            lambda: looks_like_quic_long_header(v.V1_CLIENT_PACKET),
            200_000,
        ),
        ("split_datagram: 1200-byte Initial", lambda: split_datagram(v.V1_CLIENT_PACKET), 50_000),
        ("initial_keys (one direction)", lambda: initial_keys(1, v.DCID, server=False), 5_000),
        (
            "open_initial: 1200-byte Initial",
            lambda: open_initial(packet, keys, largest_pn=None),
            20_000,
        ),
        ("parse_initial_frames: RFC CH payload", lambda: parse_initial_frames(plaintext), 50_000),
        (
            "QuicConnection: new conn + RFC client Initial",
            lambda: QuicConnection().receive_datagram(
                v.V1_CLIENT_PACKET, from_client=True, ts_ns=0
            ),
            5_000,
        ),
    ]
    for name, fn, number in rows:
        print(f"{name:48s} {per_call_us(fn, number):8.2f} µs")


if __name__ == "__main__":
    main()
