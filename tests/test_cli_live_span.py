"""``alpnsniff live`` on a span port (``tests/span_lab.py``: the kernel mirrors each
direction of a real TLS handshake to its own port of a monitoring namespace): both ports
merged by time, each alone (a one-sided capture), and the capture run as an unprivileged
user once its sockets are open (``--user``). The installed command, its files and status."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns_lab import SERVER_IP, start_tls_server, tls_handshake, wait_capturing
from tests.span_lab import SpanLab
from tests.test_cli_outputs import ALPNSNIFF


def _live_on_span(
    lab: SpanLab, tmp: Path, interfaces: list[str], *args: str, handshakes: int = 1
) -> tuple[int, bytes, list[dict[str, object]], dict[str, int]]:
    """``alpnsniff live -i … -T ndjson -o OUT --stats STATS ARGS`` in the monitor namespace
    for 3 s around ``handshakes`` openssl handshakes: (status, stderr, rows, stats)."""
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install .)")
    out, stats = tmp / "live.ndjson", tmp / "stats.json"
    command = ["ip", "netns", "exec", lab.monitor, ALPNSNIFF, "live"]
    for name in interfaces:
        command += ["-i", name]
    command += ["--duration", "3", "-T", "ndjson", "-o", str(out), "--stats", str(stats), "-q"]
    server = start_tls_server(lab.server, tmp)
    try:
        proc = subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name in interfaces:
            wait_capturing(lab.monitor, name, proc)
        for _ in range(handshakes):
            tls_handshake(lab.client, SERVER_IP)
        _, err = proc.communicate(timeout=30)
    finally:
        server.kill()
        server.wait()
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    counts = json.loads(stats.read_text()) if stats.exists() else {}
    return proc.returncode, err, rows, counts


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory anyone may write, outside pytest's own (which only root may enter): for
    the --user test, where nobody makes the files."""
    where = Path(tempfile.mkdtemp(prefix="alpnsniff-user-", dir="/tmp"))
    where.chmod(0o777)
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_two_span_ports_one_per_direction_merge_into_one_flow(
    span_lab: SpanLab, tmp_path: Path
) -> None:
    status, err, rows, counts = _live_on_span(span_lab, tmp_path, ["span_c", "span_s"])
    assert status == 0, err
    assert err == b""
    assert len(rows) == 1
    row = rows[0]
    assert row["alpn_offered"] == ["h2", "http/1.1"]
    assert (row["alpn_selected"], row["selection"]) == ("h2", "visible")
    assert (row["client_ip"], row["server_ip"], row["server_port"]) == (
        "10.77.0.1",
        SERVER_IP,
        4433,
    )
    assert row["capture"] == "span_c,span_s"
    # each port delivered its direction, counted by the kernel per interface
    assert counts["kernel_packets_if0"] > 0 and counts["kernel_packets_if1"] > 0
    assert counts["kernel_packets"] == counts["kernel_packets_if0"] + counts["kernel_packets_if1"]
    assert counts.get("kernel_drops", 0) == 0


def test_the_client_side_alone_gives_the_offer_and_an_unseen_selection(
    span_lab: SpanLab, tmp_path: Path
) -> None:
    status, err, rows, _ = _live_on_span(span_lab, tmp_path, ["span_c"])
    assert status == 0, err
    assert len(rows) == 1
    assert rows[0]["alpn_offered"] == ["h2", "http/1.1"]
    assert (rows[0]["alpn_selected"], rows[0]["selection"]) == (None, "unseen")


def test_the_server_side_alone_gives_the_selection_and_no_offer(
    span_lab: SpanLab, tmp_path: Path
) -> None:
    status, err, rows, _ = _live_on_span(span_lab, tmp_path, ["span_s"])
    assert status == 0, err
    assert len(rows) == 1
    # null: the ClientHello was not seen (not [], a ClientHello without ALPN)
    assert rows[0]["alpn_offered"] is None
    assert (rows[0]["alpn_selected"], rows[0]["selection"]) == ("h2", "visible")
    assert (rows[0]["client_ip"], rows[0]["server_ip"]) == ("10.77.0.1", SERVER_IP)


def test_user_drops_root_once_the_capture_is_open(span_lab: SpanLab, open_dir: Path) -> None:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    where = open_dir
    status, err, rows, counts = _live_on_span(
        span_lab, where, ["span_c", "span_s"], "--user", "nobody"
    )
    assert status == 0, err
    assert [r["alpn_selected"] for r in rows] == ["h2"]
    # the outputs were made after the change: they belong to nobody, not to root
    for name in ("live.ndjson", "stats.json"):
        assert (where / name).stat().st_uid == nobody.pw_uid
    assert counts["kernel_packets"] > 0


def test_user_unknown_is_refused_before_anything_is_written(
    span_lab: SpanLab, tmp_path: Path
) -> None:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install .)")
    out = tmp_path / "out.ndjson"
    done = subprocess.run(
        ["ip", "netns", "exec", span_lab.monitor, ALPNSNIFF, "live", "-i", "span_c",
         "--user", "no-such-user-here", "-T", "ndjson", "-o", str(out), "--duration", "1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().endswith("--user no-such-user-here: no such user")
    assert not out.exists()
    assert os.listdir(tmp_path) == []
