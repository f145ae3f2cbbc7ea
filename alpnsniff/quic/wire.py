"""QUIC wire primitives: variable-length integers (RFC 9000 §16) and bounded reads.

Functions over ``(data, pos)`` rather than a cursor object: the QUIC parsers are small and
a plain function call is the cheapest bounds-checked read CPython offers.
"""

from __future__ import annotations

from alpnsniff.errors import Truncated

LAYER = "quic"

#: RFC 9000 §16: the largest value a variable-length integer can carry.
MAX_VARINT = (1 << 62) - 1


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read one variable-length integer at ``pos``; return (value, position after it)."""
    try:
        first = data[pos]
    except IndexError:
        raise Truncated("varint: no bytes left", layer=LAYER, offset=pos) from None
    prefix = first >> 6
    if prefix == 0:
        return first, pos + 1
    length = 1 << prefix
    end = pos + length
    if end > len(data):
        raise Truncated(f"varint: needs {length} bytes", layer=LAYER, offset=pos)
    value = int.from_bytes(data[pos:end], "big") & ((1 << (8 * length - 2)) - 1)
    return value, end


def read_bytes(data: bytes, pos: int, length: int, what: str) -> tuple[bytes, int]:
    """Read exactly ``length`` bytes at ``pos``; return (bytes, position after them)."""
    end = pos + length
    if end > len(data):
        raise Truncated(
            f"{what}: needs {length} bytes, {max(len(data) - pos, 0)} left",
            layer=LAYER,
            offset=pos,
        )
    return data[pos:end], end


def encode_varint(value: int) -> bytes:
    """The shortest encoding of ``value`` (used by tests and to rebuild headers)."""
    if value < 0x40:
        return bytes((value,))
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x40000000:
        return (value | 0x80000000).to_bytes(4, "big")
    if value <= MAX_VARINT:
        return (value | 0xC000000000000000).to_bytes(8, "big")
    raise ValueError(f"{value} does not fit a QUIC varint")
