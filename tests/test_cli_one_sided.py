"""The installed ``alpnsniff read`` on the server's side of a real capture alone: the
ndjson row says ``"alpn_offered": null``, the CSV cell is empty, the summary counts it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from alpnsniff.pipeline import analyze_file
from tests.flows.one_sided import write_one_side
from tests.test_cli_outputs import TLS12, cli


def _server_only(tmp_path: Path) -> Path:
    copy = tmp_path / "server.pcapng"
    write_one_side(TLS12, copy, analyze_file(TLS12).handshakes, "server")
    return copy


def test_ndjson_csv_and_summary_of_a_server_only_copy(tmp_path: Path) -> None:
    copy = _server_only(tmp_path)
    done = cli("-T", "ndjson", "-q", str(copy))
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.decode().splitlines()
    assert '"alpn_offered":null' in line
    rec = json.loads(line)
    assert rec["alpn_offered"] is None and rec["sni"] is None and rec["ech"] is None
    assert rec["alpn_selected"] == "h2" and rec["selection"] == "visible"
    done = cli("-T", "csv", "-q", str(copy))
    assert done.returncode == 0, done.stderr
    (row,) = csv.DictReader(io.StringIO(done.stdout.decode()))
    assert row["alpn_offered"] == "" and row["client_version"] == ""
    assert row["alpn_selected"] == "h2" and row["selection"] == "visible"
    done = cli(str(copy))
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert "no offer: 1 row without a ClientHello" in text, text
    assert "selected (share of 1 selection seen or decrypted):" in text, text
    assert "offered (share of" not in text, text  # no ClientHello seen: no offer shares
    assert "server_hello_without_client_hello" not in text  # a row, not a skip
