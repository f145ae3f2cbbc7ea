"""The replay benchmark (bench/replay_bench.py) in its smallest configuration: a 3,000-packet
generated capture replayed by tcpreplay at one low rate into the benchmark's veth, captured by
the installed ``alpnsniff live``. Its JSON must be coherent (what tcpreplay sent is what the
veth received and what the kernel handed alpnsniff, nothing dropped, the rows those of
``alpnsniff read``, checked here again from the files it kept), and it must remove its
namespaces and processes, also when interrupted. Needs root, ip, ethtool and tcpreplay."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli_outputs import ALPNSNIFF

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import netns  # noqa: E402
import replay_bench  # noqa: E402

PACKETS = 3000
RATE = 5000
STEP_S = 1.0  # 5,000 packets: the file once and 2,000 of its packets again (--loop, --limit)


def _requirements() -> str:
    why = netns.missing_requirements()
    if why:
        pytest.skip(why)
    if shutil.which("tcpreplay") is None:
        pytest.skip("tcpreplay is not installed (Debian: tcpreplay)")
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install .)")
    try:
        with netns.VethLab():
            pass
    except netns.LabError as err:
        pytest.skip(f"cannot make network namespaces and a veth here: {err}")
    return ALPNSNIFF


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "small.pcap"
    subprocess.run(
        [sys.executable, str(BENCH / "gen_capture.py"), str(path), "--packets", str(PACKETS)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return path


def _bench(alpnsniff: str, capture: Path, out: Path, *more: str) -> list[str]:
    return [sys.executable, str(BENCH / "replay_bench.py"), "--file", str(capture), "--rates",
            str(RATE), "--no-tshark", "--no-ndpi", "--alpnsniff", alpnsniff, "--out-dir",
            str(out), *more]  # fmt: skip


def _left_behind(names: list[str]) -> list[str]:
    """The namespaces still mounted and the processes whose command line names one of the
    lab's namespaces or devices."""
    left = [n for n in netns.mounted_namespaces() if n in names]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(name in cmdline.split("\0") for name in names):
            left.append(f"pid {entry}: {cmdline.replace(chr(0), ' ')}")
    return left


def test_smallest_run_is_coherent_and_its_rows_are_alpnsniff_reads(
    capture: Path, tmp_path: Path
) -> None:
    alpnsniff = _requirements()
    report = tmp_path / "report.json"
    done = subprocess.run(
        _bench(alpnsniff, capture, tmp_path / "work", "--step-seconds", str(STEP_S),
               "--json", str(report)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(report.read_text())
    [step] = doc["steps"]
    count = int(RATE * STEP_S)
    assert step["tool"] == "alpnsniff" and step["count"] == count
    # tcpreplay's own count and the receiving veth's counter agree; the ring got what the
    # default kernel filter keeps of them (the bare ACKs stay in the kernel), no more, no less
    assert step["sent"] == step["link_rx"] == count
    assert 0 < step["kernel_packets"] == step["kernel_expected"] < count
    assert step["failed"] == 0 and step["kernel_drops"] == 0
    assert step["seen"] == step["kernel_packets"]  # every packet the kernel gave was dissected
    assert abs(step["pps"] - RATE) / RATE < 0.05
    assert step["rows"] == step["reference_rows"] > 10
    assert step["rows_equal"] and step["holds"], step["why"]
    assert step["exit_status"] in (0, 130)
    assert 0 <= step["cpu_s"] < 5 and step["lag_s"] <= replay_bench.LAG_LIMIT_S
    assert doc["highest_pps"]["alpnsniff"] == step["pps"]
    assert doc["target_met"] is False and "MISSED" in done.stdout  # 5,000/s is not 200k/s
    assert doc["offloads_off"][doc["devices"][1]]  # at least some offloads were turned off

    # the rows again, compared here: the live ones against `alpnsniff read` of the same 5,000
    # packets (the file, then its first 2,000 packets once more, as tcpreplay sent them)
    looped = tmp_path / "looped.pcap"
    with open(looped, "wb") as f:
        replay_bench.Looped(capture).write(f, count)
    read_out = tmp_path / "read.ndjson"
    subprocess.run([alpnsniff, "read", str(looped), "-T", "ndjson", "-o", str(read_out), "-q"],
                   check=True)  # fmt: skip
    live = replay_bench.normalized_rows(tmp_path / "work" / f"alpnsniff.{RATE}.out")
    read = replay_bench.normalized_rows(read_out)
    assert live == read and sum(read.values()) == step["rows"]
    copy = replay_bench.Looped(looped)  # 5,000 records, time rising across the loop
    assert len(copy.offsets) == count
    stamps = [copy.ts_at(pos) for pos in copy.offsets]
    assert stamps == sorted(stamps) and copy.data[:24] == capture.read_bytes()[:24]
    assert _left_behind(doc["namespaces"] + doc["devices"]) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_removes_its_namespaces_and_processes(
    capture: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    alpnsniff = _requirements()
    proc = subprocess.Popen(
        _bench(alpnsniff, capture, tmp_path / "work", "--step-seconds", "30"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        names: list[str] = []
        for line in proc.stdout:
            lab = re.match(r"lab: (\S+)/(\S+) -> (\S+)/(\S+),", line)
            if lab:
                names = list(lab.groups())
                break
        assert names, proc.stderr.read() if proc.stderr else ""
        # mid-step: alpnsniff capturing (its start and settling take about 1.5 s), tcpreplay
        # sending its 150,000 packets at 5,000/s
        time.sleep(3.0)
        assert len(_left_behind(names)) >= 4  # (the step is on: 2 namespaces, 2 programs)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert _left_behind(names) == []
