"""TCP stream reassembly for one direction of a connection, only as far as a handshake needs.

Sans-I/O: :meth:`StreamReassembler.add` takes a segment (sequence number and payload) and
returns the bytes that became contiguous, in stream order. Retransmitted and overlapping
bytes are delivered once (the first copy wins, as in tshark); out-of-order segments wait,
bounded; sequence numbers wrap modulo 2**32.
"""

from __future__ import annotations

SEQ_MOD = 1 << 32
SEQ_MASK = SEQ_MOD - 1
HALF_SPACE = 1 << 31

# A handshake flight is a few KB (a post-quantum ClientHello ~1.9 KB, a server flight with a
# certificate chain ~5-10 KB). Segments further than this ahead of the next expected byte
# cannot belong to the part of the stream we still need: they are dropped and counted.
MAX_WINDOW = 256 * 1024
# Out-of-order segments held per direction; a handshake needs a handful. More means loss or
# an attack: further segments are dropped and counted (the gap then never closes and the
# flow ends as incomplete, which is reported).
MAX_PENDING_SEGMENTS = 64
MAX_PENDING_BYTES = 128 * 1024


class StreamReassembler:
    """Contiguous delivery of one TCP direction from ``start_seq`` (the first byte's number)."""

    __slots__ = ("dropped", "next_seq", "pending", "pending_bytes", "retransmitted")

    def __init__(self, start_seq: int) -> None:
        self.next_seq = start_seq & SEQ_MASK
        self.pending: dict[int, bytes] = {}  # absolute seq -> payload, not yet contiguous
        self.pending_bytes = 0
        self.retransmitted = 0  # segments whose bytes had all been delivered already
        self.dropped = 0  # segments refused by a limit

    def add(self, seq: int, payload: bytes) -> bytes:
        """Take one segment; return the bytes now contiguous (b"" when nothing new)."""
        if not payload:
            return b""
        offset = (seq - self.next_seq) & SEQ_MASK
        if offset >= HALF_SPACE:  # starts before next_seq: a retransmission or an overlap
            behind = SEQ_MOD - offset
            if behind >= len(payload):
                self.retransmitted += 1
                return b""
            payload = payload[behind:]
            offset = 0
        if offset:
            self._hold(seq, offset, payload)
            return b""
        self.next_seq = (self.next_seq + len(payload)) & SEQ_MASK
        if not self.pending:
            return payload
        return self._drain(payload)

    def _hold(self, seq: int, offset: int, payload: bytes) -> None:
        if offset >= MAX_WINDOW:
            self.dropped += 1
            return
        held = self.pending.get(seq)
        if held is not None:
            if len(held) >= len(payload):
                self.retransmitted += 1
                return
            self.pending_bytes -= len(held)
        elif (
            len(self.pending) >= MAX_PENDING_SEGMENTS
            or self.pending_bytes + len(payload) > MAX_PENDING_BYTES
        ):
            self.dropped += 1
            return
        self.pending[seq & SEQ_MASK] = payload
        self.pending_bytes += len(payload)

    def _drain(self, head: bytes) -> bytes:
        parts = [head]
        progressed = True
        while progressed and self.pending:
            progressed = False
            for seq in list(self.pending):
                offset = (seq - self.next_seq) & SEQ_MASK
                if offset and offset < HALF_SPACE:
                    continue  # still ahead of a gap
                data = self.pending.pop(seq)
                self.pending_bytes -= len(data)
                if offset:  # starts before next_seq: keep only what is new
                    behind = SEQ_MOD - offset
                    if behind >= len(data):
                        self.retransmitted += 1
                        continue
                    data = data[behind:]
                parts.append(data)
                self.next_seq = (self.next_seq + len(data)) & SEQ_MASK
                progressed = True
        return b"".join(parts)

    @property
    def has_gap(self) -> bool:
        """True while segments wait for missing bytes before them."""
        return bool(self.pending)
