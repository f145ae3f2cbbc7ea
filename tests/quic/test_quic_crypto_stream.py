"""CRYPTO stream reassembly: order, duplicates, overlaps, caps, message boundaries."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alpnsniff.quic.crypto_stream import (
    ERROR_TOO_FRAGMENTED,
    ERROR_TOO_LARGE,
    MAX_CRYPTO_BYTES,
    MAX_CRYPTO_FRAGMENTS,
    CryptoReassembler,
)

HELLO = bytes([1]) + (300).to_bytes(3, "big") + bytes(range(256)) + bytes(44)


def test_in_order() -> None:
    r = CryptoReassembler()
    r.add(0, HELLO[:100])
    assert r.contiguous == HELLO[:100]
    assert r.handshake_message() is None
    r.add(100, HELLO[100:])
    assert r.handshake_message() == HELLO
    assert r.duplicate_bytes == 0 and not r.conflict and r.error is None


def test_out_of_order_with_gap_then_fill() -> None:
    r = CryptoReassembler()
    r.add(200, HELLO[200:])
    assert r.contiguous_length == 0
    assert r.received_bytes == 104
    r.add(0, HELLO[:50])
    assert r.contiguous == HELLO[:50]
    r.add(50, HELLO[50:200])
    assert r.contiguous == HELLO
    assert r.handshake_message() == HELLO


def test_duplicates_and_overlaps_are_counted_once() -> None:
    r = CryptoReassembler()
    r.add(0, HELLO[:100])
    r.add(0, HELLO[:100])  # a retransmission
    r.add(50, HELLO[50:150])  # overlaps 50 bytes
    assert r.duplicate_bytes == 150
    assert r.contiguous == HELLO[:150]
    assert not r.conflict


def test_conflicting_overlap_keeps_first_bytes() -> None:
    r = CryptoReassembler()
    r.add(0, b"abcdef")
    r.add(3, b"XYZghi")
    assert r.contiguous == b"abcdefghi"
    assert r.conflict


def test_fragment_spanning_several_holes() -> None:
    r = CryptoReassembler()
    for start in (10, 30, 50):
        r.add(start, HELLO[start : start + 10])
    r.add(0, HELLO[:70])
    assert r.contiguous == HELLO[:70]
    assert r.duplicate_bytes == 30


def test_touching_fragments_merge() -> None:
    r = CryptoReassembler()
    r.add(10, b"b" * 10)
    r.add(0, b"a" * 10)
    assert r.contiguous == b"a" * 10 + b"b" * 10


def test_too_large_is_an_error_value() -> None:
    r = CryptoReassembler()
    r.add(MAX_CRYPTO_BYTES - 2, b"abcd")
    assert r.error == ERROR_TOO_LARGE
    assert r.received_bytes == 2  # what fits is kept
    r2 = CryptoReassembler()
    r2.add(10**15, b"x")  # a huge offset allocates nothing
    assert r2.error == ERROR_TOO_LARGE and r2.received_bytes == 0


def test_declared_message_larger_than_limit() -> None:
    r = CryptoReassembler(limit=1000)
    r.add(0, bytes([1, 0, 0x10, 0]))  # declares 4096 bytes
    assert r.handshake_message() is None
    assert r.error == ERROR_TOO_LARGE


def test_too_many_holes_is_an_error_value() -> None:
    r = CryptoReassembler()
    for i in range(MAX_CRYPTO_FRAGMENTS + 10):
        r.add(2 * i + 1, b"x")
    assert r.error == ERROR_TOO_FRAGMENTED
    assert r.received_bytes == MAX_CRYPTO_FRAGMENTS
    r.add(0, bytes(2 * MAX_CRYPTO_FRAGMENTS))  # filling the holes still works
    assert r.contiguous_length == 2 * MAX_CRYPTO_FRAGMENTS


def test_second_message_after_the_first() -> None:
    second = bytes([1, 0, 0, 2]) + b"hi"
    r = CryptoReassembler()
    r.add(len(HELLO), second)
    r.add(0, HELLO)
    assert r.handshake_message(0) == HELLO
    assert r.handshake_message(len(HELLO)) == second
    assert r.handshake_message(len(HELLO) + len(second)) is None


@st.composite
def split_and_shuffle(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes]]]:
    data = draw(st.binary(min_size=1, max_size=600))
    cuts = sorted(draw(st.sets(st.integers(1, len(data)), max_size=20)) | {len(data)})
    pieces, start = [], 0
    for cut in cuts:
        pieces.append((start, data[start:cut]))
        start = cut
    extra = draw(st.lists(st.sampled_from(pieces), max_size=5))  # retransmissions
    overlaps = [
        (a, data[a:b])
        for a, b in draw(
            st.lists(st.tuples(st.integers(0, len(data)), st.integers(0, len(data))), max_size=5)
        )
        if a < b
    ]
    return data, draw(st.permutations(pieces + extra + overlaps))


@given(split_and_shuffle())
@settings(max_examples=300, deadline=None)
def test_any_order_any_duplicates_gives_the_stream(
    case: tuple[bytes, list[tuple[int, bytes]]],
) -> None:
    data, fragments = case
    r = CryptoReassembler()
    for offset, piece in fragments:
        r.add(offset, piece)
    assert r.contiguous == data
    assert r.received_bytes == len(data)
    assert not r.conflict and r.error is None
    assert r.duplicate_bytes == sum(len(p) for _, p in fragments) - len(data)


@given(st.lists(st.tuples(st.integers(0, 2**62), st.binary(max_size=300)), max_size=60))
@settings(max_examples=300, deadline=None)
def test_arbitrary_adds_never_raise_and_stay_bounded(adds: list[tuple[int, bytes]]) -> None:
    r = CryptoReassembler(limit=4096)
    for offset, piece in adds:
        r.add(offset, piece)
    assert r.received_bytes <= 4096
    assert r.contiguous_length <= 4096
    r.handshake_message()
