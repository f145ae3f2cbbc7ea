"""StreamReassembler: contiguous delivery whatever the segmentation, order and repeats."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from alpnsniff.net.tcp import (
    MAX_PENDING_SEGMENTS,
    MAX_WINDOW,
    SEQ_MASK,
    StreamReassembler,
)


def _segments(stream: bytes, cuts: list[int], start: int) -> list[tuple[int, bytes]]:
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    return [((start + a) & SEQ_MASK, stream[a:b]) for a, b in itertools.pairwise(bounds)]


def test_in_order_segments_are_passed_through() -> None:
    r = StreamReassembler(1000)
    assert r.add(1000, b"abc") == b"abc"
    assert r.add(1003, b"def") == b"def"
    assert r.next_seq == 1006
    assert not r.has_gap


def test_out_of_order_segment_waits_for_the_gap() -> None:
    r = StreamReassembler(1000)
    assert r.add(1003, b"def") == b""
    assert r.has_gap
    assert r.add(1000, b"abc") == b"abcdef"
    assert not r.has_gap


def test_retransmission_is_delivered_once() -> None:
    r = StreamReassembler(5)
    assert r.add(5, b"hello") == b"hello"
    assert r.add(5, b"hello") == b""
    assert r.retransmitted == 1


def test_overlap_delivers_only_new_bytes_first_copy_wins() -> None:
    r = StreamReassembler(0)
    assert r.add(0, b"abcd") == b"abcd"
    assert r.add(2, b"XXef") == b"ef"


def test_sequence_wraps_around() -> None:
    start = SEQ_MASK - 2  # three bytes before the wrap
    r = StreamReassembler(start)
    assert r.add(start, b"abc") == b"abc"
    assert r.next_seq == 0
    assert r.add(2, b"ef") == b""  # held: byte 1 is missing
    assert r.add(0, b"d") == b"d"
    assert r.add(1, b"X") == b"Xef"


def test_segment_beyond_window_is_dropped_and_counted() -> None:
    r = StreamReassembler(0)
    assert r.add(MAX_WINDOW + 10, b"far") == b""
    assert r.dropped == 1
    assert not r.has_gap


def test_pending_segment_cap_bites_and_is_counted() -> None:
    r = StreamReassembler(0)
    for i in range(MAX_PENDING_SEGMENTS + 5):
        r.add(10 + 2 * i, b"x")
    assert len(r.pending) == MAX_PENDING_SEGMENTS
    assert r.dropped == 5


@settings(max_examples=300, deadline=None)
@given(
    stream=st.binary(min_size=1, max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
    start=st.integers(min_value=0, max_value=SEQ_MASK),
    seed=st.integers(min_value=0, max_value=2**32),
    dup=st.floats(min_value=0, max_value=0.5),
)
def test_any_order_and_repeats_give_the_stream_once(
    stream: bytes, cuts: list[int], start: int, seed: int, dup: float
) -> None:
    rng = random.Random(seed)
    segs = _segments(stream, cuts, start)
    # repeat some segments (retransmissions), then shuffle
    segs += [s for s in segs if rng.random() < dup]
    rng.shuffle(segs)
    r = StreamReassembler(start)
    out = b"".join(r.add(seq, data) for seq, data in segs)
    assert out == stream
    assert not r.has_gap
