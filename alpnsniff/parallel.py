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
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection

from .capture import open_capture
from .keys.keylog import KeyLog
from .pipeline import (
    PER_CAPTURE_PREFIXES,
    PER_CAPTURE_STATS,
    FrameFilter,
    Packets,
    RunResult,
    analyze_file,
)

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


def _worker(
    path: str,
    shard: int,
    shards: int,
    keylog: KeyLog | None,
    frame_filter: FrameFilter | None,
    conn: Connection,
) -> None:
    try:
        result = analyze_file(
            path, shard=shard, shards=shards, keylog=keylog, frame_filter=frame_filter
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
    watch: Callable[[Packets], Packets] | None = None,
    keylog: KeyLog | None = None,
    frame_filter: FrameFilter | None = None,
) -> RunResult:
    """:func:`analyze_file` over ``jobs`` processes; the same records and counts, merged.

    ``watch`` wraps this process's packet stream (every process reads every packet). The
    workers are forked, so ``keylog`` and ``frame_filter`` need not be picklable.
    """
    if jobs <= 1:
        return analyze_file(path, watch=watch, keylog=keylog, frame_filter=frame_filter)
    name = os.fspath(path)
    with open_capture(name):  # a file that is not a capture fails here, once, before forking
        pass
    ctx = mp.get_context("fork")
    workers = []
    for shard in range(1, jobs):
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker,
            args=(name, shard, jobs, keylog, frame_filter, child_end),
            daemon=True,
        )
        proc.start()
        child_end.close()
        workers.append((proc, parent_end))
    mine = analyze_file(
        name, shard=0, shards=jobs, watch=watch, keylog=keylog, frame_filter=frame_filter
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
