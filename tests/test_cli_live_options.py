"""``alpnsniff live`` options beyond the basics, as a user runs them (the installed command in
the lab's client namespace, real openssl handshakes across the veth): --jobs (a
PACKET_FANOUT group), the terminal view (on a pseudo-terminal), --rotate, the kernel
filter and snap length, ``alpnsniff interfaces``."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.netns_lab import SERVER_IP, start_tls_server, tls_handshake, wait_capturing
from tests.test_cli_outputs import ALPNSNIFF


def _command(namespace: str, *args: str, interface: str = "vc") -> list[str]:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install .)")
    return ["ip", "netns", "exec", namespace, ALPNSNIFF, "live", "-i", interface, *args]


def _around_handshakes(
    lab: tuple[str, str], tmp_path: Path, n: int, *args: str
) -> tuple[int, str]:
    """``alpnsniff live ARGS`` in the client namespace around ``n`` handshakes, then SIGINT:
    (exit status, stderr)."""
    client, server = lab
    s_server = start_tls_server(server, tmp_path)
    try:
        proc = subprocess.Popen(
            _command(client, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        jobs = int(args[args.index("--jobs") + 1]) if "--jobs" in args else 1
        wait_capturing(client, "vc", proc, count=jobs)  # (a socket a job)
        for _ in range(n):
            tls_handshake(client, SERVER_IP)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        s_server.kill()
        s_server.wait()
    return proc.returncode, err.decode()


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jobs_split_the_flows_between_processes_and_lose_none(
    veth_pair: tuple[str, str], tmp_path: Path
) -> None:
    out, stats = tmp_path / "live.ndjson", tmp_path / "stats.json"
    status, err = _around_handshakes(
        veth_pair, tmp_path, 6, "--jobs", "2", "-T", "ndjson", "-o", str(out),
        "--stats", str(stats), "-q",
    )  # fmt: skip
    assert status == 130, err
    rows = _rows(out)
    assert len(rows) == 6
    assert len({r["client_port"] for r in rows}) == 6  # each handshake once
    assert all(r["alpn_selected"] == "h2" and r["selection"] == "visible" for r in rows)
    counts = json.loads(stats.read_text())
    assert counts["parallel_jobs"] == 2
    assert counts["kernel_drops"] == 0
    # every packet the kernel gave the two rings was dissected by one of the processes
    assert counts["packets"] == counts["kernel_packets"] > 0


def test_jobs_with_count_is_refused() -> None:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install .)")
    done = subprocess.run(
        [ALPNSNIFF, "live", "-i", "lo", "--jobs", "2", "--count", "5"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--count" in done.stderr and "--jobs" in done.stderr


def test_the_terminal_view_shows_the_handshakes_as_they_come(
    veth_pair: tuple[str, str], tmp_path: Path
) -> None:
    """On a terminal (a pseudo-terminal here), without -q, the view is redrawn each second
    on stderr: the handshake count, the offered protocols and the kernel's counts; the last
    frame stays, then the summary."""
    client, server = veth_pair
    s_server = start_tls_server(server, tmp_path)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            _command(client, "--duration", "4", "-o", str(tmp_path / "rows.ndjson"),
                     "-T", "ndjson"),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower,
            env={**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm"},
        )  # fmt: skip
        os.close(follower)
        wait_capturing(client, "vc", proc)
        tls_handshake(client, SERVER_IP)
        screen = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=10)
    finally:
        s_server.kill()
        s_server.wait()
        os.close(leader)
    text = screen.decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "/s last second" in text
    assert "h2" in text and "http/1.1" in text and "ring.test" in text
    assert "kernel" in text
    assert "1 capture" in text  # the summary after the last frame


def test_rotate_by_size_keeps_every_record_in_whole_files(
    veth_pair: tuple[str, str], tmp_path: Path
) -> None:
    where = tmp_path / "out"
    where.mkdir()
    status, err = _around_handshakes(
        veth_pair, tmp_path, 4, "-T", "ndjson", "-o", str(where / "live.ndjson"),
        "--rotate", "1k", "-q",
    )  # fmt: skip
    assert status == 130, err
    files = sorted(where.iterdir())
    assert len(files) >= 2  # each row is ~1 KB: a new file every row or two
    assert all(f.name.startswith("live.") and f.name.endswith(".ndjson") for f in files)
    assert not (where / "live.ndjson").exists()  # (the name is the series', never written)
    rows = [r for f in files for r in _rows(f)]
    assert len(rows) == 4 and len({r["client_port"] for r in rows}) == 4


def test_snaplen_cuts_frames_in_the_kernel_and_says_so(
    veth_pair: tuple[str, str], tmp_path: Path
) -> None:
    """-s 96: the ClientHello's segment is cut inside its TLS record: no offer can be read,
    the cut is counted (snap_cut, and the decoder's payload-truncated), nothing crashes."""
    out, stats = tmp_path / "live.ndjson", tmp_path / "stats.json"
    status, err = _around_handshakes(
        veth_pair, tmp_path, 1, "-s", "96", "-T", "ndjson", "-o", str(out),
        "--stats", str(stats), "-q",
    )  # fmt: skip
    assert status == 130, err
    counts = json.loads(stats.read_text())
    assert counts["snap_cut"] > 0
    assert counts["decode_payload-truncated"] > 0
    assert counts.get("loss_gaps", 0) == 0  # (cut by the capture, not lost upstream)
    assert _rows(out) == []


def test_the_default_kernel_filter_keeps_the_handshake_and_drops_bare_acks(
    veth_pair: tuple[str, str], tmp_path: Path
) -> None:
    """The same handshakes with the default filter and with -f '' (none): the same rows;
    the default hands the ring fewer packets (the bare ACKs stay in the kernel)."""
    results = []
    for extra in ((), ("-f", "")):
        out, stats = tmp_path / f"live{len(results)}.ndjson", tmp_path / "stats.json"
        status, err = _around_handshakes(
            veth_pair, tmp_path, 2, "-T", "ndjson", "-o", str(out), "--stats", str(stats),
            "-q", *extra,
        )  # fmt: skip
        assert status == 130, err
        keep = ("alpn_offered", "alpn_selected", "selection", "sni", "server_port")
        results.append(
            ([{k: r[k] for k in keep} for r in _rows(out)], json.loads(stats.read_text()))
        )
    (filtered, with_default), (unfiltered, without) = results
    assert filtered == unfiltered and len(filtered) == 2
    assert with_default["kernel_packets"] < without["kernel_packets"]
    assert without.get("tcp_empty_skipped", 0) > 0 == with_default.get("tcp_empty_skipped", 0)


def test_interfaces_lists_what_can_be_captured(veth_pair: tuple[str, str]) -> None:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install .)")
    client, _ = veth_pair
    done = subprocess.run(
        ["ip", "netns", "exec", client, ALPNSNIFF, "interfaces"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["index", "name"]
    vc = next(line for line in lines if " vc " in f" {line} ")
    assert "1500" in vc.split() and "10.77.0.1/24" in vc and "yes" in vc.split()


def test_a_stop_under_overload_ends_at_once_with_every_output_whole(
    veth_pair: tuple[str, str], tmp_path: Path
) -> None:
    """A UDP flood on the namespace's loopback, captured unfiltered through an 8 MiB ring:
    more than the dissector takes (the kernel drops), so a retired block is always waiting.
    SIGINT must still end the run within a second or two — what came before the stop is
    handed on, what came after is left — with the stats file written (a run that kept
    draining would be killed by a second signal or a supervisor, losing every output)."""
    from tests.netns_lab import loopback_flood

    client, _ = veth_pair
    stats = tmp_path / "stats.json"
    with loopback_flood(client):
        proc = subprocess.Popen(
            _command(client, "-f", "", "-B", "8", "--stats", str(stats), "-q", interface="lo"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_capturing(client, "lo", proc)
        time.sleep(2.0)  # (the flood outruns the dissector meanwhile)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("alpnsniff live did not end within 10 s of SIGINT under a flood")
        took = time.monotonic() - started
    assert proc.returncode == 130, err
    assert took < 3.0
    counts = json.loads(stats.read_text())
    assert counts["interrupted"] == 1 and counts["packets"] > 0
    assert counts["kernel_packets"] >= counts["packets"]
