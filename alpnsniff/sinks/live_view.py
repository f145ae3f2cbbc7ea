"""The live view of ``alpnsniff live``: a terminal panel redrawn once a second.

:class:`LiveView` counts the records as they come (:meth:`LiveView.add`), takes the run's
counts when the caller has them (:meth:`LiveView.update`: ``packets``, ``kernel_packets``,
``kernel_drops``, ``kernel_freezes``, and the upstream-loss estimate ``loss_acks`` /
``loss_gaps`` when the run has it) and draws a frame for a time it is given
(:meth:`LiveView.render`): it reads no clock. :class:`LiveScreen` puts the frames on a
terminal with :class:`rich.live.Live`, redrawn in place, and leaves the last one there when
it stops.

What a frame shows: the elapsed time, packets, handshakes (total, per second over the last
frame and on average), the kernel's packets and drops, the estimated loss upstream of the
host (ACKs of bytes never seen, as Zeek's capture-loss counts them), the offered protocols
(share of the ClientHellos seen that offer each), the selected protocols (share of the
selections seen or decrypted), the selection kinds and the top server names.

Wire text is attacker-chosen. Every string drawn is a :class:`rich.text.Text` built from
plain text, on a console made with ``markup=False``, ``emoji=False`` and ``highlight=False``:
nothing is read as markup (``[bold]`` is shown as it is); and every character outside
printable ASCII is written ``\\xNN`` first (the terminal table's own escaping,
:func:`alpnsniff.sinks.table.safe_text`), so no control sequence reaches the terminal. ALPN IDs
come as :func:`~alpnsniff.tls.alpn.alpn_text` writes them.

Memory stays bounded over any run: the server names and the ALPN IDs (both chosen by the
sender: a scan of random names would grow a plain counter without end) are counted by
:class:`TopCounter`, the Space-Saving algorithm (Metwally, Agrawal, El Abbadi, 2005), which
keeps at most ``capacity`` keys; the selection kinds are a closed set.
"""

from __future__ import annotations

import heapq
import sys
from collections import Counter
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Generic, TextIO, TypeVar

from ..records import Handshake, Selection
from ..tls.alpn import alpn_name, alpn_text, offered_protocols
from .summary import plural
from .table import safe_text

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

K = TypeVar("K", bound=Hashable)

# Keys kept per counter (Space-Saving): a count is at most total/capacity above the truth,
# and any key seen more often than that is among those kept.
SNI_CAPACITY = 1_000  # server names: many distinct ones on a busy link
ALPN_CAPACITY = 256  # ALPN IDs: a handful in practice, but the client chooses them
# Rows shown per list.
TOP_DEFAULT = 8
# Seconds between two frames (LiveView.due).
FRAME_SECONDS = 1.0
NO_ALPN = "(no ALPN)"
NO_SNI = "(no SNI)"
# The selections whose protocol is known (the selected shares are among these).
_KNOWN = (Selection.VISIBLE, Selection.DECRYPTED)


class TopCounter(Generic[K]):
    """Counts of at most ``capacity`` keys (Space-Saving).

    A key not yet counted, when the counter is full, takes the place of the key with the
    least count and starts from that count plus one; :attr:`errors` keeps by how much its
    count may be over the truth (never more than ``total / capacity``). While fewer than
    ``capacity`` distinct keys have come, every count is exact.

    The least count is found with a heap of ``(count, order, key)`` holding one entry per
    key; counts only grow, so an entry is at most as large as its key's count: an entry
    found stale at the top is pushed back with the true count, and the first entry that is
    not stale is the least (amortised O(log capacity) a new key; a known key costs a dict
    update).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"TopCounter capacity {capacity}: at least 1")
        self.capacity = capacity
        self.counts: dict[K, int] = {}
        self.errors: dict[K, int] = {}
        self.total = 0  # every add, the evicted keys' included
        self.evictions = 0
        self._heap: list[tuple[int, int, K]] = []  # (count when pushed, order, key)
        self._order = 0  # ties broken by order, never by comparing keys (None and str)

    def add(self, key: K) -> None:
        self.total += 1
        counts = self.counts
        count = counts.get(key)
        if count is not None:
            counts[key] = count + 1
            return
        self._order += 1
        heap = self._heap
        if len(counts) < self.capacity:
            counts[key] = 1
            self.errors[key] = 0
            heapq.heappush(heap, (1, self._order, key))
            return
        while True:  # the least count: refresh stale entries until the top is true
            pushed, order, least = heap[0]
            actual = counts[least]
            if actual == pushed:
                break
            heapq.heapreplace(heap, (actual, order, least))
        del counts[least]
        del self.errors[least]
        self.evictions += 1
        counts[key] = pushed + 1
        self.errors[key] = pushed
        heapq.heapreplace(heap, (pushed + 1, self._order, key))

    def top(self, n: int) -> list[tuple[K, int, int]]:
        """The ``n`` keys with the highest counts: ``(key, count, error)``, most first
        (ties: in the order the keys were taken in)."""
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])[:n]
        return [(k, c, self.errors[k]) for k, c in ranked]

    def __len__(self) -> int:
        return len(self.counts)


def _alpn_label(proto: bytes | None) -> str:
    return NO_ALPN if proto is None else alpn_text(proto)


def _sni_label(sni: str | None) -> str:
    return NO_SNI if sni is None else safe_text(sni)


def _duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


class LiveView:
    """The counts a live frame shows, and the frame (see the module's docstring).

    ``start_s``: the run's start, on the clock the caller passes to :meth:`render` and
    :meth:`due` (``time.monotonic()`` say). ``label``: what is captured (the interfaces),
    escaped when drawn. ``top``: rows per list.
    """

    def __init__(
        self,
        start_s: float,
        *,
        label: str = "",
        top: int = TOP_DEFAULT,
        sni_capacity: int = SNI_CAPACITY,
        alpn_capacity: int = ALPN_CAPACITY,
    ) -> None:
        self.start_s = start_s
        self.label = label
        self.top = top
        self.handshakes = 0
        self.offers_seen = 0  # ClientHellos seen (the base of the offered shares)
        self.offers_unseen = 0  # records of a server answer alone (one-sided capture)
        self.offered: TopCounter[bytes | None] = TopCounter(alpn_capacity)
        self.selected: TopCounter[bytes] = TopCounter(alpn_capacity)
        self.selection: Counter[str] = Counter()  # closed set: the Selection values
        self.sni: TopCounter[str | None] = TopCounter(sni_capacity)
        self.stats: dict[str, int] = {}
        self._frame_s: float | None = None  # when the last frame was drawn
        self._frame_handshakes = 0  # handshakes then
        self._rate = 0.0  # handshakes/s over the last frame

    def add(self, h: Handshake) -> None:
        """Count one record."""
        self.handshakes += 1
        self.selection[h.selection.value] += 1
        self.sni.add(h.sni)
        # (None: the ClientHello was not seen, a one-sided capture; () : no ALPN offered)
        offered: tuple[bytes, ...] | None = h.alpn_offered_raw
        if offered is None:
            self.offers_unseen += 1
        else:
            self.offers_seen += 1
            protocols = offered_protocols(offered)  # each once, GREASE left out
            if protocols:
                for proto in protocols:
                    self.offered.add(proto)
            else:
                self.offered.add(None)
        if h.selection in _KNOWN and h.alpn_selected_raw:
            self.selected.add(h.alpn_selected_raw)

    def update(self, stats: Mapping[str, int]) -> None:
        """Take the run's counts as they stand (those named keep their last value)."""
        self.stats.update({k: int(v) for k, v in stats.items()})

    def due(self, now_s: float) -> bool:
        """Whether a frame is due: none drawn yet, or :data:`FRAME_SECONDS` since the last."""
        return self._frame_s is None or now_s - self._frame_s >= FRAME_SECONDS

    def render(self, now_s: float) -> RenderableType:
        """The frame at ``now_s`` (and the start of the next per-second rate)."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        last_s = self.start_s if self._frame_s is None else self._frame_s
        if now_s > last_s:
            self._rate = (self.handshakes - self._frame_handshakes) / (now_s - last_s)
        self._frame_s = now_s
        self._frame_handshakes = self.handshakes
        elapsed = now_s - self.start_s
        average = self.handshakes / elapsed if elapsed > 0 else 0.0

        stats = self.stats
        head = Text("alpnsniff live", style="bold")
        if self.label:
            head.append("  " + safe_text(self.label))
        head.append(f"  {_duration(elapsed)} elapsed")
        if "packets" in stats:
            head.append(f"  {stats['packets']:,} packets")
        rate = Text(
            f"handshakes {self.handshakes:,}  ·  {self._rate:,.1f}/s last second  ·  "
            f"{average:,.1f}/s average"
        )
        lines: list[RenderableType] = [head, rate]
        if "kernel_packets" in stats or "kernel_drops" in stats:
            kernel_packets = stats.get("kernel_packets", 0)
            drops = stats.get("kernel_drops", 0)
            line = Text(
                f"kernel: {kernel_packets:,} packets, {drops:,} dropped "
                f"({_percent(drops, kernel_packets)})"
            )
            if drops:
                line.stylize("bold red", 0, len(line))
            if stats.get("kernel_freezes"):
                line.append(f", ring frozen {stats['kernel_freezes']:,} times")
            lines.append(line)
        if "loss_acks" in stats or "loss_gaps" in stats:
            acks = stats.get("loss_acks", 0)
            gaps = stats.get("loss_gaps", 0)
            lines.append(
                Text(
                    f"upstream loss (estimated): {_percent(gaps, acks)}  ·  {gaps:,} of "
                    f"{acks:,} ACKs acknowledge bytes never seen"
                )
            )

        def table(title: str, *headers: str) -> Table:
            t = Table(title=Text(title, style="bold"), title_justify="left", box=None)
            t.add_column(Text(headers[0]), no_wrap=True, overflow="ellipsis", max_width=40)
            for h in headers[1:]:
                t.add_column(Text(h), justify="right", no_wrap=True)
            return t

        base = self.offers_seen
        offered = table(f"offered ({base:,} ClientHellos)", "ALPN", "share", "count")
        offered.add_column(Text("name"), no_wrap=True, overflow="ellipsis", max_width=28)
        for proto, count, error in self.offered.top(self.top):
            offered.add_row(
                Text(_alpn_label(proto)),
                Text(_percent(count, base)),
                Text(_count(count, error)),
                Text("" if proto is None else alpn_name(proto), style="dim"),
            )
        chosen = self.selected.total
        selected = table(f"selected ({chosen:,} known)", "ALPN", "share", "count")
        for proto, count, error in self.selected.top(self.top):
            selected.add_row(
                Text(alpn_text(proto)), Text(_percent(count, chosen)), Text(_count(count, error))
            )
        kinds = table("selection", "kind", "share", "count")
        for s in Selection:
            n = self.selection[s.value]
            if n:
                kinds.add_row(Text(s.value), Text(_percent(n, self.handshakes)), Text(f"{n:,}"))
        names = table(f"server names ({len(self.sni):,} tracked)", "SNI", "share", "count")
        for sni, count, error in self.sni.top(self.top):
            names.add_row(
                Text(_sni_label(sni)),
                Text(_percent(count, self.handshakes)),
                Text(_count(count, error)),
            )
        if self.offers_unseen:
            unseen = plural(self.offers_unseen, "answer")
            lines.append(Text(f"+ {unseen} without a ClientHello (one-sided capture)"))
        grid = Table.grid(padding=(0, 3))
        grid.add_row(offered, selected)
        grid.add_row(kinds, names)
        lines.append(Text(""))
        lines.append(grid)
        if self.sni.evictions or self.offered.evictions:
            lines.append(Text("~: an estimate (more distinct values than are tracked)", "dim"))
        return Group(*lines)


def _count(count: int, error: int) -> str:
    return f"~{count:,}" if error else f"{count:,}"


def console(stream: TextIO | None = None, *, width: int | None = None) -> Console:
    """A console that interprets nothing in its text (no markup, emoji or highlighting),
    writing to ``stream`` (default: stderr, so that rows on stdout stay apart)."""
    from rich.console import Console

    return Console(
        file=stream if stream is not None else sys.stderr,
        width=width,
        markup=False,
        emoji=False,
        highlight=False,
    )


class LiveScreen:
    """A :class:`LiveView` on a terminal, redrawn in place (:class:`rich.live.Live`, no
    thread: each frame is drawn when the caller calls :meth:`refresh`).

    On a stream that is no terminal nothing is drawn until :meth:`stop`, which writes the
    last frame once (rich's behaviour); the CLI shows the view on a terminal only.
    Neither stdout nor stderr is redirected: rows written to stdout go where they went.
    """

    def __init__(self, view: LiveView, stream: TextIO | None = None) -> None:
        self.view = view
        self.console = console(stream)
        self._live: Live | None = None

    @property
    def is_terminal(self) -> bool:
        return self.console.is_terminal

    def start(self, now_s: float | None = None) -> None:
        """Start drawing (the first frame at ``now_s``; the run's start if not given)."""
        from rich.live import Live

        if self._live is not None:
            return
        now = self.view.start_s if now_s is None else now_s
        self._live = Live(
            self.view.render(now),
            console=self.console,
            auto_refresh=False,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start(refresh=True)

    def refresh(self, now_s: float) -> bool:
        """Redraw if a frame is due (:meth:`LiveView.due`); whether it was."""
        live = self._live
        if live is None or not self.view.due(now_s):
            return False
        live.update(self.view.render(now_s), refresh=True)
        return True

    def stop(self, now_s: float | None = None) -> None:
        """Stop drawing; the last frame (at ``now_s``, when given) stays on the terminal."""
        live, self._live = self._live, None
        if live is None:
            return
        if now_s is not None:
            live.update(self.view.render(now_s))
        live.stop()  # (draws the frame once more, or once on a stream that is no terminal)
