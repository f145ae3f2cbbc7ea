"""``alpnsniff live`` as a user runs it: the installed command in a network namespace, on the
client's end of a veth, while a real openssl client and server make a TLS handshake across it
(``tests/netns_lab.py``). Checked: the files it writes, its exit status, its stderr."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.netns_lab import SERVER_IP, start_tls_server, tls_handshake, wait_capturing
from tests.test_cli_outputs import ALPNSNIFF
from tests.test_cli_signals import INTERRUPTED

ROW = {"alpn_offered": ["h2", "http/1.1"], "alpn_selected": "h2", "selection": "visible"}


def _alpnsniff_in(namespace: str, *args: str, interface: str = "vc") -> list[str]:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install .)")
    return ["ip", "netns", "exec", namespace, ALPNSNIFF, "live", "-i", interface, *args]


def _live_around_a_handshake(
    namespaces: tuple[str, str],
    stats: Path,
    *args: str,
    interface: str = "vc",
    host: str | None = None,
    sigterm: bool = False,
) -> tuple[int, bytes]:
    """``alpnsniff live -i INTERFACE --stats STATS ARGS`` in the client namespace, one TLS
    handshake made once it captures (the server in the server namespace, or beside the
    client when ``host`` is given), SIGTERM at once after it if asked: (exit status, stderr).
    """
    client, server = namespaces
    s_server = start_tls_server(client if host else server, stats.parent)
    try:
        proc = subprocess.Popen(
            _alpnsniff_in(client, "--stats", str(stats), *args, interface=interface),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # the handshake comes once it captures (there is no "ready" line: the command prints
        # only what it is asked for)
        wait_capturing(client, interface, proc)
        assert not stats.exists()  # (the stats file appears only at the end)
        tls_handshake(client, host or SERVER_IP)
        if sigterm:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        s_server.kill()
        s_server.wait()
    return proc.returncode, err


def test_live_for_a_duration_writes_the_handshake_and_the_kernel_counts(
    veth_pair: tuple[str, str], tmp_path: Path
) -> None:
    out, stats = tmp_path / "live.ndjson", tmp_path / "stats.json"
    status, err = _live_around_a_handshake(
        veth_pair, stats, "--duration", "3", "-T", "ndjson", "-o", str(out), "-q"
    )
    assert status == 0, err
    assert err == b""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [{k: r[k] for k in ROW} for r in rows] == [ROW]
    assert rows[0]["server_ip"] == "10.77.0.2" and rows[0]["sni"] == "ring.test"
    counts = json.loads(stats.read_text())
    assert counts.get("kernel_drops", 0) == 0
    # what the kernel put in the ring (counted until the socket closed: a packet may come in
    # after the last block was handed on) covers what was dissected
    assert 8 <= counts["packets"] <= counts["kernel_packets"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_sigterm_keeps_every_record_and_a_valid_file(
    veth_pair: tuple[str, str], tmp_path: Path
) -> None:
    out, stats = tmp_path / "live.csv", tmp_path / "stats.json"
    # SIGTERM right after the handshake: its last packets are still in the ring's open
    # block, which the stop must hand on too
    status, err = _live_around_a_handshake(
        veth_pair, stats, "-T", "csv", "-o", str(out), "-q", sigterm=True
    )
    assert status == 143, err
    assert err.decode().splitlines() == [INTERRUPTED.format("SIGTERM")]
    rows = list(csv.DictReader(out.open(newline="")))
    assert [(r["alpn_offered"], r["alpn_selected"], r["selection"]) for r in rows] == [
        ("h2 http/1.1", "h2", "visible")
    ]
    assert json.loads(stats.read_text())["interrupted"] == 1


def test_an_unknown_interface_is_one_line(veth_pair: tuple[str, str]) -> None:
    client, _server = veth_pair
    command = _alpnsniff_in(client, "--duration", "1", interface="nope0")
    done = subprocess.run(command, capture_output=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == ["alpnsniff: error: nope0: no such interface"]


def test_count_stops_after_that_many_packets(veth_pair: tuple[str, str], tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    # the handshake makes a dozen packets and more
    status, err = _live_around_a_handshake(veth_pair, stats, "--count", "5", "-T", "ndjson", "-q")
    assert status == 0, err
    assert json.loads(stats.read_text())["packets"] == 5


def test_loopback_frames_are_read_as_ethernet(veth_pair: tuple[str, str], tmp_path: Path) -> None:
    # lo's frames carry a zeroed Ethernet header (ARPHRD_LOOPBACK): the server and the client
    # in one namespace, the capture on its loopback
    out, stats = tmp_path / "lo.ndjson", tmp_path / "stats.json"
    status, err = _live_around_a_handshake(
        veth_pair, stats, "--duration", "3", "-T", "ndjson", "-o", str(out), "-q",
        interface="lo", host="127.0.0.1",
    )  # fmt: skip
    assert status == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [{k: r[k] for k in ROW} for r in rows] == [ROW]
    assert rows[0]["client_ip"] == rows[0]["server_ip"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--duration", "nan", "--duration must be a positive number of seconds"),
        ("--duration", "0", "--duration must be a positive number of seconds"),
        ("--count", "0", "--count must be a positive number of packets"),
    ],
)
def test_bad_limits_are_refused_before_capturing(option: str, value: str, message: str) -> None:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install .)")
    done = subprocess.run(
        [ALPNSNIFF, "live", "-i", "lo", option, value], capture_output=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [f"alpnsniff: error: {message}"]
