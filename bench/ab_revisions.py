"""A/B: this tree's alpnsniff against another git revision's, on the same capture, in one run.

    python bench/ab_revisions.py --rev 9bbead2 [--file F | --packets N] [--jobs auto 1]
                                 [--rounds 3] [--keylog F.keys]

The other revision is checked out into a temporary git worktree and run from there
(``PYTHONPATH``), so both use the same Python and packages. Both run as pure Python source
(each tree is its own working directory); the compiled build is timed by ``run_bench.py``. Each round runs every (revision,
jobs) pair once, alternating, so that the machine's drift during the run hits both alike;
the fastest wall time of each pair is reported, with the ratio and whether the two gave the
same ndjson records (sorted). Without ``--file`` the benchmark capture is generated
(``bench/gen_capture.py``, deterministic) into a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(
    src: Path, capture: Path, jobs: str, out: Path, keylog: Path | None
) -> tuple[float, float]:
    """Wall time and CPU time (user + system, all processes) of one run."""
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, "-m", "alpnsniff.cli", "read", str(capture), "--format", "ndjson",
           "-o", str(out), "-q", "--jobs", jobs]  # fmt: skip
    if keylog is not None:
        cmd += ["--keylog", str(keylog)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=src, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{src}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def records(path: Path) -> list[str]:
    # the capture column names the file as given: the same for both
    return sorted(path.read_text().splitlines())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rev", required=True, help="the git revision to compare against")
    ap.add_argument("--file", type=Path)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--jobs", nargs="+", default=["auto", "1"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keylog", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="alpnsniff-ab-") as tmp_name:
        tmp = Path(tmp_name)
        other = tmp / "other"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(other),
                        args.rev], check=True)  # fmt: skip
        try:
            capture = args.file
            if capture is None:
                capture = tmp / "bench.pcap"
                subprocess.run([sys.executable, str(ROOT / "bench" / "gen_capture.py"),
                                str(capture), "--packets", str(args.packets)],
                               check=True, stdout=subprocess.DEVNULL)  # fmt: skip
            capture.read_bytes()  # into the page cache before anything is timed
            trees = {"this": ROOT, args.rev: other}
            best: dict[tuple[str, str], float] = {}
            best_cpu: dict[tuple[str, str], float] = {}
            outs: dict[tuple[str, str], Path] = {}
            for _ in range(args.rounds):
                for jobs in args.jobs:
                    for name, src in trees.items():
                        out = tmp / f"{name}.{jobs}.ndjson"
                        wall, cpu = run_once(src, capture, jobs, out, args.keylog)
                        key = (name, jobs)
                        best[key] = min(best.get(key, wall), wall)
                        best_cpu[key] = min(best_cpu.get(key, cpu), cpu)
                        outs[key] = out
            size = capture.stat().st_size
            print(f"capture: {capture} ({size / 1e6:,.0f} MB), fastest of {args.rounds} rounds")
            for jobs in args.jobs:
                mine, theirs = best[("this", jobs)], best[(args.rev, jobs)]
                cpu_mine, cpu_theirs = best_cpu[("this", jobs)], best_cpu[(args.rev, jobs)]
                same = records(outs[("this", jobs)]) == records(outs[(args.rev, jobs)])
                print(
                    f"--jobs {jobs:>4}: wall this {mine:6.2f} s, {args.rev} {theirs:6.2f} s, "
                    f"ratio {theirs / mine:5.3f}; CPU this {cpu_mine:6.2f} s, {args.rev} "
                    f"{cpu_theirs:6.2f} s, ratio {cpu_theirs / cpu_mine:5.3f} (>1: this is "
                    f"faster); same records: {same}"
                )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)],
                           check=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
