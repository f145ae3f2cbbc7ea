"""Time the terminal table against ndjson on a generated capture.

    python bench/bench_table.py [--packets 1000000] [--capture /tmp/t.pcap] [--runs 3]

Generates the capture with bench/gen_capture.py unless it exists, then prints seconds,
best of ``--runs``: the whole ``alpnsniff read FILE --format table|ndjson`` run (the
installed command, stdout to /dev/null) and each sink alone on the same records (the
run's reading and dissecting left out).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _best(fn: object, runs: int) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--capture", default="/tmp/bench_table.pcap")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    capture = Path(args.capture)
    if not capture.exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "gen_capture.py"),
                str(capture),
                "--packets",
                str(args.packets),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    from alpnsniff.pipeline import analyze_file
    from alpnsniff.sinks.rows import row
    from alpnsniff.sinks.table import print_table
    from alpnsniff.sinks.text import NdjsonWriter

    name = os.fspath(capture)
    items = [(name, h) for h in analyze_file(capture).handshakes]
    print(f"{capture}: {len(items)} handshakes")

    def table() -> None:
        print_table(items, io.StringIO())

    def ndjson() -> None:
        writer = NdjsonWriter(io.StringIO())
        for c, h in items:
            writer.write(row(h, c))
        writer.close()

    print(
        f"sink alone    table {_best(table, args.runs):6.3f} s   "
        f"ndjson {_best(ndjson, args.runs):6.3f} s"
    )

    exe = shutil.which("alpnsniff")
    if exe is None:
        print("alpnsniff is not installed: no whole-run figures")
        return 0
    whole = {}
    for fmt in ("table", "ndjson"):

        def run(fmt: str = fmt) -> None:
            subprocess.run(
                [exe, "read", name, "--format", fmt, "-q"], check=True, stdout=subprocess.DEVNULL
            )

        whole[fmt] = _best(run, args.runs)
    print(f"whole run     table {whole['table']:6.3f} s   ndjson {whole['ndjson']:6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
