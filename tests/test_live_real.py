"""``alpnsniff live`` against real clients and servers across the two-namespace lab
(``tests/netns_lab.py``: a veth at MTU 1500, offloads off): curl and Debian's nginx, aioquic
over UDP, headless Chromium, a server that never answers. The installed command runs in the
client namespace on its end of the veth; each row it writes is checked against what the
client itself reported of the same connection (curl's ``-v`` and ``-w``, nginx's access log),
field by field, and the rows must be exactly the handshakes made: one per connection, no
more. Servers start once per module; each test runs its own capture.

Skipped with the reason without root, ``ip netns``, or the client or server a test needs.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alpnsniff.records import COLUMN_TABLE
from tests.netns_lab import (
    NGINX_H2,
    SERVER_IP,
    SILENT_PORT,
    WWW,
    CurlRun,
    chromium_fetch,
    cipher_suite_number,
    curl_fetch,
    in_ns,
    loopback_flood,
    nginx_requests,
    nginx_server,
    quic_fetch,
    quic_server,
    silent_server,
    tcp_passive_opens,
    wait_capturing,
    waiting_client_hello,
)
from tests.test_cli_outputs import ALPNSNIFF
from tests.test_cli_signals import INTERRUPTED

CLIENT_IP = "10.77.0.1"
TLS12 = ("--tlsv1.2", "--tls-max", "1.2")  # curl: TLS 1.2 at most, the choice in cleartext
COLUMNS = [c.name for c in COLUMN_TABLE]


# ---------------------------------------------------------------- the capture


class Live:
    """``alpnsniff live -i vc --stats STATS ARGS`` running in the client namespace."""

    def __init__(self, client_ns: str, folder: Path, *args: str) -> None:
        if ALPNSNIFF is None:
            pytest.skip("the alpnsniff command is not installed (pip install .)")
        self.namespace = client_ns
        self.stats_path = folder / "stats.json"
        self.proc = subprocess.Popen(
            in_ns(client_ns, ALPNSNIFF, "live", "-i", "vc", "--stats", str(self.stats_path),
                  *args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        # ready once its packet socket is bound to the interface (after the ring is mapped):
        # there is no "ready" line, the command prints only what it is asked for
        wait_capturing(client_ns, "vc", self.proc)

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, signum: signal.Signals = signal.SIGINT) -> tuple[int, str]:
        """Signal it, wait for it: (exit status, stderr)."""
        assert self.running(), self.proc.stderr.read() if self.proc.stderr else b""
        self.proc.send_signal(signum)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err.decode()

    def stats(self) -> dict[str, int]:
        counts: dict[str, int] = json.loads(self.stats_path.read_text())
        return counts

    def kill(self) -> None:
        if self.running():
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def live_runs(veth_lab: tuple[str, str], tmp_path: Path) -> Iterator[list[Live]]:
    """The captures a test starts (``live_runs.append(Live(…))``), killed if still running."""
    runs: list[Live] = []
    yield runs
    for run in runs:
        run.kill()


def _live(runs: list[Live], client_ns: str, folder: Path, *args: str) -> Live:
    run = Live(client_ns, folder, *args)
    runs.append(run)
    return run


def _stopped_cleanly(run: Live, signum: signal.Signals = signal.SIGINT) -> None:
    status, err = run.stop(signum)
    assert status == 128 + signum, err
    assert err.splitlines() == [INTERRUPTED.format(signum.name)]
    counts = run.stats()
    assert counts["interrupted"] == 1
    assert counts.get("kernel_drops", 0) == 0
    assert counts.get("internal_error", 0) == 0


def _ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _by_client_port(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    ports = {r["client_port"]: r for r in rows}
    assert len(ports) == len(rows), rows  # one row a connection
    return ports


# ---------------------------------------------------------------- curl + nginx


@pytest.fixture(scope="module")
def nginx(veth_lab: tuple[str, str]) -> Iterator[Path]:
    _client, server = veth_lab
    with nginx_server(server) as state:
        yield state


def _curl_row(fetch: CurlRun, selection: str) -> dict[str, Any]:
    """The row alpnsniff must write for a curl fetch, from what curl said of it."""
    return {
        "transport": "tcp",
        "client_ip": CLIENT_IP,
        "client_port": fetch.client_port,
        "server_ip": SERVER_IP,
        "server_port": NGINX_H2,
        "sni": WWW,
        "alpn_offered": fetch.offered,
        "alpn_selected": fetch.accepted if selection in ("visible", "decrypted") else None,
        "selection": selection,
        "tls_version": fetch.tls_version,
        "client_version": "1.2" if fetch.tls_version == "1.2" else "1.3",
        "cipher_suite": cipher_suite_number(fetch.cipher),
        "ech": False,
        "grease": False,
        "hello_retry": False,
        "alert": None,
        "violation": None,
    }


def _fields(row: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in like}


def test_curl_to_nginx_rows_are_what_curl_negotiated(
    veth_lab: tuple[str, str], nginx: Path, live_runs: list[Live], tmp_path: Path
) -> None:
    client, server = veth_lab
    out = tmp_path / "live.ndjson"
    opened = tcp_passive_opens(server)
    run = _live(live_runs, client, tmp_path, "-T", "ndjson", "-o", str(out), "-q")
    fetches = [
        (curl_fetch(client, NGINX_H2, "--http2"), "encrypted"),
        (curl_fetch(client, NGINX_H2, "--http1.1"), "encrypted"),
        (curl_fetch(client, NGINX_H2, "--http2", *TLS12), "visible"),
        (curl_fetch(client, NGINX_H2, "--http1.1", *TLS12), "visible"),
        (curl_fetch(client, NGINX_H2, "--no-alpn", *TLS12), "not-offered"),
    ]
    _stopped_cleanly(run)
    # what curl said, beside what nginx logged of the same connections
    assert [(f.offered, f.accepted, f.http_version, f.tls_version) for f, _ in fetches] == [
        (["h2", "http/1.1"], "h2", "2", "1.3"),
        (["http/1.1"], "http/1.1", "1.1", "1.3"),
        (["h2", "http/1.1"], "h2", "2", "1.2"),
        (["http/1.1"], "http/1.1", "1.1", "1.2"),
        ([], None, "1.1", "1.2"),
    ]
    assert nginx_requests(nginx)[-5:] == [
        (f.client_port, f.tls_version, f.accepted or "", 200) for f, _ in fetches
    ]
    assert tcp_passive_opens(server) - opened == len(fetches)  # the server's count
    rows = _by_client_port(_ndjson(out))
    assert sorted(rows) == sorted(f.client_port for f, _ in fetches)  # exactly these
    for fetch, selection in fetches:
        want = _curl_row(fetch, selection)
        assert _fields(rows[fetch.client_port], want) == want


def test_tls13_selection_is_decrypted_with_curls_key_log(
    veth_lab: tuple[str, str], nginx: Path, live_runs: list[Live], tmp_path: Path
) -> None:
    client, _server = veth_lab
    out, keys = tmp_path / "live.ndjson", tmp_path / "curl.keys"
    keys.touch()  # curl appends to it as it makes each handshake, alpnsniff already running
    run = _live(live_runs, client, tmp_path, "--keylog", str(keys), "-T", "ndjson", "-o",
                str(out), "-q")  # fmt: skip
    fetches = [
        curl_fetch(client, NGINX_H2, "--http2", keylog=keys),
        curl_fetch(client, NGINX_H2, "--http1.1", keylog=keys),
    ]
    _stopped_cleanly(run)
    assert [f.tls_version for f in fetches] == ["1.3", "1.3"]
    assert keys.read_text().count("SERVER_HANDSHAKE_TRAFFIC_SECRET") == 2
    rows = _by_client_port(_ndjson(out))
    assert sorted(rows) == sorted(f.client_port for f in fetches)
    for fetch in fetches:
        want = _curl_row(fetch, "decrypted")
        assert _fields(rows[fetch.client_port], want) == want


# ---------------------------------------------------------------- aioquic


@pytest.fixture(scope="module")
def quic(veth_lab: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    _client, server = veth_lab
    with quic_server(server, tmp_path_factory.mktemp("quic")):
        yield


def _quic_row(selection: str) -> dict[str, Any]:
    return {
        "transport": "quic",
        "client_ip": CLIENT_IP,
        "server_ip": SERVER_IP,
        "server_port": 4433,
        "sni": "quic.example.test",
        "alpn_offered": ["h3"],  # quic_client.py's offer (it printed "negotiated ALPN h3")
        "alpn_selected": "h3" if selection == "decrypted" else None,
        "selection": selection,
        "tls_version": "1.3",
        "quic_version": "1",
        "quic_restarts": 0,
        "ech": False,
        "alert": None,
        "violation": None,
    }


def test_aioquic_h3_selection_is_encrypted_without_keys(
    veth_lab: tuple[str, str], quic: None, live_runs: list[Live], tmp_path: Path
) -> None:
    client, _server = veth_lab
    out = tmp_path / "live.ndjson"
    run = _live(live_runs, client, tmp_path, "-T", "ndjson", "-o", str(out), "-q")
    quic_fetch(client)
    _stopped_cleanly(run)
    rows = _ndjson(out)
    assert [_fields(r, _quic_row("encrypted")) for r in rows] == [_quic_row("encrypted")]


def test_aioquic_h3_selection_is_decrypted_with_its_secrets_log(
    veth_lab: tuple[str, str], quic: None, live_runs: list[Live], tmp_path: Path
) -> None:
    client, _server = veth_lab
    out, keys = tmp_path / "live.ndjson", tmp_path / "quic.keys"
    keys.touch()
    run = _live(live_runs, client, tmp_path, "--keylog", str(keys), "-T", "ndjson", "-o",
                str(out), "-q")  # fmt: skip
    quic_fetch(client, keylog=keys)
    _stopped_cleanly(run)
    assert "SERVER_HANDSHAKE_TRAFFIC_SECRET" in keys.read_text()
    rows = _ndjson(out)
    assert [_fields(r, _quic_row("decrypted")) for r in rows] == [_quic_row("decrypted")]


# ---------------------------------------------------------------- Chromium


def test_headless_chromium_to_nginx_over_h2(
    veth_lab: tuple[str, str], nginx: Path, live_runs: list[Live], tmp_path: Path
) -> None:
    client, server = veth_lab
    out = tmp_path / "live.ndjson"
    seen = len(nginx_requests(nginx))
    opened = tcp_passive_opens(server)
    run = _live(live_runs, client, tmp_path, "-T", "ndjson", "-o", str(out), "-q")
    chromium_fetch(client, NGINX_H2, tmp_path / "profile")
    _stopped_cleanly(run)
    requests = nginx_requests(nginx)[seen:]
    assert requests and {(tls, alpn) for _port, tls, alpn, _status in requests} == {("1.3", "h2")}
    rows = _by_client_port(_ndjson(out))
    # one row for each connection the server accepted: Chromium opens a spare one beside
    # the one its requests (the page, /favicon.ico) go over
    assert len(rows) == tcp_passive_opens(server) - opened
    assert {port for port, *_ in requests} <= set(rows)
    want = {
        "transport": "tcp",
        "client_ip": CLIENT_IP,
        "server_ip": SERVER_IP,
        "server_port": NGINX_H2,
        "sni": WWW,
        "alpn_offered": ["h2", "http/1.1"],  # a row, not skipped, ECH GREASE or not
        "alpn_selected": None,
        "selection": "encrypted",
        "tls_version": "1.3",
        "client_version": "1.3",
        "ech": True,  # Chromium sends GREASE ECH to every server
        "grease": True,
        "alps": ["h2"],
        "alert": None,
        "violation": None,
    }
    for row in rows.values():
        assert _fields(row, want) == want
        assert 0xFE0D in row["extensions"] and row["ech_payload_len"] > 0


# ---------------------------------------------------------------- a quiet link


@pytest.fixture(scope="module")
def silent(veth_lab: tuple[str, str]) -> Iterator[None]:
    _client, server = veth_lab
    with silent_server(server):
        yield


def _temporary_output(folder: Path, name: str) -> Path | None:
    """The file ``-o folder/name`` is written to while the run lasts (renamed at the end)."""
    found = sorted(folder.glob(f".{name}.*.tmp"))
    return found[0] if found else None


def test_an_unanswered_client_hello_is_unseen_after_the_idle_timeout(
    veth_lab: tuple[str, str], silent: None, live_runs: list[Live], tmp_path: Path
) -> None:
    client, _server = veth_lab
    out = tmp_path / "live.ndjson"
    run = _live(live_runs, client, tmp_path, "--idle-timeout", "2", "-T", "ndjson", "-o",
                str(out), "-q")  # fmt: skip
    sent = time.monotonic()
    hello = waiting_client_hello(client, SILENT_PORT, "quiet.example.test")
    try:
        # the server's kernel acknowledges the ClientHello; then nothing crosses the link
        # until the row must be out: the client waits, the server never answers
        rows: list[dict[str, Any]] = []
        while time.monotonic() < sent + 2 + 1.5 and not rows:
            time.sleep(0.1)
            partial = _temporary_output(tmp_path, out.name)
            if partial is not None:
                rows = [json.loads(line) for line in partial.read_text().splitlines()]
        waited = time.monotonic() - sent
        assert run.running() and hello.poll() is None
    finally:
        hello.kill()
        hello.wait()
    assert rows, f"no row {waited:.1f} s after the ClientHello"
    assert 2 <= waited <= 3.5, waited
    want = {
        "transport": "tcp",
        "client_ip": CLIENT_IP,
        "server_ip": SERVER_IP,
        "server_port": SILENT_PORT,
        "sni": "quiet.example.test",
        "alpn_offered": ["h2", "http/1.1"],
        "alpn_selected": None,
        "selection": "unseen",
        "tls_version": None,
        "server_frame": None,
    }
    assert [_fields(r, want) for r in rows] == [want]
    _stopped_cleanly(run)
    assert _ndjson(out) == rows  # the closing packets (RST) of the killed client add no row
    assert run.stats()["tcp_evicted_idle"] == 1  # it left by the idle timeout, not at the end


# ---------------------------------------------------------------- SIGTERM, every format


def _read_rows(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The rows of a csv or Parquet output, a dict per row, in the ndjson's terms (lists as
    lists, nulls as None), once checked as a whole."""
    if fmt == "csv":
        text = path.read_text()
        assert text.endswith("\n")  # no line cut short
        lines = list(csv.reader(text.splitlines()))
        assert lines[0] == COLUMNS
        assert {len(line) for line in lines} == {len(COLUMNS)}
        return [
            {
                **row,
                "client_port": int(row["client_port"]),
                "server_port": int(row["server_port"]),
                "alpn_offered": row["alpn_offered"].split(),
                **{k: row[k] or None for k in ("alpn_selected", "tls_version", "sni")},
            }
            for row in (dict(zip(COLUMNS, line, strict=True)) for line in lines[1:])
        ]
    import pandas as pd

    frame = pd.read_parquet(path)
    assert list(frame.columns) == COLUMNS
    return [
        {
            str(k): (list(v) if k == "alpn_offered" else None if v is None or v is pd.NA else v)
            for k, v in record.items()
        }
        for record in frame.to_dict("records")
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_sigterm_mid_run_leaves_a_complete_valid_file(
    veth_lab: tuple[str, str],
    nginx: Path,
    silent: None,
    live_runs: list[Live],
    tmp_path: Path,
    fmt: str,
) -> None:
    client, server = veth_lab
    out = tmp_path / f"live.{fmt}"
    opened = tcp_passive_opens(server)
    run = _live(live_runs, client, tmp_path, "-T", fmt, "-o", str(out), "-q")
    fetches = [
        (curl_fetch(client, NGINX_H2, "--http2", *TLS12), "visible"),
        (curl_fetch(client, NGINX_H2, "--http1.1"), "encrypted"),
    ]
    # and a handshake still open at the signal: the ClientHello sent, no answer
    hello = waiting_client_hello(client, SILENT_PORT, "quiet.example.test")
    try:
        time.sleep(0.5)
        _stopped_cleanly(run, signal.SIGTERM)
    finally:
        hello.kill()
        hello.wait()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    keys = ("server_port", "sni", "alpn_offered", "alpn_selected", "selection", "tls_version")
    got = {r["client_port"]: tuple(r[k] for k in keys) for r in _read_rows(out, fmt)}
    waiting = [port for port, row in got.items() if row[0] == SILENT_PORT]
    assert len(got) == 3 == tcp_passive_opens(server) - opened and len(waiting) == 1, got
    assert got == {
        **{
            f.client_port: (NGINX_H2, WWW, f.offered, f.accepted if s == "visible" else None,
                            s, f.tls_version)
            for f, s in fetches
        },
        waiting[0]: (SILENT_PORT, "quiet.example.test", ["h2", "http/1.1"], None, "unseen", None),
    }  # fmt: skip


# ---------------------------------------------------------------- only the interface named


def test_another_interfaces_packets_are_not_captured_nor_counted(
    veth_lab: tuple[str, str], live_runs: list[Live], tmp_path: Path
) -> None:
    client, _server = veth_lab
    # vc is silent; lo beside it carries a flood the whole time alpnsniff starts
    quiet = {"kernel_packets": 0, "kernel_drops": 0, "packets": 0}
    seen = []
    with loopback_flood(client):
        for _ in range(4):  # the window is the start's: each run opens it once
            run = _live(live_runs, client, tmp_path, "-T", "ndjson", "-q")
            time.sleep(0.2)
            status, err = run.stop(signal.SIGINT)
            assert status == 130, err
            counts = run.stats()
            seen.append({k: counts.get(k, 0) for k in quiet})
            if seen[-1] != quiet:
                break
    assert seen == [quiet] * 4
