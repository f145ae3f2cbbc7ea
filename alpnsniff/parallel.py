"""Use every core on a big capture file: each process reads the file and keeps a share of
the flows (:class:`~alpnsniff.pipeline.Dissector` sharding); the results are merged.

Why processes: the hot path is pure Python, so threads would share one interpreter lock.
Reading the file twice costs ~1 µs a packet per process; the handshake work, which
dominates, is split. Only for regular files (a pipe cannot be read twice) at least
``PARALLEL_MIN_BYTES`` long, on machines with more than one core.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, cast

from .capture import Source, open_capture
from .capture.batch import MAX_BATCH_PACKETS
from .flows.table import IDLE_TIMEOUT_NS
from .keys.keylog import KeyLog
from .pipeline import (
    PER_CAPTURE_PREFIXES,
    PER_CAPTURE_STATS,
    Batches,
    CaptureRun,
    FrameFilter,
    RunResult,
    analyze_file,
)
from .records import Handshake

# Below this size the second process costs more (fork, a second read) than it saves.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024
MAX_JOBS = 8


def auto_jobs(path: str | os.PathLike[str]) -> int:
    """How many processes suit this input: 1 unless a big regular file and several cores."""
    name = os.fspath(path)
    if name == "-":
        return 1
    try:
        st = os.stat(name)
    except OSError:
        return 1
    if not os.path.isfile(name) or st.st_size < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(MAX_JOBS, len(os.sched_getaffinity(0))))


# How far ahead (in packets) of the furthest process a stop is set. Each process says, before
# it dissects a batch, where that batch ends, and looks for a stop; it may miss a stop by one
# look, so it can be one batch past what it said, and a batch holds at most MAX_BATCH_PACKETS.
STOP_MARGIN_PACKETS = MAX_BATCH_PACKETS + 1


class ParallelStop:
    """Stop every process of one parallel run at the same packet (a Ctrl-C or SIGTERM): the
    merged result is then the same as one process's stopped at that packet.

    Each process publishes where the batch it is about to dissect ends and then reads the stop
    frame; :meth:`request` sets the stop frame far enough ahead of the furthest (by
    :data:`STOP_MARGIN_PACKETS`: a process that missed the stop by one look is at most one
    batch past what it published) that none has passed it.
    """

    def __init__(self, jobs: int) -> None:
        ctx = mp.get_context("fork")
        self._stop_at: Any = ctx.Value("q", 0, lock=False)  # 0: run to the end
        self._positions: Any = ctx.Array("q", jobs, lock=False)

    @property
    def requested(self) -> bool:
        return bool(self._stop_at.value)

    def request(self) -> None:
        """Stop (called from a signal handler of the parent: no lock, no allocation)."""
        if not self._stop_at.value:
            self._stop_at.value = max(self._positions) + STOP_MARGIN_PACKETS

    def batches(self, batches: Batches, shard: int) -> Batches:
        """This shard's batches, up to the stop frame when a stop is requested (the batch
        that holds it cut there)."""
        positions = self._positions
        stop_at = self._stop_at
        read = 0
        for batch in batches:
            positions[shard] = read + len(batch)
            end = stop_at.value
            if end and read + len(batch) >= end:
                if end > read:
                    yield batch.head(end - read)
                return
            read += len(batch)
            yield batch


def _worker(
    path: str,
    shard: int,
    shards: int,
    keylog: KeyLog | None,
    frame_filter: FrameFilter | None,
    stop: ParallelStop | None,
    conn: Connection,
    idle_timeout_ns: int,
    dedup: bool,
) -> None:
    # Ctrl-C reaches every process of the terminal's group: the parent alone decides
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        watch = None if stop is None else _stop_watch(stop, shard)
        result = analyze_file(
            path,
            shard=shard,
            shards=shards,
            keylog=keylog,
            frame_filter=frame_filter,
            watch=watch,
            idle_timeout_ns=idle_timeout_ns,
            dedup=dedup,
        )
        result.stats["peak_rss_kb_worker"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        conn.send(("ok", result))
    except BaseException as err:  # reported by the parent as one line
        conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


def analyze_parallel(
    path: str | os.PathLike[str],
    jobs: int,
    *,
    watch: Callable[[Batches], Batches] | None = None,
    keylog: KeyLog | None = None,
    frame_filter: FrameFilter | None = None,
    stop: ParallelStop | None = None,
    idle_timeout_ns: int = IDLE_TIMEOUT_NS,
    dedup: bool = False,
) -> RunResult:
    """:func:`analyze_file` over ``jobs`` processes; the same records and counts, merged.

    ``watch`` wraps this process's stream of batches (every process reads every packet). The
    workers are forked, so ``keylog`` and ``frame_filter`` need not be picklable. ``stop``
    (made with ``jobs``) lets the caller stop every process at one packet.
    """
    if jobs <= 1:
        if stop is not None:
            watch = _chain(_stop_watch(stop, 0), watch)
        return analyze_file(
            path,
            watch=watch,
            keylog=keylog,
            frame_filter=frame_filter,
            idle_timeout_ns=idle_timeout_ns,
            dedup=dedup,
        )
    name = os.fspath(path)
    with open_capture(name):  # a file that is not a capture fails here, once, before forking
        pass
    ctx = mp.get_context("fork")
    workers = []
    for shard in range(1, jobs):
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker,
            args=(
                name, shard, jobs, keylog, frame_filter, stop, child_end, idle_timeout_ns, dedup
            ),
            daemon=True,
        )
        proc.start()
        child_end.close()
        workers.append((proc, parent_end))
    if stop is not None:
        watch = _chain(_stop_watch(stop, 0), watch)
    mine = analyze_file(
        name,
        shard=0,
        shards=jobs,
        watch=watch,
        keylog=keylog,
        frame_filter=frame_filter,
        idle_timeout_ns=idle_timeout_ns,
        dedup=dedup,
    )
    results = [mine]
    for proc, parent_end in workers:
        try:
            status, payload = parent_end.recv()
        except EOFError:
            status, payload = "error", f"worker {proc.pid} ended without a result"
        proc.join()
        if status != "ok":
            raise RuntimeError(f"parallel worker failed: {payload}")
        results.append(payload)
    return merge(results)


def _stop_watch(stop: ParallelStop, shard: int) -> Callable[[Batches], Batches]:
    def watch(batches: Batches) -> Batches:
        return stop.batches(batches, shard)

    return watch


def _chain(
    first: Callable[[Batches], Batches], then: Callable[[Batches], Batches] | None
) -> Callable[[Batches], Batches]:
    if then is None:
        return first

    def watch(batches: Batches) -> Batches:
        return then(first(batches))

    return watch


def merge(results: list[RunResult]) -> RunResult:
    """One RunResult from the shards of one capture (shard 0 first)."""
    first = results[0]
    stats: Counter[str] = Counter()
    peak = 0
    for r in results:
        peak = max(peak, r.stats.pop("peak_rss_kb_worker", 0))
        stats.update(r.stats)
    for name, count in first.stats.items():
        # every shard read every packet: what describes the capture is counted once
        if name in PER_CAPTURE_STATS or name.startswith(PER_CAPTURE_PREFIXES):
            stats[name] = count
    stats.pop("packets_other_shard", None)
    stats["parallel_jobs"] = len(results)
    if peak:
        stats["peak_rss_kb_worker"] = peak
    handshakes = sorted((h for r in results for h in r.handshakes), key=lambda h: h.frame)
    # (each shard reports the capture's own error: once is enough)
    errors = list(dict.fromkeys(e for r in results for e in r.errors))
    return RunResult(first.name, handshakes, stats, first.capture, errors)


class LiveJobs:
    """``alpnsniff live --jobs N``: N live sources in one PACKET_FANOUT group, opened by the
    caller (as root, before it gives root up), one forked process dissecting each source's
    share of the flows (the kernel splits them by a symmetric flow hash: a connection's two
    directions reach the same process). Each process sends its records back as they
    complete; :meth:`records` yields them in that order (each process numbers the frames of
    its share: ``frame`` is a number within one job). The counts are summed: each socket has
    its own ring and its own kernel counts. Ctrl-C / SIGTERM reach the parent alone, which
    tells the processes to stop (``stop``); each then hands on what its ring holds."""

    def __init__(
        self,
        sources: list[Source],
        *,
        stop: Any,  # a multiprocessing Event the sources' should_stop looks at
    ) -> None:
        self.sources = sources
        self.name = sources[0].name
        self.stop = stop
        self._results: list[RunResult] = []
        self._errors: list[str] = []

    def records(
        self,
        should_stop: Callable[[], bool],
        *,
        keylog: KeyLog | None = None,
        idle_timeout_ns: int = IDLE_TIMEOUT_NS,
        dedup: bool = False,
        watch: Callable[[Batches], Batches] | None = None,
        every_wait: Callable[[], None] | None = None,
    ) -> Iterator[Handshake]:
        """Every process's records as they come, until all have ended; ``should_stop`` is
        looked at every 100 ms (a signal, --duration) and then stops them all, and
        ``every_wait`` is called then (the outputs' clock, the terminal view). The options
        are :class:`~alpnsniff.pipeline.CaptureRun`'s, for each process."""
        options = (keylog, idle_timeout_ns, dedup, watch)
        from multiprocessing.connection import wait

        ctx = mp.get_context("fork")
        workers: dict[Any, Any] = {}
        for index in range(len(self.sources)):
            parent_end, child_end = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_live_worker, args=(self.sources, index, child_end, *options), daemon=True
            )
            proc.start()
            child_end.close()
            workers[parent_end] = proc
        for source in self.sources:  # (the processes have theirs)
            source.close()
        try:
            while workers:
                if should_stop():
                    self.stop.set()
                if every_wait is not None:
                    every_wait()
                for ready in wait(list(workers), timeout=0.1):
                    conn = cast(Connection, ready)
                    try:
                        kind, payload = conn.recv()
                    except EOFError:
                        kind, payload = "error", f"worker {workers[conn].pid} ended early"
                    if kind == "record":
                        yield payload
                        continue
                    if kind == "done":
                        self._results.append(payload)
                    else:
                        self._errors.append(f"live job failed: {payload}")
                    workers.pop(conn).join()
                    conn.close()
        finally:
            self.stop.set()
            for conn, proc in workers.items():
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.kill()
                conn.close()

    def result(self) -> RunResult:
        """The processes' counts summed (once :meth:`records` has ended)."""
        if not self._results:
            raise RuntimeError("; ".join(self._errors) or "no live job ended")
        stats: Counter[str] = Counter()
        for r in self._results:
            stats.update(r.stats)
        stats["parallel_jobs"] = len(self.sources)
        errors = self._errors + list(dict.fromkeys(e for r in self._results for e in r.errors))
        first = self._results[0]
        return RunResult(self.name, [], stats, first.capture, errors)

    def close(self) -> None:
        for source in self.sources:
            source.close()


def _live_worker(
    sources: list[Source],
    index: int,
    conn: Connection,
    keylog: KeyLog | None,
    idle_timeout_ns: int,
    dedup: bool,
    watch: Callable[[Batches], Batches] | None,
) -> None:
    # the parent alone decides when to stop (it sets the event the source looks at)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from .capture.live import kernel_counts

    # the siblings' sockets are theirs: held here, one would stay in the fanout group after
    # its process ended, its share of the flows going into a ring nobody reads
    for other, sibling in enumerate(sources):
        if other != index:
            sibling.close()
    source = sources[index]
    try:
        with source:
            run = CaptureRun(
                source, keylog=keylog, watch=watch, idle_timeout_ns=idle_timeout_ns, dedup=dedup
            )
            for h in run.records():
                conn.send(("record", h))
            result = run.result([])
            result.stats.update(kernel_counts(source))
        result.stats["peak_rss_kb_worker"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        conn.send(("done", result))
    except BaseException as err:  # reported by the parent as one line
        conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()
