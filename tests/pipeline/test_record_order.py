"""Records leave in frame order, streamed, whatever ``--jobs``: the same ndjson bytes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alpnsniff.capture import open_capture
from alpnsniff.pipeline import CaptureRun, Dissector, dissect

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("order") / "bench.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_capture.py"), str(path), "--packets", "30000"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return path


def test_completion_order_is_not_frame_order_in_this_capture(bench_capture: Path) -> None:
    # what makes the test below mean something: records complete out of frame order
    with open_capture(bench_capture) as source:
        frames = [h.frame for h in dissect(source.packets(), Dissector())]
    assert frames != sorted(frames)


def test_capture_run_streams_in_frame_order(bench_capture: Path) -> None:
    with open_capture(bench_capture) as source:
        run = CaptureRun(source)
        records = run.records()
        first = next(records)  # streamed: the first record comes before the end of input
        assert source.stats.packets < 30000
        frames = [first.frame, *(h.frame for h in records)]
    assert frames == sorted(frames) and len(frames) > 100


def test_ndjson_is_the_same_whatever_jobs(bench_capture: Path, tmp_path: Path) -> None:
    exe = shutil.which("alpnsniff")
    assert exe is not None, "the alpnsniff command is not installed (pip install -e .)"
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"rows{jobs}.ndjson"
        done = subprocess.run(
            [exe, "read", str(bench_capture), "--format", "ndjson", "-o", str(out), "-q",
             "--jobs", jobs],
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") > 100
