"""SIGINT and SIGTERM, through the installed command reading a pipe that stays open (a live
capture): reading stops, the summary of what was read is printed, what was collected is
written as a valid file, the status is 130 / 143, and no temporary file is left. Until the
end the output's final name does not exist (only its temporary file does)."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import platform
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.test_cli_outputs import ALPNSNIFF, TLS12

# The number of the read system call, to see the command wait for input (/proc/PID/syscall).
READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())
INTERRUPTED = "alpnsniff: error: interrupted by {}: the output covers what was read until then"


def start(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """The command on stdin, fed one capture and left waiting for more."""
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    proc = subprocess.Popen(
        [ALPNSNIFF, "read", "-", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdin is not None
    proc.stdin.write(TLS12.read_bytes())
    proc.stdin.flush()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the pipe drained, the command blocked reading fd 0
        left = struct.unpack("i", fcntl.ioctl(proc.stdin.fileno(), termios.FIONREAD, b"\0" * 4))
        if left[0] == 0:
            if READ_SYSCALL is None:
                time.sleep(1.5)
                return proc
            try:
                call = Path(f"/proc/{proc.pid}/syscall").read_text().split()
            except OSError:
                call = []
            if call[:2] == [READ_SYSCALL, "0x0"]:
                return proc
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the command never waited for input")


def stop(proc: subprocess.Popen[bytes], signum: int) -> tuple[str, str]:
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    return out.decode(), err.decode()


def test_sigint_writes_the_csv_and_the_summary(tmp_path: Path) -> None:
    proc = start(tmp_path, "--format", "csv", "-o", "rows.csv", "--stats", "stats.json")
    names = sorted(os.listdir(tmp_path))  # while reading: temporary files only
    assert len(names) == 2 and all(n.startswith((".rows.csv.", ".stats.json.")) for n in names)
    out, err = stop(proc, signal.SIGINT)
    assert proc.returncode == 130, err
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == INTERRUPTED.format("SIGINT")
    assert "17 packets" in lines[1] and "Traceback" not in err
    assert "selection: visible 1" in err
    rows = list(csv.DictReader(io.StringIO((tmp_path / "rows.csv").read_text())))
    assert [(r["frame"], r["alpn_selected"]) for r in rows] == [("4", "h2")]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["packets"] == 17 and stats["interrupted"] == 1
    assert sorted(os.listdir(tmp_path)) == ["rows.csv", "stats.json"]


def test_sigterm_writes_the_parquet(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    proc = start(tmp_path, "--format", "parquet", "-o", "rows.parquet")
    assert not (tmp_path / "rows.parquet").exists()
    _, err = stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert err.splitlines()[0] == INTERRUPTED.format("SIGTERM") and "17 packets" in err
    table = pq.read_table(tmp_path / "rows.parquet")
    assert table.column("frame").to_pylist() == [4]
    assert os.listdir(tmp_path) == ["rows.parquet"]


def test_sigint_ends_a_streamed_run_with_its_summary(tmp_path: Path) -> None:
    proc = start(tmp_path, "--format", "summary")
    out, err = stop(proc, signal.SIGINT)
    assert proc.returncode == 130
    assert err == INTERRUPTED.format("SIGINT") + "\n"
    assert "17 packets" in out and "selection: visible 1" in out
    proc = start(tmp_path, "--format", "ndjson", "-q")
    out, err = stop(proc, signal.SIGTERM)
    assert proc.returncode == 143 and err == INTERRUPTED.format("SIGTERM") + "\n"
    assert [json.loads(line)["frame"] for line in out.splitlines()] == [4]
    assert os.listdir(tmp_path) == []


def test_sigint_stops_a_parallel_run_at_one_packet(tmp_path: Path) -> None:
    # --jobs 2 on a generated capture: every process stops at the same packet, so the rows
    # are those one process gives for the packets up to there
    import sys

    from alpnsniff.capture import open_capture
    from alpnsniff.capture.batch import first_packets
    from alpnsniff.pipeline import CaptureRun

    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    capture = tmp_path / "bench.pcap"
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [
            sys.executable,
            str(root / "bench" / "gen_capture.py"),
            str(capture),
            "--packets",
            "600000",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    out, stats = tmp_path / "rows.csv", tmp_path / "stats.json"
    proc = subprocess.Popen(
        [ALPNSNIFF, "read", str(capture), "-T", "csv", "-o", str(out), "--stats", str(stats),
         "-j", "2", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    # once the worker is forked both processes are reading (the compiled build reads the
    # 600,000 packets in about a second, so a fixed delay could come after the end)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    if not children.exists():
        proc.kill()
        proc.communicate()
        pytest.skip("this kernel does not list a process's children (/proc/PID/task/TID/children)")
    deadline = time.monotonic() + 60
    while not children.read_text().split() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.15)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.decode().splitlines() == [INTERRUPTED.format("SIGINT")]
    counts = json.loads(stats.read_text())
    read = counts["packets"]
    assert counts["interrupted"] == 1 and counts["parallel_jobs"] == 2
    assert 0 < read < 600_000
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    with open_capture(capture) as source:
        run = CaptureRun(source, watch=lambda batches: first_packets(batches, read))
        one = [(h.frame, h.client_port, h.selection.value) for h in run.records()]
    assert [(int(r["frame"]), int(r["client_port"]), r["selection"]) for r in rows] == one
    assert len(one) > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
