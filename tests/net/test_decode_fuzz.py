"""Fuzz rules: any bytes on any link type give a Segment or a reason, never an exception.

Also: the fast paths agree with the general path on every input, and the fragment
reassembler keeps its books straight under any sequence of fragments.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wrapped import ETHERNET, LINKS, SOURCES, load_inner

from alpnsniff.net import fragments
from alpnsniff.net.decode import PacketDecoder
from alpnsniff.net.fragments import FragmentReassembler
from alpnsniff.net.link import LINK_DECODERS
from alpnsniff.net.segment import Segment

LINKTYPES = sorted(LINK_DECODERS)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(got: Segment | str) -> None:
    if isinstance(got, str):
        assert got and len(got) < 64
        return
    assert isinstance(got, Segment)
    assert got.proto in (6, 17) and got.ip_version in (4, 6)
    assert len(got.src) == len(got.dst) == (4 if got.ip_version == 4 else 16)
    assert 0 <= got.sport < 65536 and 0 <= got.dport < 65536
    assert 0 <= got.seq < 2**32 and 0 <= got.ack < 2**32 and 0 <= got.flags < 256
    assert isinstance(got.payload, bytes)
    if got.proto == 17:
        assert (got.seq, got.ack, got.flags) == (0, 0, 0)


@FUZZ
@given(st.sampled_from([*LINKTYPES, 147, 65535]), st.binary(max_size=300))
def test_random_bytes_never_raise(linktype: int, data: bytes) -> None:
    _check(PacketDecoder().decode(linktype, data, 0))


@FUZZ
@given(st.binary(min_size=14, max_size=120))
def test_random_ethernet_ipv4_never_raises(tail: bytes) -> None:
    """Random bytes behind a valid-looking Ethernet + IPv4 start, to get past the first checks."""
    frame = bytes(12) + b"\x08\x00\x45" + tail
    decoder = PacketDecoder()
    got = decoder.decode(1, frame, 0)
    _check(got)
    assert got == PacketDecoder()._decode(1, frame, 0)


@functools.cache
def _real_frames() -> list[tuple[int, bytes]]:
    inners = [load_inner(name) for name in SOURCES]
    frames = [(1, build(inner)) for build in ETHERNET.values() for inner in inners]
    frames += [(key[0], build(inner)) for key, build in LINKS.items() for inner in inners]
    return frames


@pytest.fixture(scope="module")
def real_frames() -> list[tuple[int, bytes]]:
    return _real_frames()  # skips the test when ../shared is absent


mutation = st.lists(st.tuples(st.integers(0, 140), st.integers(0, 255)), min_size=1, max_size=4)


@pytest.mark.shared
@FUZZ
@given(st.data(), mutation, st.integers(0, 2000))
def test_mutated_real_frames_never_raise_and_fast_equals_general(
    real_frames: list[tuple[int, bytes]],
    data: st.DataObject,
    changes: list[tuple[int, int]],
    cut: int,
) -> None:
    frames = real_frames
    linktype, frame = frames[data.draw(st.integers(0, len(frames) - 1))]
    buf = bytearray(frame)
    for at, value in changes:
        if at < len(buf):
            buf[at] = value
    mutated = bytes(buf[: len(buf) - cut]) if cut < len(buf) else bytes(buf)
    got = PacketDecoder().decode(linktype, mutated, 0)
    _check(got)
    assert got == PacketDecoder()._decode(linktype, mutated, 0)


fragment_ops = st.lists(
    st.tuples(
        st.integers(0, 3),  # key
        st.integers(0, 8200).map(lambda x: x * 8),  # offset
        st.booleans(),  # more fragments
        st.integers(0, 1500),  # length
        st.integers(0, 100),  # capture time, seconds
        st.booleans(),  # IPv6 rules
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(fragment_ops)
def test_reassembler_books_balance(ops: list[tuple[int, int, bool, int, int, bool]]) -> None:
    stats: dict[str, int] = {}
    r = FragmentReassembler(stats)
    for key, offset, more, length, seconds, v6 in ops:
        got = r.add(bytes([key]), offset, more, bytes([key]) * length, 17, seconds * 10**9, v6)
        if isinstance(got, tuple):
            proto, payload = got
            assert proto == 17 and len(payload) <= fragments.MAX_FRAG_BYTES
        else:
            assert got in ("fragment-held", "fragment-dropped")
        held = sum(len(p) for e in r._pending.values() for p in e.pieces)
        assert r.held_bytes == held == sum(e.have for e in r._pending.values())
        assert len(r) <= fragments.MAX_FRAG_DATAGRAMS
        for entry in r._pending.values():
            assert entry.starts == sorted(entry.starts)
            ends = [s + len(p) for s, p in zip(entry.starts, entry.pieces, strict=True)]
            assert all(e <= s for e, s in zip(ends, entry.starts[1:], strict=False))
            assert len(entry.pieces) <= fragments.MAX_FRAG_PIECES
