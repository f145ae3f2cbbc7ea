"""The answer bookkeeping every transport shares, written once.

A ClientHello waits as an :class:`~.outcome.Offer` until the server answers it; a server
answer that needs the decryption stage waits beside its offer until the decrypted facts
come in (``settle``); whatever is still waiting when a flow leaves the table goes out as
``unseen`` (``flush``). TCP and QUIC flows (and DTLS next) each hold one :class:`AnswerBook`
and decide only *what* the server said; the book decides which record leaves when.
"""

from __future__ import annotations

import heapq
from collections import Counter

from ..records import Handshake
from .outcome import UNSEEN, Answer, Offer, record, with_note

#: Note on a record whose keys were given but whose encrypted flight never came.
NOTE_FLIGHT_NOT_SEEN = "keys-given-but-flight-not-seen"


class OfferLedger:
    """The frames of every ClientHello still waiting, across all flows of a run: the lowest
    is the *low water mark* below which no record can come any more, so records can leave in
    frame order while the capture is still being read (:class:`~alpnsniff.pipeline.CaptureRun`).
    """

    __slots__ = ("_heap", "_open")

    def __init__(self) -> None:
        self._open: dict[int, int] = {}  # frame -> offers of it still waiting
        self._heap: list[int] = []  # those frames, with closed ones removed lazily

    def opened(self, frame: int) -> None:
        waiting = self._open.get(frame, 0)
        if not waiting:
            heapq.heappush(self._heap, frame)
        self._open[frame] = waiting + 1

    def closed(self, frame: int) -> None:
        left = self._open[frame] - 1
        if left:
            self._open[frame] = left
        else:
            del self._open[frame]

    def low_water(self) -> int | None:
        """The lowest frame of a waiting ClientHello (None: none waits)."""
        heap = self._heap
        while heap and heap[0] not in self._open:
            heapq.heappop(heap)
        return heap[0] if heap else None


class AnswerBook:
    """ClientHellos waiting for the server, and the one answer waiting for decryption."""

    __slots__ = ("awaiting", "ledger", "pending", "retry", "stats", "transport")

    def __init__(
        self, transport: str, stats: Counter[str], ledger: OfferLedger | None = None
    ) -> None:
        self.transport = transport  # the stats prefix: "tcp", "quic"
        self.stats = stats
        self.ledger = ledger  # the run's waiting frames (None: nobody orders the records)
        self.pending: list[Offer] = []  # in the order the client sent them
        self.awaiting: tuple[Offer, Answer] | None = None  # answered, waiting for decryption
        # a HelloRetryRequest was answered: the next ClientHello follows it
        self.retry = False

    @property
    def waiting(self) -> bool:
        """A ClientHello or an answer is still waiting."""
        return bool(self.pending) or self.awaiting is not None

    def offer(self, offer: Offer) -> None:
        self.pending.append(offer)
        if self.ledger is not None:
            self.ledger.opened(offer.frame)

    def _record(self, offer: Offer, answer: Answer) -> Handshake:
        """The record of an offer that stops waiting."""
        if self.ledger is not None:
            self.ledger.closed(offer.frame)
        return record(offer, answer)

    def answer(self, answer: Answer) -> Handshake:
        """The first waiting ClientHello got its (final, or HelloRetryRequest) answer."""
        return self._record(self.pending.pop(0), answer)

    def answer_unoffered(self, offer: Offer, answer: Answer) -> Handshake:
        """The server answered a ClientHello the capture does not hold (``offer.client`` is
        None: a one-sided capture, or one begun late): its record leaves at once, outside
        the ledger (nothing waited for it), and is counted."""
        self.stats[f"{self.transport}_server_hello_without_client_hello"] += 1
        return record(offer, answer)

    def supersede(self) -> None:
        """The waiting ClientHellos are replaced by the next one (QUIC: a new attempt after a
        Retry or Version Negotiation, or after a HelloRetryRequest): no record of theirs."""
        if self.ledger is not None:
            for offer in self.pending:
                self.ledger.closed(offer.frame)
        self.pending.clear()

    def await_decryption(self, answer: Answer) -> None:
        """The first waiting ClientHello was answered; the rest of the answer is encrypted and
        the run has its keys: the record waits for :meth:`settle`."""
        self.awaiting = (self.pending.pop(0), answer)

    def settled_answer(self) -> tuple[Offer, Answer]:
        """The offer and answer waiting for decryption (there must be one)."""
        if self.awaiting is None:
            raise RuntimeError("nothing awaits decryption")
        return self.awaiting

    def settle(self, answer: Answer) -> list[Handshake]:
        """The decrypted facts are in: that record leaves, and every other waiting one."""
        offer, _ = self.settled_answer()
        self.awaiting = None
        return [self._record(offer, answer), *self.flush()]

    def flush(self) -> list[Handshake]:
        """Every record still waiting leaves now: an answer without its decrypted facts keeps
        what the clear text said (with a note), ClientHellos without answer are ``unseen``."""
        out: list[Handshake] = []
        if self.awaiting is not None:
            offer, answer = self.awaiting
            self.awaiting = None
            self.stats[f"{self.transport}_decryption_unfinished"] += 1
            out.append(self._record(offer, with_note(answer, NOTE_FLIGHT_NOT_SEEN)))
        waiting = self.pending
        if waiting:
            self.pending = []
            self.stats[f"{self.transport}_unanswered_client_hellos"] += len(waiting)
            out.extend(self._record(offer, UNSEEN) for offer in waiting)
        return out
