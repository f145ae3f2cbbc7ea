"""IPv4 and IPv6 fragment reassembly, bounded in datagrams, bytes, pieces and capture time.

:meth:`FragmentReassembler.add` takes one fragment and returns either the reassembled
upper-layer payload ``(protocol, bytes)`` or a short reason string: ``"fragment-held"`` (kept,
waiting for the rest) or ``"fragment-dropped"`` (refused: see the counters). Every event is
counted in the ``stats`` dict handed in (keys ``frag-*``).

Overlaps are resolved deterministically:

* an exact duplicate (same offset, same bytes already held) is ignored and counted;
* IPv4: the bytes held first win; only the gaps a new fragment fills are taken (Wireshark
  and BSD-style "first" policy), counted as ``frag-overlap``;
* IPv6: overlapping fragments abandon the whole datagram (RFC 8200 section 4.5, RFC 5722),
  counted as ``frag-overlap-abandoned``.

A second "last fragment" that disagrees on the total length, or data past it, abandons the
datagram (``frag-inconsistent``): there is no right answer to pick. Time is capture time
(``ts_ns``), never a clock.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict

# Datagrams being reassembled at once. Fragmentation is rare on today's networks (a capture
# of busy links holds a handful in flight); each pending datagram may hold up to 64 KiB, so
# this also bounds memory with MAX_FRAG_TOTAL_BYTES. The oldest is evicted, and counted.
MAX_FRAG_DATAGRAMS = 1024
# Largest reassembled payload: the IPv4 total length and IPv6 payload length are 16 bits, so
# no legal fragment ends past 65535 (the "ping of death" class of packets does).
MAX_FRAG_BYTES = 65535
# All fragment bytes held at once (16 MiB): well above any legitimate backlog, well below what
# MAX_FRAG_DATAGRAMS x MAX_FRAG_BYTES (64 MiB) would allow a flood of first fragments to pin.
MAX_FRAG_TOTAL_BYTES = 16 * 1024 * 1024
# Pieces held per datagram. 64 KiB over a 576-byte MTU path takes 114 fragments; tiny-fragment
# floods (8-byte pieces) would make every insertion slower, so more than this abandons it.
MAX_FRAG_PIECES = 128
# A datagram not completed within this much capture time is dropped: Linux's ipfrag_time and
# RFC 8200's reassembly timeout are both 60 s at most, 30 s (Linux default) is used here.
FRAG_TIMEOUT_NS = 30 * 1_000_000_000

HELD = "fragment-held"
DROPPED = "fragment-dropped"


class _Pending:
    """One datagram under reassembly: non-overlapping pieces sorted by offset."""

    __slots__ = ("created_ns", "have", "pieces", "proto", "starts", "total")

    def __init__(self, created_ns: int) -> None:
        self.created_ns = created_ns
        self.starts: list[int] = []  # piece offsets, sorted (for bisect)
        self.pieces: list[bytes] = []  # piece bytes, same order
        self.have = 0  # bytes held (pieces never overlap, so this is coverage)
        self.total = -1  # payload length once the last fragment is seen
        self.proto = -1  # upper-layer protocol once known (IPv6: from the offset-0 fragment)


class FragmentReassembler:
    """Reassembles IP fragments keyed by the caller (address pair, protocol, identification)."""

    __slots__ = ("_bytes", "_pending", "stats")

    def __init__(self, stats: dict[str, int]) -> None:
        self.stats = stats
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()  # oldest first
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def held_bytes(self) -> int:
        """Fragment bytes currently held."""
        return self._bytes

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def _discard(self, key: bytes) -> None:
        entry = self._pending.pop(key, None)
        if entry is not None:
            self._bytes -= entry.have

    def expire(self, now_ns: int) -> None:
        """Drop datagrams older than FRAG_TIMEOUT_NS of capture time (counted)."""
        pending = self._pending
        while pending:
            key, entry = next(iter(pending.items()))
            if now_ns - entry.created_ns <= FRAG_TIMEOUT_NS:
                return
            self._discard(key)
            self._count("frag-timed-out")

    def add(
        self, key: bytes, offset: int, more: bool, data: bytes, proto: int, ts_ns: int, v6: bool
    ) -> tuple[int, bytes] | str:
        """Take one fragment; ``proto`` is the next header it names (IPv6: used at offset 0)."""
        self._count("frag-seen")
        self.expire(ts_ns)
        end = offset + len(data)
        if end > MAX_FRAG_BYTES:
            self._count("frag-too-big")
            self._discard(key)
            return DROPPED
        if v6 and more and len(data) % 8:  # RFC 8200 4.5: such a fragment must be discarded
            self._count("frag-bad-length")
            return DROPPED
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= MAX_FRAG_DATAGRAMS:
                self._evict_oldest(key)
            entry = self._pending[key] = _Pending(ts_ns)
        if not more:
            if (entry.total >= 0 and entry.total != end) or (
                entry.starts and entry.starts[-1] + len(entry.pieces[-1]) > end
            ):
                self._count("frag-inconsistent")
                self._discard(key)
                return DROPPED
            entry.total = end
        elif entry.total >= 0 and end > entry.total:
            self._count("frag-inconsistent")
            self._discard(key)
            return DROPPED
        if offset == 0 or not v6:
            entry.proto = proto
        verdict = self._insert(key, entry, offset, data, v6) if data else None
        if verdict is not None:
            if verdict == DROPPED:
                self._discard(key)
            return verdict
        if entry.total >= 0 and entry.have == entry.total and entry.proto >= 0:
            self._discard(key)
            self._count("frag-reassembled")
            return entry.proto, b"".join(entry.pieces)
        return HELD

    def _insert(
        self, key: bytes, entry: _Pending, offset: int, data: bytes, v6: bool
    ) -> str | None:
        """Add what ``data`` brings that is not held yet; a reason when it is not kept."""
        end = offset + len(data)
        starts, pieces = entry.starts, entry.pieces
        i = bisect_left(starts, offset)
        if i < len(starts) and starts[i] == offset and pieces[i] == data:
            self._count("frag-duplicate")
            return HELD
        # Pieces overlapping [offset, end): the one before i may reach into it.
        first = i - 1 if i > 0 and starts[i - 1] + len(pieces[i - 1]) > offset else i
        last = i
        while last < len(starts) and starts[last] < end:
            last += 1
        new: list[tuple[int, bytes]] = []
        if first == last:
            new.append((offset, data))
        else:
            if v6:
                self._count("frag-overlap-abandoned")
                return DROPPED
            self._count("frag-overlap")
            cursor = offset
            for j in range(first, last):
                if starts[j] > cursor:
                    new.append((cursor, data[cursor - offset : starts[j] - offset]))
                cursor = max(cursor, starts[j] + len(pieces[j]))
            if cursor < end:
                new.append((cursor, data[cursor - offset :]))
            if not new:
                return HELD
        if len(starts) + len(new) > MAX_FRAG_PIECES:
            self._count("frag-too-many-pieces")
            return DROPPED
        added = sum(len(piece) for _, piece in new)
        while self._bytes + added > MAX_FRAG_TOTAL_BYTES and len(self._pending) > 1:
            self._evict_oldest(key)
        for start, piece in new:
            j = bisect_left(starts, start)
            starts.insert(j, start)
            pieces.insert(j, piece)
        entry.have += added
        self._bytes += added
        return None

    def _evict_oldest(self, keep: bytes) -> None:
        """Evict the oldest datagram other than ``keep`` (the one being added to)."""
        for key in self._pending:
            if key != keep:
                self._discard(key)
                self._count("frag-evicted")
                return
