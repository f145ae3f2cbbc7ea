"""IP fragment reassembly: real datagrams (a QUIC Initial, a TLS ClientHello) cut into fragments.

Orders, duplicates, overlaps (IPv4 first-wins, IPv6 abandon), timeouts, and every cap.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from netframes import compare_with_tshark, write_pcap
from wrapped import SOURCES, Inner, load_inner

from alpnsniff.net import fragments
from alpnsniff.net.decode import PacketDecoder
from alpnsniff.net.fragments import (
    FRAG_TIMEOUT_NS,
    MAX_FRAG_DATAGRAMS,
    MAX_FRAG_PIECES,
    FragmentReassembler,
)
from alpnsniff.net.segment import Segment

pytestmark = pytest.mark.shared
SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def inners() -> dict[str, Inner]:
    return {name: load_inner(name) for name in SOURCES}


def v4_fragment(ip: bytes, offset: int, chunk: bytes, more: bool, ident: int = 0x4242) -> bytes:
    """An IPv4 fragment of ``ip`` (header of 20 bytes) carrying ``chunk`` at ``offset``."""
    header = bytearray(ip[:20])
    header[2:4] = (20 + len(chunk)).to_bytes(2, "big")
    header[4:6] = ident.to_bytes(2, "big")
    header[6:8] = ((0x2000 if more else 0) | offset >> 3).to_bytes(2, "big")
    header[10:12] = b"\x00\x00"
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, 20, 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = (~total & 0xFFFF).to_bytes(2, "big")
    return bytes(header) + chunk


def v6_fragment(ip: bytes, offset: int, chunk: bytes, more: bool, ident: int = 0x424242) -> bytes:
    """An IPv6 fragment of ``ip`` (no extension headers) carrying ``chunk`` at ``offset``."""
    fixed = bytearray(ip[:40])
    nh = fixed[6]
    fixed[4:6] = (8 + len(chunk)).to_bytes(2, "big")
    fixed[6] = 44
    frag = bytes([nh, 0]) + (offset | int(more)).to_bytes(2, "big") + ident.to_bytes(4, "big")
    return bytes(fixed) + frag + chunk


def split(inner: Inner, size: int, ident: int | None = None) -> list[bytes]:
    """Cut the inner datagram into fragments of ``size`` bytes (a multiple of 8)."""
    v6 = inner.expected.ip_version == 6
    head = 40 if v6 else 20
    body = inner.ip[head:]
    out = []
    for offset in range(0, len(body), size):
        chunk = body[offset : offset + size]
        more = offset + size < len(body)
        if v6:
            out.append(v6_fragment(inner.ip, offset, chunk, more, ident or 0x424242))
        else:
            out.append(v4_fragment(inner.ip, offset, chunk, more, ident or 0x4242))
    return out


def feed(decoder: PacketDecoder, packets: list[bytes], ts_ns: int = 0) -> list[Segment | str]:
    return [decoder.decode(101, p, ts_ns) for p in packets]


@pytest.mark.parametrize("name", ["udp4", "tcp4", "udp6", "tcp6"])
@pytest.mark.parametrize("order", ["in-order", "reversed", "shuffled"])
def test_reassembly_in_any_order(name: str, order: str, inners: dict[str, Inner]) -> None:
    inner = inners[name]
    parts = split(inner, 96)
    assert len(parts) >= 3
    if order == "reversed":
        parts.reverse()
    elif order == "shuffled":
        random.Random(7).shuffle(parts)
    decoder = PacketDecoder()
    got = feed(decoder, parts)
    assert got[:-1] == ["fragment-held"] * (len(parts) - 1)
    assert got[-1] == inner.expected
    assert decoder.stats["frag-reassembled"] == 1
    assert len(decoder._frags) == 0 and decoder._frags.held_bytes == 0


@pytest.mark.parametrize("name", ["udp4", "udp6"])
def test_exact_duplicates_are_ignored(name: str, inners: dict[str, Inner]) -> None:
    inner = inners[name]
    parts = split(inner, 400)
    decoder = PacketDecoder()
    got = feed(decoder, [parts[0], parts[0], parts[1], parts[1], *parts[2:]])
    assert got[-1] == inner.expected
    assert decoder.stats["frag-duplicate"] == 2
    assert feed(decoder, [parts[0]]) == ["fragment-held"]  # a late copy starts over, and waits


def test_ipv4_overlap_first_bytes_win(inners: dict[str, Inner]) -> None:
    inner = inners["udp4"]
    body = inner.ip[20:]
    forged = body[:400] + b"X" * 400 + body[800:]
    first = v4_fragment(inner.ip, 0, body[:800], True)
    second = v4_fragment(inner.ip, 400, forged[400:], False)  # overlaps [400, 800)
    decoder = PacketDecoder()
    assert feed(decoder, [first, second]) == ["fragment-held", inner.expected]
    assert decoder.stats["frag-overlap"] == 1
    # The other way round the forged bytes came first, and they win: deterministic, counted.
    decoder = PacketDecoder()
    held, done = feed(decoder, [second, first])
    assert held == "fragment-held"
    assert isinstance(done, Segment)
    assert done.payload == inner.expected.payload[:392] + b"X" * 400 + inner.expected.payload[792:]
    assert decoder.stats["frag-overlap"] == 1


def test_ipv6_overlap_abandons_the_datagram(inners: dict[str, Inner]) -> None:
    inner = inners["udp6"]
    body = inner.ip[40:]
    decoder = PacketDecoder()
    first = v6_fragment(inner.ip, 0, body[:800], True)
    overlapping = v6_fragment(inner.ip, 400, body[400:], False)
    assert feed(decoder, [first, overlapping]) == ["fragment-held", "fragment-dropped"]
    assert decoder.stats["frag-overlap-abandoned"] == 1
    assert len(decoder._frags) == 0
    # Everything received for it was discarded: a clean set afterwards reassembles.
    assert feed(decoder, split(inner, 400))[-1] == inner.expected


def test_timeout_drops_old_fragments(inners: dict[str, Inner]) -> None:
    inner = inners["udp4"]
    first, *rest = split(inner, 400)
    decoder = PacketDecoder()
    assert decoder.decode(101, first, 0) == "fragment-held"
    late = [decoder.decode(101, p, FRAG_TIMEOUT_NS + SECOND) for p in rest]
    assert late == ["fragment-held"] * len(rest)  # the first one expired: never complete
    assert decoder.stats["frag-timed-out"] == 1
    assert decoder.decode(101, first, FRAG_TIMEOUT_NS + 2 * SECOND) == inner.expected


def test_pending_datagram_cap_evicts_the_oldest(inners: dict[str, Inner]) -> None:
    inner = inners["udp4"]
    decoder = PacketDecoder()
    datagrams = [split(inner, 600, ident=i + 1) for i in range(MAX_FRAG_DATAGRAMS + 1)]
    for parts in datagrams:
        assert decoder.decode(101, parts[0], 0) == "fragment-held"
    assert decoder.stats["frag-evicted"] == 1
    assert len(decoder._frags) == MAX_FRAG_DATAGRAMS
    assert feed(decoder, datagrams[1][1:])[-1] == inner.expected  # the second survived
    assert feed(decoder, datagrams[0][1:])[-1] == "fragment-held"  # the first is gone


def test_byte_cap_evicts_the_oldest(
    inners: dict[str, Inner], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fragments, "MAX_FRAG_TOTAL_BYTES", 1500)
    inner = inners["udp4"]
    decoder = PacketDecoder()
    a, b = split(inner, 800, ident=1), split(inner, 800, ident=2)
    assert feed(decoder, [a[0], b[0]]) == ["fragment-held", "fragment-held"]
    assert decoder.stats["frag-evicted"] == 1
    assert decoder._frags.held_bytes == 800
    assert feed(decoder, b[1:])[-1] == inner.expected


def test_fragment_past_64k_is_dropped(inners: dict[str, Inner]) -> None:
    inner = inners["udp4"]
    decoder = PacketDecoder()
    death = v4_fragment(inner.ip, 65528, bytes(100), False)  # ends at 65628 > 65535
    assert decoder.decode(101, death, 0) == "fragment-dropped"
    assert decoder.stats["frag-too-big"] == 1


def test_piece_cap(inners: dict[str, Inner]) -> None:
    inner = inners["udp4"]
    decoder = PacketDecoder()
    tiny = [v4_fragment(inner.ip, 16 * i, bytes(8), True) for i in range(MAX_FRAG_PIECES + 1)]
    got = feed(decoder, tiny)
    assert got[:-1] == ["fragment-held"] * MAX_FRAG_PIECES
    assert got[-1] == "fragment-dropped"
    assert decoder.stats["frag-too-many-pieces"] == 1
    assert len(decoder._frags) == 0


def test_inconsistent_last_fragments(inners: dict[str, Inner]) -> None:
    inner = inners["udp4"]
    body = inner.ip[20:]
    decoder = PacketDecoder()
    last_a = v4_fragment(inner.ip, 800, body[800:], False)
    last_b = v4_fragment(inner.ip, 800, body[800:1000], False)
    assert feed(decoder, [last_a, last_b]) == ["fragment-held", "fragment-dropped"]
    beyond = v4_fragment(inner.ip, 1600, bytes(16), True)
    assert feed(decoder, [last_a, beyond]) == ["fragment-held", "fragment-dropped"]
    assert decoder.stats["frag-inconsistent"] == 2


def test_cut_fragment_and_odd_ipv6_fragment_are_dropped(inners: dict[str, Inner]) -> None:
    decoder = PacketDecoder()
    first = split(inners["udp4"], 400)[0]
    assert decoder.decode(101, first[:200], 0) == "fragment-dropped"  # snap length cut it
    assert decoder.stats["frag-truncated"] == 1
    odd = v6_fragment(inners["udp6"].ip, 0, inners["udp6"].ip[40:141], True)  # 101 bytes, M=1
    assert decoder.decode(101, odd, 0) == "fragment-dropped"
    assert decoder.stats["frag-bad-length"] == 1


def test_ipv6_atomic_fragment_is_not_held(inners: dict[str, Inner]) -> None:
    inner = inners["tcp6"]
    atomic = v6_fragment(inner.ip, 0, inner.ip[40:], False)  # offset 0, M clear (RFC 6946)
    decoder = PacketDecoder()
    assert decoder.decode(101, atomic, 0) == inner.expected
    assert len(decoder._frags) == 0


def test_reassembler_counts_and_frees() -> None:
    stats: dict[str, int] = {}
    r = FragmentReassembler(stats)
    assert r.add(b"k", 8, False, b"B" * 8, 17, 0, False) == "fragment-held"
    assert r.held_bytes == 8
    assert r.add(b"k", 0, True, b"A" * 8, 17, 0, False) == (17, b"A" * 8 + b"B" * 8)
    assert (len(r), r.held_bytes) == (0, 0)
    assert stats == {"frag-seen": 2, "frag-reassembled": 1}


@pytest.mark.tshark
def test_tshark_reassembles_the_same(tmp_path: Path, inners: dict[str, Inner]) -> None:
    """tshark, fed the same fragments in the same orders, shows the same segments."""
    packets: list[bytes] = []
    for ident, inner in enumerate(inners.values(), 1):
        parts = split(inner, 96, ident=ident)
        packets += parts
        packets += list(reversed(split(inner, 200, ident=ident + 100)))
    decoder = PacketDecoder()
    done = [s for s in feed(decoder, packets) if isinstance(s, Segment)]
    assert len(done) == 2 * len(inners)
    verdict, problems = compare_with_tshark(write_pcap(tmp_path / "frags.pcap", 101, packets))
    assert problems == []
    assert verdict.agreed == len(done)
