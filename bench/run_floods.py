"""Flood benchmark: alpnsniff's peak memory under each flood of bench/gen_floods.py.

    python bench/run_floods.py [KIND ...] [--scale F] [--seed S] [--keep DIR] [--target-mb MB]
                               [--duration-s T | --rate PPS] [--alpnsniff PATH]

For each flood kind (default all four, at gen_floods.DEFAULT_COUNTS times ``--scale``), generates
the capture (``gen_floods.py`` in a child process, so that this process stays small), then runs

    alpnsniff read FILE --format ndjson -o OUT.ndjson --stats STATS.json --jobs 1 -q

and reports its peak RSS, wall time, exit status, the stats counters about evictions, budgets and
failures (keys containing evict, budget, table_full, decrypt, internal_error, stalled or
unanswered), and whether the real handshake hidden in the flood came out: a row with its client
address and port, SNI, ``alpn_selected`` and ``selection``.

Peak RSS is the ``ru_maxrss`` of the alpnsniff process from ``os.wait4``, taken by a small Python
wrapper that forks and execs it. Linux folds the RSS of a process before ``exec`` into its
``ru_maxrss``, so alpnsniff is forked from that fresh ~10 MB interpreter rather than from a
process that may have grown.

Prints one JSON line per flood as it finishes, then a table. With ``--target-mb``, each flood
gets PASS or FAIL against that peak RSS. The exit status is 1 when a real handshake is missing
or alpnsniff exited with a status other than 0; the memory target never changes it (it is read
by humans).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_floods import DEFAULT_COUNTS, KINDS  # noqa: E402

# Stats keys reported: every key containing one of these.
COUNTER_WORDS = (
    "evict",
    "budget",
    "table_full",
    "decrypt",
    "internal_error",
    "stalled",
    "unanswered",
)

# Runs argv[2:] as a forked child, waits for it with os.wait4 and writes its exit status, peak
# RSS (KiB), CPU and wall time as JSON to argv[1].
_MEASURE = r"""
import json, os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(out, "w") as f:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": ru.ru_maxrss,
               "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime}, f)
"""


def default_alpnsniff() -> str:
    """The installed console script beside this interpreter (no pyenv shim in between), else
    ``alpnsniff`` on PATH."""
    beside = Path(sys.executable).parent / "alpnsniff"
    if beside.is_file():
        return str(beside)
    found = shutil.which("alpnsniff")
    if found is None:
        raise SystemExit("run_floods: alpnsniff is not installed (pip install -e .)")
    return found


def measure(cmd: list[str], workdir: Path, log: Path) -> dict[str, Any]:
    """Exit status, peak RSS (KiB), wall and CPU seconds of ``cmd`` (its output goes to ``log``)."""
    result = workdir / "measure.json"
    result.unlink(missing_ok=True)
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-c", _MEASURE, str(result), *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    m: dict[str, Any] = json.loads(result.read_text())
    result.unlink()
    return m


def find_real(ndjson: Path, real: dict[str, Any]) -> tuple[str, int]:
    """("ok" | "missing" | "wrong: ...", rows in the file) for the real handshake's row."""
    if not ndjson.exists():
        return "missing", 0
    rows = 0
    verdict = "missing"
    needle = f'"{real["client_ip"]}"'
    with ndjson.open(encoding="utf-8") as f:
        for line in f:
            rows += 1
            if needle not in line:
                continue
            r = json.loads(line)
            if (
                r.get("transport") != real["transport"]
                or r.get("client_ip") != real["client_ip"]
                or r.get("client_port") != real["client_port"]
                or r.get("sni") != real["sni"]
            ):
                continue
            got = (r.get("alpn_selected"), r.get("selection"))
            if got == (real["alpn_selected"], real["selection"]):
                verdict = "ok"
            elif verdict != "ok":
                verdict = f"wrong: alpn_selected={got[0]} selection={got[1]}"
    return verdict, rows


def counters(stats: dict[str, Any]) -> dict[str, int]:
    return {
        k: v
        for k, v in sorted(stats.items())
        if isinstance(v, int) and any(w in k for w in COUNTER_WORDS)
    }


def run_one(
    kind: str, count: int, workdir: Path, args: argparse.Namespace, alpnsniff: str
) -> dict[str, Any]:
    pcap = workdir / f"flood_{kind}.pcap"
    gen = [sys.executable, str(HERE / "gen_floods.py"), kind, str(pcap), "--count", str(count)]
    gen += ["--seed", str(args.seed)]
    if args.duration_s is not None:
        gen += ["--duration-s", str(args.duration_s)]
    if args.rate is not None:
        gen += ["--rate", str(args.rate)]
    print(f"[{kind}] generating {count:,} connections ...", file=sys.stderr, flush=True)
    made = json.loads(subprocess.run(gen, check=True, capture_output=True, text=True).stdout)
    out = workdir / f"flood_{kind}.ndjson"
    stats_path = workdir / f"flood_{kind}.stats.json"
    log = workdir / f"flood_{kind}.log"
    for p in (out, stats_path):
        p.unlink(missing_ok=True)
    cmd = [alpnsniff, "read", str(pcap), "--format", "ndjson", "-o", str(out)]
    cmd += ["--stats", str(stats_path), "--jobs", "1", "-q"]
    print(
        f"[{kind}] {made['packets']:,} packets, {made['bytes'] / 1e6:.0f} MB; running alpnsniff ...",
        file=sys.stderr,
        flush=True,
    )
    m = measure(cmd, workdir, log)
    stats: dict[str, Any] = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    real_verdict, rows = find_real(out, made["real"])
    if m["exit"] != 0:
        tail = log.read_text(errors="replace")[-2000:]
        print(f"[{kind}] alpnsniff exited with {m['exit']}:\n{tail}", file=sys.stderr)
    result = {
        "kind": kind,
        "count": count,
        "seed": args.seed,
        "packets": made["packets"],
        "file_bytes": made["bytes"],
        "flood_duration_s": made["flood_duration_s"],
        "generation_s": made["generation_seconds"],
        "peak_rss_mb": round(m["maxrss_kb"] / 1024, 1),
        "wall_s": round(m["wall_s"], 2),
        "user_s": round(m["user_s"], 2),
        "exit": m["exit"],
        "rows": rows,
        "real_handshake": real_verdict,
        "real": made["real"],
        "counters": counters(stats),
        "stats_peak_rss_kb": stats.get("peak_rss_kb"),
    }
    if args.target_mb is not None:
        result["target_mb"] = args.target_mb
        result["target"] = "PASS" if result["peak_rss_mb"] <= args.target_mb else "FAIL"
    if args.keep is None:
        for p in (pcap, out, stats_path, log):
            p.unlink(missing_ok=True)
    return result


def table(results: list[dict[str, Any]], target: float | None) -> list[str]:
    head = ["flood", "count", "packets", "file MB", "peak RSS MB", "wall s", "exit", "real hs"]
    if target is not None:
        head.append(f"<= {target:g} MB")
    head.append("counters")
    body = []
    for r in results:
        cells = [
            r["kind"],
            f"{r['count']:,}",
            f"{r['packets']:,}",
            f"{r['file_bytes'] / 1e6:.0f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['wall_s']:.1f}",
            str(r["exit"]),
            r["real_handshake"],
        ]
        if target is not None:
            cells.append(r["target"])
        cells.append(" ".join(f"{k}={v:,}" for k, v in r["counters"].items() if v) or "-")
        body.append(cells)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kinds", nargs="*", metavar="KIND", help=f"{', '.join(KINDS)} (default all)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the default counts")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, metavar="DIR", help="write and keep the files here")
    ap.add_argument("--target-mb", type=float, help="print PASS/FAIL against this peak RSS")
    timing = ap.add_mutually_exclusive_group()
    timing.add_argument("--duration-s", type=float, help="passed to gen_floods.py")
    timing.add_argument("--rate", type=float, help="passed to gen_floods.py")
    ap.add_argument("--alpnsniff", help="the alpnsniff executable (default: the installed one)")
    args = ap.parse_args(argv)
    kinds = args.kinds or list(KINDS)
    for kind in kinds:
        if kind not in KINDS:
            ap.error(f"unknown flood kind {kind!r} (one of {', '.join(KINDS)})")
    alpnsniff = args.alpnsniff or default_alpnsniff()
    results = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alpnsniff-floods-") as tmp:
        workdir = args.keep if args.keep is not None else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            count = max(1, round(DEFAULT_COUNTS[kind] * args.scale))
            r = run_one(kind, count, workdir, args, alpnsniff)
            results.append(r)
            print(json.dumps(r), flush=True)
    print()
    for line in table(results, args.target_mb):
        print(line)
    print(f"({time.perf_counter() - t0:.0f} s in all)")
    bad = [r["kind"] for r in results if r["exit"] != 0 or r["real_handshake"] != "ok"]
    if bad:
        print(f"FAILED (crash or real handshake missing): {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
