"""Benchmark: alpnsniff against tshark on the same generated capture, in one run.

    python bench/run_bench.py [--packets 1000000] [--file bench/out/bench_1m.pcap] [--no-tshark]

Generates the capture with bench/gen_capture.py when it is missing, then runs
``alpnsniff read F --format ndjson`` and ``tshark -r F -Y 'tls.handshake.type == 1' -T fields
…`` as child processes, each timed from the outside (wall clock) with its peak RSS taken from
``wait4``. Prints packets/s for both, the ratio, peak RSS, and the ClientHello offer counts of
both (TCP and QUIC separately) with a verdict on whether they are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 5.0
TARGET_RSS_MB = 200


def run_measured(cmd: list[str], stdout_path: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit status) of one child process."""
    with open(stdout_path, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 1):
        sys.stderr.write(err)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def alpnsniff_offers(path: Path) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            counts[(r["transport"], ",".join(r["alpn_offered"]))] += 1
    return counts


def tshark_offers(path: Path) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            while len(parts) < 3:
                parts.append("")
            alpn, tcp_stream, udp_stream = parts[0], parts[1], parts[2]
            transport = "tcp" if tcp_stream else "quic" if udp_stream else "?"
            # one row per frame; a frame carrying two ClientHellos is rare in this load
            counts[(transport, alpn)] += 1
    return counts


def packet_count(path: Path) -> int:
    out = subprocess.run(["capinfos", "-c", "-M", str(path)], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if "Number of packets" in line:
            return int(line.split(":")[1].strip())
    raise RuntimeError(f"capinfos could not count {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--file", type=Path)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--jobs", default="auto", help="alpnsniff --jobs (auto: all cores)")
    ap.add_argument(
        "--keylog-lines",
        type=int,
        default=0,
        help="also run alpnsniff with a key log of this many sessions (none of them in the "
        "capture: what a key log costs when it has nothing to decrypt)",
    )
    args = ap.parse_args()

    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    path = args.file or out_dir / f"bench_{args.packets}.pcap"
    truth_path = path.with_suffix(".json")
    if not path.exists():
        print(f"generating {path} ({args.packets:,} packets) ...", flush=True)
        with open(truth_path, "w", encoding="utf-8") as truth_out:
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "gen_capture.py"),
                    str(path),
                    "--packets",
                    str(args.packets),
                    "--seed",
                    str(args.seed),
                ],
                check=True,
                stdout=truth_out,
            )
    expected: Counter[tuple[str, str]] = Counter()
    if truth_path.exists():
        summary = json.loads(truth_path.read_text())["expected"]
        for alpn, n in summary["tls_client_hellos_by_alpn"].items():
            expected[("tcp", alpn)] = n
        for alpn, n in summary["quic_client_hellos_by_alpn"].items():
            expected[("quic", alpn)] = n
    size_mb = path.stat().st_size / 1e6
    n_packets = packet_count(path) if shutil.which("capinfos") else args.packets
    print(f"capture: {path} ({size_mb:,.0f} MB, {n_packets:,} packets)")

    alp_out = out_dir / "alpnsniff.ndjson"
    stats_path = out_dir / "alpnsniff.stats.json"
    cmd = [sys.executable, "-m", "alpnsniff.cli", "read", str(path), "--format", "ndjson",
           "-o", str(alp_out), "--quiet", "--progress", "never", "--stats", str(stats_path),
           "--jobs", args.jobs]  # fmt: skip
    a_wall, a_rss, a_status = run_measured(cmd, out_dir / "alpnsniff.stdout")
    a_counts = alpnsniff_offers(alp_out)
    run_stats = json.loads(stats_path.read_text())
    jobs = run_stats.get("parallel_jobs", 1)
    # wait4 gives the parent's peak; each worker reports its own: the sum is the real cost
    worker_rss = run_stats.get("peak_rss_kb_worker", 0) / 1024 * (jobs - 1)
    a_rss_total = a_rss + worker_rss
    print(
        f"alpnsniff: {a_wall:6.2f} s  {n_packets / a_wall:>10,.0f} packets/s  "
        f"peak RSS {a_rss_total:6.0f} MB ({jobs} process(es): {a_rss:.0f} MB parent + "
        f"{worker_rss:.0f} MB workers)  exit {a_status}  handshakes {sum(a_counts.values()):,}"
    )

    if args.keylog_lines:
        keylog = out_dir / "bench.keys"
        rng = random.Random(args.seed)
        with open(keylog, "w", encoding="ascii") as f:
            for _ in range(args.keylog_lines):
                cr = rng.randbytes(32).hex()
                f.write(f"SERVER_HANDSHAKE_TRAFFIC_SECRET {cr} {rng.randbytes(32).hex()}\n")
        k_wall, k_rss, _ = run_measured([*cmd, "--keylog", str(keylog)], out_dir / "k.stdout")
        print(
            f"alpnsniff with a {args.keylog_lines:,}-session key log: {k_wall:6.2f} s "
            f"({k_wall / a_wall:.2f}x the run without; parent RSS {k_rss:.0f} MB)"
        )

    if args.no_tshark or not shutil.which("tshark"):
        print("tshark: not run")
        return 0
    t_out = out_dir / "tshark.tsv"
    # Out-of-order reassembly on: with tshark's default it drops every ClientHello whose
    # second segment arrives first (the generator makes 3% of them so).
    cmd = [
        "tshark",
        "-n",
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        "-r",
        str(path),
        "-Y",
        "tls.handshake.type == 1",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-e",
        "tls.handshake.extensions_alpn_str",
        "-e",
        "tcp.stream",
        "-e",
        "udp.stream",
    ]
    t_wall, t_rss, t_status = run_measured(cmd, t_out)
    t_counts = tshark_offers(t_out)
    print(
        f"tshark:    {t_wall:6.2f} s  {n_packets / t_wall:>10,.0f} packets/s  "
        f"peak RSS {t_rss:6.0f} MB  exit {t_status}  ClientHello frames {sum(t_counts.values()):,}"
    )
    ratio = t_wall / a_wall
    print(
        f"throughput ratio alpnsniff/tshark: {ratio:.2f}x (target >= {TARGET_RATIO}x)  "
        f"RSS ratio: {a_rss_total / t_rss:.2f}"
    )

    print("\nClientHello offers            alpnsniff     tshark  generated")
    same = {"tcp": True, "quic": True}
    for key in sorted(set(a_counts) | set(t_counts) | set(expected)):
        a, t, e = a_counts.get(key, 0), t_counts.get(key, 0), expected.get(key, 0)
        mark = "" if a == t == e else "   <-- differs"
        same[key[0]] = same.get(key[0], True) and a == t
        label = f"{key[0]:<5} {key[1] or '(no ALPN)'}"
        print(f"  {label:<28} {a:>9,}  {t:>9,}  {e:>9,}{mark}")
    for transport in ("tcp", "quic"):
        a = sum(v for k, v in a_counts.items() if k[0] == transport)
        t = sum(v for k, v in t_counts.items() if k[0] == transport)
        e = sum(v for k, v in expected.items() if k[0] == transport)
        print(f"  total {transport:<22} {a:>9,}  {t:>9,}  {e:>9,}")
    for transport, equal in same.items():
        print(f"{transport} offer counts identical to tshark: {'yes' if equal else 'NO'}")
    ok = ratio >= TARGET_RATIO and a_rss_total < TARGET_RSS_MB and same["tcp"]
    print(f"targets met: {'yes' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
