"""One bounds-checked read cursor over bytes (in the spirit of aioquic's ``Buffer``).

Every read checks the bounds and raises :class:`~alpnsniff.errors.Truncated` with the
layer and the absolute offset where the bytes ran out. A length-prefixed block is read
with :meth:`Cursor.pull_block`, which returns a sub-cursor over exactly that block (no
copy); :meth:`Cursor.finish` then says that the block was consumed exactly, and raises
:class:`~alpnsniff.errors.Malformed` when bytes are left over.
"""

from __future__ import annotations

import struct

from alpnsniff.errors import Malformed, Truncated

__all__ = ["Cursor"]

_UINT16_FORMATS: dict[int, struct.Struct] = {}


def _bytes(n: int) -> str:
    return "1 byte" if n == 1 else f"{n} bytes"


def _uint16_struct(count: int) -> struct.Struct:
    """A cached ``struct.Struct`` for ``count`` big-endian uint16 values."""
    fmt = _UINT16_FORMATS.get(count)
    if fmt is None:
        fmt = struct.Struct(f">{count}H")
        if len(_UINT16_FORMATS) < 512:  # bounded cache: lists longer than this are rare
            _UINT16_FORMATS[count] = fmt
    return fmt


class Cursor:
    """Reads big-endian integers and byte strings from ``data[start:end]``.

    Offsets in errors are absolute positions in ``data``, so a sub-cursor reports where
    in the whole message a field went wrong.
    """

    __slots__ = ("_data", "_end", "_pos", "layer")

    def __init__(
        self, data: bytes, layer: str = "tls", *, start: int = 0, end: int | None = None
    ) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end
        self.layer = layer

    @property
    def data(self) -> bytes:
        """The whole underlying buffer (offsets from :meth:`tell` index into it)."""
        return self._data

    # -- position -------------------------------------------------------------------

    def tell(self) -> int:
        """Absolute offset of the next byte to read."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Bytes left before the end of this cursor."""
        return self._end - self._pos

    def eof(self) -> bool:
        """True when every byte of this cursor has been read."""
        return self._pos >= self._end

    def finish(self, what: str) -> None:
        """Raise :class:`Malformed` unless the cursor was consumed exactly."""
        if self._pos != self._end:
            raise Malformed(
                f"{_bytes(self._end - self._pos)} left over after {what}",
                layer=self.layer,
                offset=self._pos,
            )

    def _short(self, need: int, what: str) -> Truncated:
        have = self._end - self._pos
        return Truncated(
            f"{what}: need {_bytes(need)}, {have} left", layer=self.layer, offset=self._pos
        )

    # -- integers -------------------------------------------------------------------

    def pull_uint8(self) -> int:
        p = self._pos
        if p >= self._end:
            raise self._short(1, "uint8")
        self._pos = p + 1
        return self._data[p]

    def pull_uint16(self) -> int:
        p = self._pos
        if p + 2 > self._end:
            raise self._short(2, "uint16")
        self._pos = p + 2
        d = self._data
        return (d[p] << 8) | d[p + 1]

    def pull_uint24(self) -> int:
        p = self._pos
        if p + 3 > self._end:
            raise self._short(3, "uint24")
        self._pos = p + 3
        d = self._data
        return (d[p] << 16) | (d[p + 1] << 8) | d[p + 2]

    def pull_uint32(self) -> int:
        p = self._pos
        if p + 4 > self._end:
            raise self._short(4, "uint32")
        self._pos = p + 4
        return int.from_bytes(self._data[p : p + 4], "big")

    def _span(self, len_size: int, what: str) -> tuple[int, int]:
        """Read a ``len_size``-byte length and step over that many bytes: (start, end)."""
        p = self._pos
        d = self._data
        if len_size == 1:
            if p >= self._end:
                raise self._short(1, f"{what} length")
            n = d[p]
        elif len_size == 2:
            if p + 2 > self._end:
                raise self._short(2, f"{what} length")
            n = (d[p] << 8) | d[p + 1]
        elif len_size == 3:
            if p + 3 > self._end:
                raise self._short(3, f"{what} length")
            n = (d[p] << 16) | (d[p + 1] << 8) | d[p + 2]
        else:
            raise ValueError(f"length prefix of {len_size} bytes")  # a programming error
        start = p + len_size
        stop = start + n
        if stop > self._end:
            raise Truncated(
                f"{what} of {n} bytes, {self._end - start} left", layer=self.layer, offset=p
            )
        self._pos = stop
        return start, stop

    # -- byte strings ---------------------------------------------------------------

    def pull_bytes(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        p = self._pos
        if p + n > self._end:
            raise self._short(n, "bytes")
        self._pos = p + n
        return self._data[p : p + n]

    def pull_rest(self) -> bytes:
        """Every byte left."""
        p = self._pos
        self._pos = self._end
        return self._data[p : self._end]

    def skip(self, n: int) -> None:
        p = self._pos
        if p + n > self._end:
            raise self._short(n, "skip")
        self._pos = p + n

    def pull_block(self, len_size: int) -> Cursor:
        """A sub-cursor over the block that a ``len_size``-byte length prefixes.

        The caller reads the block and calls :meth:`finish` on it: bytes left inside a
        block are :class:`Malformed`. This cursor moves past the block at once.
        """
        start, stop = self._span(len_size, "block")
        return Cursor(self._data, self.layer, start=start, end=stop)

    def pull_opaque(self, len_size: int) -> bytes:
        """A length-prefixed byte string (``opaque x<..>`` in TLS notation)."""
        start, stop = self._span(len_size, "opaque")
        return self._data[start:stop]

    def pull_uint16_list(self, len_size: int) -> tuple[int, ...]:
        """A length-prefixed vector of uint16 (cipher suites, groups, versions...)."""
        p = self._pos
        start, stop = self._span(len_size, "vector")
        n = stop - start
        if n & 1:
            raise Malformed(f"uint16 vector of odd length {n}", layer=self.layer, offset=p)
        return _uint16_struct(n >> 1).unpack_from(self._data, start)
