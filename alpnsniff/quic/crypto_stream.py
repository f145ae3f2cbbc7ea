"""Reassembly of one direction's Initial-space CRYPTO stream (RFC 9000 §19.6, §7.5).

CRYPTO frames may arrive out of order (Chromium's "chaos protection" shuffles and splits
its ClientHello), duplicated (retransmissions), overlapping, and spread over several
Initial packets. The reassembler keeps one buffer and the sorted list of byte ranges it
holds; the first-seen byte wins where fragments overlap, and a disagreement is flagged.

Memory is bounded twice: by :data:`MAX_CRYPTO_BYTES` of stream and by
:data:`MAX_CRYPTO_FRAGMENTS` disjoint ranges. A cap that bites is an error value
(:attr:`CryptoReassembler.error`), never an exception.
"""

from __future__ import annotations

from bisect import bisect_left

#: Bytes of Initial-space CRYPTO stream kept per direction. That stream carries only the
#: ClientHello (client) or ServerHello (server): real ClientHellos are 0.3–2 KiB, up to
#: ~10 KiB with post-quantum key shares, ECH and large transport parameters. 64 KiB is
#: far above anything plausible and still a small, fixed cost per connection.
MAX_CRYPTO_BYTES = 64 * 1024
#: Disjoint ranges held at once. Chromium splits a ClientHello into a few dozen pieces
#: at most; hundreds of holes mean a hostile or broken sender, and each range costs a
#: list entry and a step of every insertion.
MAX_CRYPTO_FRAGMENTS = 256
#: TLS handshake header: msg_type (1) and uint24 length (RFC 8446 §4).
HANDSHAKE_HEADER_LENGTH = 4

ERROR_TOO_LARGE = "quic-crypto-too-large"
ERROR_TOO_FRAGMENTED = "quic-crypto-too-fragmented"


class CryptoReassembler:
    """Collects CRYPTO frame data and exposes the contiguous prefix from offset 0."""

    __slots__ = ("_buf", "_ranges", "conflict", "duplicate_bytes", "error", "limit")

    def __init__(self, limit: int = MAX_CRYPTO_BYTES) -> None:
        self._buf = bytearray()
        #: Sorted, disjoint, non-touching [start, end) ranges held in ``_buf``.
        self._ranges: list[tuple[int, int]] = []
        #: Bytes of stream accepted at most (defaults to :data:`MAX_CRYPTO_BYTES`).
        self.limit = limit
        #: Bytes received again (retransmissions, overlaps): counted, not stored twice.
        self.duplicate_bytes = 0
        #: True once an overlapping fragment disagreed with bytes already held.
        self.conflict = False
        #: The first cap that bit (:data:`ERROR_TOO_LARGE`, :data:`ERROR_TOO_FRAGMENTED`).
        self.error: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes held (the stream from offset 0 up to its highest received byte)."""
        return len(self._buf)

    def add(self, offset: int, data: bytes) -> None:
        """Take one CRYPTO frame's data at ``offset``; bytes past the limit are dropped."""
        if not data:
            return
        end = offset + len(data)
        if end > self.limit:
            self.error = self.error or ERROR_TOO_LARGE
            if offset >= self.limit:
                return
            data = data[: self.limit - offset]
            end = self.limit
        ranges = self._ranges
        # First range that ends at or after ``offset`` (touching ranges merge).
        i = bisect_left(ranges, offset, key=lambda r: r[1])
        j = i
        while j < len(ranges) and ranges[j][0] <= end:
            j += 1
        if i == j and len(ranges) >= MAX_CRYPTO_FRAGMENTS:
            self.error = self.error or ERROR_TOO_FRAGMENTED
            return
        buf = self._buf
        if end > len(buf):
            buf.extend(bytes(end - len(buf)))
        cursor = offset
        for start, stop in ranges[i:j]:
            if start > cursor:
                buf[cursor:start] = data[cursor - offset : start - offset]
            lo, hi = max(start, cursor), min(stop, end)
            if hi > lo:
                self.duplicate_bytes += hi - lo
                if buf[lo:hi] != data[lo - offset : hi - offset]:
                    self.conflict = True
            cursor = max(cursor, stop)
        if cursor < end:
            buf[cursor:end] = data[cursor - offset :]
        merged_start = min(offset, ranges[i][0]) if i < j else offset
        merged_end = max(end, ranges[j - 1][1]) if i < j else end
        ranges[i:j] = [(merged_start, merged_end)]

    @property
    def contiguous_length(self) -> int:
        """How many bytes from offset 0 are held without a gap."""
        ranges = self._ranges
        return ranges[0][1] if ranges and ranges[0][0] == 0 else 0

    @property
    def contiguous(self) -> bytes:
        """The bytes from offset 0 up to the first gap."""
        return bytes(self._buf[: self.contiguous_length])

    @property
    def received_bytes(self) -> int:
        """Distinct stream bytes held (contiguous or not)."""
        return sum(stop - start for start, stop in self._ranges)

    def handshake_message(self, start: int = 0) -> bytes | None:
        """The TLS handshake message (header included) at ``start``, once it is complete.

        None while bytes are missing. A message whose declared length cannot fit the
        limit sets :attr:`error` to :data:`ERROR_TOO_LARGE`: it will never complete. Call
        again with ``start`` past a returned message to get the next one (after a
        HelloRetryRequest the Initial stream carries a second ClientHello/ServerHello).
        """
        have = self.contiguous_length
        if have < start + HANDSHAKE_HEADER_LENGTH:
            return None
        end = (
            start
            + HANDSHAKE_HEADER_LENGTH
            + int.from_bytes(self._buf[start + 1 : start + 4], "big")
        )
        if end > self.limit:
            self.error = self.error or ERROR_TOO_LARGE
            return None
        if have < end:
            return None
        return bytes(self._buf[start:end])
