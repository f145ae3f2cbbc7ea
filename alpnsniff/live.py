"""Sniffing from a notebook: ``alpnsniff.sniff`` (a DataFrame) and ``alpnsniff.stream``
(records as they complete), on the same capture path as ``alpnsniff live``.

Both stop after ``duration`` seconds, after ``count`` packets, when the caller stops
iterating (``stream``), or at Ctrl-C / the notebook's interrupt (``sniff``: what was
captured until then is returned, as ``alpnsniff live`` keeps it). Needs CAP_NET_RAW (root).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

from .capture.batch import PacketBatch, first_packets
from .capture.live import kernel_counts, open_live
from .flows.table import IDLE_TIMEOUT_NS
from .records import Handshake

if TYPE_CHECKING:
    import pandas as pd

    from .keys.keylog import KeyLog
    from .pipeline import RunResult

PathLike = str | os.PathLike[str]


class LiveRun:
    """One live capture: iterate :meth:`records` (once), then :meth:`result` has the counts
    (the run's, and the kernel's: ``kernel_packets``, ``kernel_drops``)."""

    def __init__(
        self,
        interfaces: str | Iterable[str],
        *,
        duration: float | None = None,
        count: int | None = None,
        filter: str | None = None,  # (the word every capture tool uses)
        keylog: PathLike | Iterable[PathLike] | None = None,
        promiscuous: bool = True,
        idle_timeout: float = IDLE_TIMEOUT_NS / 1e9,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        from .keys.keylog import KeyLog
        from .pipeline import CaptureRun

        names = [interfaces] if isinstance(interfaces, str) else list(interfaces)
        if duration is not None and not duration > 0:
            raise ValueError("duration must be a positive number of seconds")
        if count is not None and count <= 0:
            raise ValueError("count must be a positive number of packets")
        if not idle_timeout > 0:
            raise ValueError("idle_timeout must be a positive number of seconds")
        self._count = count
        self._deadline = None if duration is None else time.monotonic() + duration
        self._should_stop = should_stop
        self.stopped = False  # set (by stop()) to end the capture at the next look
        self.keylog: KeyLog | None = None
        if keylog is not None:
            self.keylog = KeyLog()
            for path in [keylog] if isinstance(keylog, str | os.PathLike) else keylog:
                self.keylog.follow(path)  # (still being written while the capture runs)
        # the filter is the kernel's (the default one when None: what the dissector needs)
        self.source = open_live(
            names, promiscuous=promiscuous, kernel_filter=filter, should_stop=self._stop_now
        )
        self._run = CaptureRun(
            self.source,
            keylog=self.keylog,
            watch=self._watch,
            idle_timeout_ns=round(idle_timeout * 1e9),
            dedup=True,
        )

    def stop(self) -> None:
        """End the capture: the packets the rings hold are still handed on."""
        self.stopped = True

    def _stop_now(self) -> bool:
        if self.stopped:
            return True
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return True
        return self._should_stop is not None and self._should_stop()

    def _watch(self, batches: Iterator[PacketBatch]) -> Iterator[PacketBatch]:
        if self._count is not None:
            batches = first_packets(batches, self._count)
        for batch in batches:
            if self.keylog is not None:
                self.keylog.read_more()
            yield batch

    def records(self) -> Iterator[Handshake]:
        """The records as they complete (the capture is closed when they end, or when the
        caller stops iterating)."""
        try:
            yield from self._run.records()
        finally:
            self.source.close()

    def result(self, handshakes: list[Handshake]) -> RunResult:
        result = self._run.result(handshakes)
        result.stats.update(kernel_counts(self.source))
        return result


def stream(
    interfaces: str | Iterable[str],
    *,
    duration: float | None = None,
    count: int | None = None,
    filter: str | None = None,
    keylog: PathLike | Iterable[PathLike] | None = None,
    promiscuous: bool = True,
    idle_timeout: float = IDLE_TIMEOUT_NS / 1e9,
) -> Iterator[Handshake]:
    """Handshake records from live interfaces as each completes (``for h in stream("eth0")``);
    stops after ``duration`` s or ``count`` packets, or when the loop is left (``break``).
    ``filter``: a BPF expression (tcpdump syntax) the kernel runs (None: the default, which
    drops only bare TCP ACKs; "": none); ``keylog``: key log files still being
    written (SSLKEYLOGFILE), read on as they grow. The capture opens at the first record
    asked for (an error, such as a missing CAP_NET_RAW, is raised there) and closes when the
    loop ends, whichever way."""
    run = LiveRun(
        interfaces,
        duration=duration,
        count=count,
        filter=filter,
        keylog=keylog,
        promiscuous=promiscuous,
        idle_timeout=idle_timeout,
    )
    yield from run.records()


def sniff(
    interfaces: str | Iterable[str],
    *,
    duration: float | None = None,
    count: int | None = None,
    filter: str | None = None,
    keylog: PathLike | Iterable[PathLike] | None = None,
    promiscuous: bool = True,
    idle_timeout: float = IDLE_TIMEOUT_NS / 1e9,
) -> pd.DataFrame:
    """The handshakes seen on live interfaces, as :func:`alpnsniff.read` gives a file's
    (the same columns; ``attrs["stats"]`` with the kernel's counts). Stops after ``duration``
    s or ``count`` packets; an interrupt (Ctrl-C, the notebook's stop button) ends the
    capture and returns what it saw. Without a limit it runs until interrupted."""
    from . import run_attrs
    from .sinks.frame import to_dataframe

    run = LiveRun(
        interfaces,
        duration=duration,
        count=count,
        filter=filter,
        keylog=keylog,
        promiscuous=promiscuous,
        idle_timeout=idle_timeout,
    )
    name = run.source.name
    with _InterruptStops(run):
        handshakes = list(run.records())
    result = run.result(handshakes)
    result.name = name
    df = to_dataframe((name, h) for h in handshakes)
    df.attrs.update(run_attrs([result]))
    return df


class _InterruptStops:
    """While inside: SIGINT stops the run instead of raising KeyboardInterrupt (main thread
    only; elsewhere signals cannot be caught and nothing changes)."""

    def __init__(self, run: LiveRun) -> None:
        self._run = run
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self._run.stop()

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
