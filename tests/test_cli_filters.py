"""tshark's habits, through the installed command: ``-r FILE``, ``-T FORMAT``, ``-f`` as a BPF
capture filter (frame numbers stay the file's), and the record filters ``--host``, ``--port``,
``--sni``, ``--alpn`` (rows and summary alike)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.test_cli_outputs import ALPNSNIFF, CAPTURES, err_line

RESUMED = str(CAPTURES / "openssl_tls12_resumed.pcap")  # tcp frames 4 (:47598), 21 (:47604)
MIXED = str(CAPTURES / "openssl_aioquic_ipv6.pcap")  # tcp frame 4 (h2), quic frame 22 (h3)


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    return subprocess.run([ALPNSNIFF, "read", *args], capture_output=True, timeout=60)


def frames(proc: subprocess.CompletedProcess[bytes]) -> list[tuple[str, int]]:
    assert proc.returncode == 0, proc.stderr
    return [(r["transport"], r["frame"]) for r in map(json.loads, proc.stdout.splitlines())]


def test_bpf_filter_keeps_the_files_frame_numbers(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    proc = run("-r", RESUMED, "-f", "tcp port 47604", "-T", "ndjson", "-q", "--stats", str(stats))
    assert frames(proc) == [("tcp", 21)]
    counts = json.loads(stats.read_text())
    assert (counts["packets"], counts["packets_filtered_out"]) == (34, 17)
    assert frames(run(MIXED, "--filter", "udp", "-T", "ndjson", "-q")) == [("quic", 22)]
    # files from -r (repeatable) first, then the positional ones; options anywhere
    proc = run(MIXED, "-T", "ndjson", "-r", RESUMED, "-q", "-f", "tcp", "-r", RESUMED)
    assert frames(proc) == [("tcp", 4), ("tcp", 21)] * 2 + [("tcp", 4)]


def test_a_bad_bpf_filter_is_one_line_before_reading() -> None:
    proc = run(RESUMED, "-f", "tcp port")
    assert proc.returncode == 2 and proc.stdout == b""
    assert err_line(proc).startswith("alpnsniff: error: bad filter 'tcp port': ")


def test_format_is_T_and_no_file_is_an_error() -> None:
    assert frames(run("-T", "ndjson", "-q", RESUMED)) == [("tcp", 4), ("tcp", 21)]
    proc = run("-T", "csv")
    assert proc.returncode == 2
    assert err_line(proc) == "alpnsniff: error: no capture given: name FILE, -r FILE or - for stdin"


def test_record_filters_apply_to_rows_and_summary() -> None:
    pytest.importorskip("alpnsniff.filters")
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    nd = ("-T", "ndjson", "-q")
    cases = {  # (arguments): frames; run side by side (each run is mostly start-up)
        (MIXED, *nd, "--port", "4433"): [("quic", 22)],
        (MIXED, *nd, "--alpn", "h3", "--alpn", "h2"): [("tcp", 4), ("quic", 22)],
        (MIXED, *nd, "--alpn", "h3", "--port", "4431"): [],  # AND across kinds
        (MIXED, *nd, "--sni", "QUIC.*"): [("quic", 22)],
        (MIXED, *nd, "--host", "fd00:99::/64", "--port", "4431"): [("tcp", 4)],
        (RESUMED, *nd, "--host", "10.0.0.0/8"): [],
    }
    procs = {
        args: subprocess.Popen(
            [ALPNSNIFF, "read", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for args in cases
    }
    for args, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        assert frames(done) == cases[args], args
    proc = run(MIXED, "--sni", "quic.example.test")
    assert proc.returncode == 0, proc.stderr
    summary = proc.stdout.decode()
    assert "1 handshake" in summary and "(quic 1)" in summary and "tcp" not in summary
    proc = run(MIXED, "--host", "10.0.0.300")
    assert proc.returncode == 2 and proc.stdout == b""
    assert err_line(proc).startswith("alpnsniff: error: ")
