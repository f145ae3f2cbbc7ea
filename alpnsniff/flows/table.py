"""The flow table: every connection in handshake, of every transport, in one place.

It holds the flows (each under both directions' keys), remembers the keys of finished ones
(two generations, so memory is bounded and a long-running connection costs one look-up a
packet), and enforces the limits, each counted when it bites:

- **idle time**: :meth:`FlowTable.tick` (called with the capture time of each packet that
  reaches the table, and by a live source when the link is quiet) evicts flows silent for
  ``IDLE_TIMEOUT_NS``;
- **count**: more than ``MAX_FLOWS`` flows evicts the least recently active;
- **bytes**: more than ``MAX_BUFFERED_BYTES`` buffered across all flows evicts the least
  recently active until the total is back under the budget.

An evicted flow is *forgotten, not judged*: its waiting records leave as ``unseen`` and its
next packet (after a pause, or a timestamp that jumped) starts it afresh. A flow that
reaches a final state leaves at once; ``DONE`` and ``NOT_TLS`` flows are remembered,
``GAVE_UP`` ones are not. The table keeps no clock: time comes in with the packets.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar, Final, Protocol

from ..net.segment import Segment
from ..records import Handshake
from .state import DONE, GAVE_UP, NOT_TLS, FlowState

# Flows in handshake (or probing) state at once; beyond this the least recently active are
# evicted (their waiting ClientHellos reported as unseen, the eviction counted). A flow
# stalled after its ClientHello holds ~3.3 KB besides its buffered bytes (measured: 200,000
# stalled hellos through the CLI, bench/run_floods.py), so 40,000 of them take ~130 MB on
# top of the ~30 MB process. Real handshakes take milliseconds: even 20,000 new connections
# a second keep only a few thousand in flight.
MAX_FLOWS: Final = 40_000
# Bytes buffered across all flows (probe segments, out-of-order segments, partial records and
# messages, CRYPTO streams). Per-flow caps bound one flow (~400 KB at worst); this bounds
# their sum, so 20,000 connections each stalling inside a 16 KB ClientHello cannot take
# 300 MB. 64 MB holds ~4,000 of the largest real ClientHellos (Chromium's post-quantum key
# shares, ~16 KB with a certificate compression list) at once.
MAX_BUFFERED_BYTES: Final = 64 * 1024 * 1024
# When the byte budget bites, evict down to this share of it, so that a flood does not pay an
# eviction per packet.
BUDGET_LOW_WATER: Final = 0.9
# A flow silent this long (capture time) is evicted: handshakes take milliseconds to seconds;
# two minutes matches the usual TCP idle timeouts of flow meters.
IDLE_TIMEOUT_NS: Final = 120 * 1_000_000_000
# How often (capture time) the idle flows are looked for.
SWEEP_INTERVAL_NS: Final = 10 * 1_000_000_000
# Keys of finished flows remembered, in two generations: when the young one holds this many,
# the old one is dropped. ~40 MB at most; a forgotten connection that is still running is
# looked at once more and forgotten again (its data is not a handshake).
REMEMBER_GENERATION: Final = 200_000
# Error messages kept for the report (all are counted in stats; the text of the first few helps).
MAX_ERRORS_KEPT: Final = 100


class Flow(Protocol):
    """What the table needs of a transport's flow (TCP, QUIC; DTLS next)."""

    transport: ClassVar[str]  # the stats prefix: "tcp", "quic"
    key: bytes  # the key of the direction that opened the flow
    state: FlowState
    last_ts: int  # capture time of its last packet
    charged: int  # its buffered bytes, as last counted against the byte budget
    errors: list[str]

    def on_packet(self, key: bytes, seg: Segment, frame: int, ts_ns: int) -> list[Handshake]: ...

    def buffered(self) -> int: ...

    def remembered(self) -> object: ...

    def flush(self) -> list[Handshake]: ...

    def abandon(self, *, at_end: bool) -> list[Handshake]: ...


class Missing:
    """The type of :data:`MISSING`."""


#: What :meth:`Remembered.get` returns for a key it does not hold.
MISSING: Final = Missing()


class Remembered:
    """Keys of finished flows of one IP protocol and what is remembered of each, in two
    generations. The hot loop reads ``young`` and ``old`` directly (re-reading both after
    anything that may have turned a generation)."""

    __slots__ = ("old", "stats", "young")

    def __init__(self, stats: Counter[str]) -> None:
        self.young: dict[bytes, object] = {}
        self.old: dict[bytes, object] = {}
        self.stats = stats

    def __len__(self) -> int:
        return len(self.young) + len(self.old)

    def get(self, key: bytes) -> object:
        value = self.young.get(key, MISSING)
        return self.old.get(key, MISSING) if value is MISSING else value

    def put(self, key: bytes, value: object) -> None:
        young = self.young
        young[key] = value
        if len(young) >= REMEMBER_GENERATION:  # full: it becomes the old one, that one goes
            self.old = young
            self.young = {}
            self.stats["remembered_generations_dropped"] += 1

    def forget(self, key: bytes) -> None:
        self.young.pop(key, None)
        self.old.pop(key, None)


def describe_error(err: Exception) -> str:
    """An unexpected exception as one line for the report: its type and message, cut to 200
    characters, anything unprintable escaped (a message may quote wire bytes)."""
    text = f"{type(err).__name__}: {err}"[:200]
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def shard_of(sport: int, dport: int, shards: int) -> int:
    """Which of ``shards`` processes keeps the flow with these ports (``--jobs``): the same
    for both directions, spread over the low bytes that vary most (the client's port)."""
    return ((sport ^ dport) & 255) % shards


def reverse_key(key: bytes) -> bytes:
    """The other direction's key: ``src + dst + sport + dport`` with both pairs swapped."""
    half = (len(key) - 4) // 2
    return key[half : 2 * half] + key[:half] + key[-2:] + key[-4:-2]


class FlowTable:
    """Active flows by (IP protocol, key), least recently active first; remembered keys."""

    __slots__ = (
        "_active",
        "_order",
        "buffered",
        "errors",
        "idle_timeout_ns",
        "last_sweep",
        "max_buffered",
        "max_flows",
        "remembered",
        "stats",
    )

    def __init__(
        self,
        stats: Counter[str],
        *,
        max_flows: int = MAX_FLOWS,
        max_buffered: int = MAX_BUFFERED_BYTES,
        idle_timeout_ns: int = IDLE_TIMEOUT_NS,
        protocols: tuple[int, ...] = (6, 17),
    ) -> None:
        self.stats = stats
        self.max_flows = max_flows
        self.max_buffered = max_buffered
        self.idle_timeout_ns = idle_timeout_ns
        self._active: dict[int, dict[bytes, Flow]] = {p: {} for p in protocols}
        # every active flow once, least recently active first (a dict keeps insertion order;
        # a flow is moved to the end by each of its packets), with its IP protocol and the
        # other direction's key
        self._order: dict[Flow, tuple[int, bytes]] = {}
        self.remembered: dict[int, Remembered] = {p: Remembered(stats) for p in protocols}
        self.buffered = 0  # bytes buffered across all flows, as last counted
        self.errors: list[str] = []  # the first MAX_ERRORS_KEPT flow errors, for the report
        self.last_sweep = 0  # capture time of the last look for idle flows

    def __len__(self) -> int:
        return len(self._order)

    # ------------------------------------------------------------------ look-ups
    def get(self, proto: int, key: bytes) -> Flow | None:
        return self._active[proto].get(key)

    def remember(self, proto: int, key: bytes, value: object, reverse: object) -> None:
        """Remember a 5-tuple without a flow (e.g. UDP that no transport recognises)."""
        known = self.remembered[proto]
        known.put(key, value)
        known.put(reverse_key(key), reverse)

    def unremember(self, proto: int, key: bytes) -> None:
        """A new connection on a remembered 5-tuple: forget both directions' keys."""
        known = self.remembered[proto]
        known.forget(key)
        known.forget(reverse_key(key))

    # ------------------------------------------------------------------ flows
    def add(self, proto: int, flow: Flow) -> list[Handshake]:
        """Track a new flow under both directions' keys; evicts the least recently active
        flows when there are more than ``max_flows``."""
        active = self._active[proto]
        key = flow.key
        rkey = reverse_key(key)
        active[key] = flow
        active[rkey] = flow
        self._order[flow] = (proto, rkey)
        if len(self._order) <= self.max_flows:
            return []
        out: list[Handshake] = []
        while len(self._order) > self.max_flows:
            oldest = next(iter(self._order))
            self.stats[f"{oldest.transport}_evicted_table_full"] += 1
            out.extend(self.evict(oldest))
        return out

    def after_packet(self, flow: Flow, carried_data: bool = True) -> list[Handshake]:
        """Book a flow's packet: a flow in a final state leaves (remembered or not), an
        active one becomes the most recent and, when the packet ``carried_data`` (only then
        can a flow's buffers have grown), its buffered bytes are counted."""
        state = flow.state
        if state is DONE or state is NOT_TLS:
            return self._retire(flow, remember=True)
        if state is GAVE_UP:
            return self._retire(flow, remember=False)
        order = self._order
        place = order.pop(flow, None)
        if place is not None:
            order[flow] = place
        if not carried_data:
            return []
        now = flow.buffered()
        self.buffered += now - flow.charged
        flow.charged = now
        if self.buffered <= self.max_buffered:
            return []
        out: list[Handshake] = []
        low = self.max_buffered * BUDGET_LOW_WATER
        while self.buffered > low and order:
            oldest = next(iter(order))
            self.stats[f"{oldest.transport}_evicted_byte_budget"] += 1
            out.extend(self.evict(oldest))
        return out

    def _drop(self, flow: Flow) -> tuple[int, bytes]:
        """Take a flow out of the active set: its protocol and other direction's key."""
        place = self._order.pop(flow)
        active = self._active[place[0]]
        active.pop(flow.key, None)
        active.pop(place[1], None)
        self.buffered -= flow.charged
        flow.charged = 0
        errors = self.errors
        if flow.errors and len(errors) < MAX_ERRORS_KEPT:
            errors.extend(flow.errors[: MAX_ERRORS_KEPT - len(errors)])
        return place

    def _retire(self, flow: Flow, *, remember: bool) -> list[Handshake]:
        proto, rkey = self._drop(flow)
        if remember:
            value = flow.remembered()
            known = self.remembered[proto]
            if isinstance(value, tuple):
                known.put(flow.key, value[0])
                known.put(rkey, value[1])
            else:
                known.put(flow.key, value)
                known.put(rkey, value)
        return flow.flush()

    def evict(self, flow: Flow) -> list[Handshake]:
        """Forget a flow without a verdict: its next packet starts afresh."""
        if flow not in self._order:
            return []
        self._drop(flow)
        return self._abandon(flow, at_end=False)

    def _abandon(self, flow: Flow, *, at_end: bool) -> list[Handshake]:
        """A flow leaves without its facts; an exception of its own is counted (never the
        end of the run, nor the loss of the other flows' records)."""
        try:
            return flow.abandon(at_end=at_end)
        except Exception as err:  # counted as the hot loop counts a packet's
            self.stats["internal_error"] += 1
            if len(self.errors) < MAX_ERRORS_KEPT:
                self.errors.append(f"internal error leaving a flow: {describe_error(err)}")
            return []

    # ------------------------------------------------------------------ time
    def tick(self, now_ns: int) -> list[Handshake]:
        """Time has come to ``now_ns`` (a packet's capture time, or a live source's clock
        when the link is quiet): evict the flows idle for ``idle_timeout_ns``, looked for
        once every ``SWEEP_INTERVAL_NS`` (a quarter of the timeout when that is shorter)."""
        if now_ns - self.last_sweep <= min(SWEEP_INTERVAL_NS, self.idle_timeout_ns >> 2):
            return []
        self.last_sweep = now_ns
        horizon = now_ns - self.idle_timeout_ns
        idle = [f for f in self._order if f.last_ts < horizon]
        out: list[Handshake] = []
        for flow in idle:
            self.stats[f"{flow.transport}_evicted_idle"] += 1
            out.extend(self.evict(flow))
        return out

    def finish(self) -> list[Handshake]:
        """End of input: every flow still waiting reports what it has."""
        out: list[Handshake] = []
        for flow in list(self._order):
            self._drop(flow)
            out.extend(self._abandon(flow, at_end=True))
        return out
