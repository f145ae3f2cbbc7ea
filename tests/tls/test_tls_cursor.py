"""Cursor: bounds-checked reads, exact-length blocks, absolute offsets in errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alpnsniff.errors import DissectError, Malformed, Truncated
from alpnsniff.tls.cursor import Cursor


def test_integers_big_endian() -> None:
    c = Cursor(bytes(range(1, 11)))
    assert c.pull_uint8() == 0x01
    assert c.pull_uint16() == 0x0203
    assert c.pull_uint24() == 0x040506
    assert c.pull_uint32() == 0x0708090A
    assert c.eof() and c.remaining == 0 and c.tell() == 10


def test_reading_past_the_end_is_truncated_with_layer_and_offset() -> None:
    c = Cursor(b"\x01\x02\x03", "test")
    c.pull_uint16()
    with pytest.raises(Truncated) as info:
        c.pull_uint16()
    assert (info.value.layer, info.value.offset) == ("test", 2)
    assert str(info.value) == "uint16: need 2 bytes, 1 left at test+2"
    assert c.tell() == 2  # a failed read does not move the cursor


def test_block_is_a_view_with_absolute_offsets() -> None:
    c = Cursor(b"\xaa\x00\x03\x01\x02\x03\xbb")
    c.pull_uint8()
    block = c.pull_block(2)
    assert c.tell() == 6 and block.tell() == 3 and block.remaining == 3
    assert block.pull_uint8() == 1
    with pytest.raises(Malformed, match=r"2 bytes left over after the list at tls\+4"):
        block.finish("the list")
    assert block.pull_bytes(2) == b"\x02\x03"
    block.finish("the list")
    with pytest.raises(Truncated, match=r"uint8: need 1 byte, 0 left at tls\+6"):
        block.pull_uint8()  # the block ends before the outer data does
    assert c.pull_uint8() == 0xBB


def test_block_longer_than_the_data() -> None:
    c = Cursor(b"\x00\x05abc")
    with pytest.raises(Truncated, match=r"block of 5 bytes, 3 left at tls\+0"):
        c.pull_block(2)


def test_opaque_and_uint16_list() -> None:
    c = Cursor(b"\x02h2\x00\x04\x13\x01\x13\x02\x03\xff\xff\xff")
    assert c.pull_opaque(1) == b"h2"
    assert c.pull_uint16_list(2) == (0x1301, 0x1302)
    with pytest.raises(Malformed, match="uint16 vector of odd length 3"):
        c.pull_uint16_list(1)


@given(st.binary(max_size=64), st.lists(st.sampled_from(["u8", "u16", "u24", "u32", "blk1", "blk2", "op1", "v16"]), max_size=12))  # fmt: skip
def test_any_read_sequence_returns_or_raises_dissect_error(data: bytes, ops: list[str]) -> None:
    c = Cursor(data)
    try:
        for op in ops:
            if op == "u8":
                c.pull_uint8()
            elif op == "u16":
                c.pull_uint16()
            elif op == "u24":
                c.pull_uint24()
            elif op == "u32":
                c.pull_uint32()
            elif op == "blk1":
                c = c.pull_block(1)
            elif op == "blk2":
                c = c.pull_block(2)
            elif op == "op1":
                c.pull_opaque(1)
            else:
                c.pull_uint16_list(2)
            assert 0 <= c.tell() <= len(data)
    except DissectError:
        pass
