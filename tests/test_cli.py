"""The CLI as a script sees it: formats, exit status, one-line errors, escaping."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from alpnsniff.cli import main
from tests.conftest import shared_file
from tests.test_cli_outputs import ALPNSNIFF

TLS12 = "openssl_tls12_alpn_h2.pcap"


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """The installed command, as a user runs it."""
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    return subprocess.run(
        [ALPNSNIFF, *args],
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def test_summary_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["read", str(shared_file("realcap", TLS12))])
    out = capsys.readouterr().out
    assert status == 0
    assert re.search(r"\b1 handshakes? \(tcp 1\)", out)
    assert "h2" in out and "HTTP/2 over TLS" in out
    assert "selection: visible 1" in out


def test_ndjson_rows_have_the_fixed_columns(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["read", str(shared_file("realcap", TLS12)), "--format", "ndjson", "-q"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0 and len(lines) == 1
    row = json.loads(lines[0])
    assert row["ts"] == "2026-11-21T23:12:22.069708000Z"
    assert row["frame"] == 4 and row["transport"] == "tcp"
    assert row["alpn_offered"] == ["h2", "http/1.1"]
    assert row["alpn_selected"] == "h2" and row["selection"] == "visible"
    assert row["tls_version"] == "1.2" and row["ech"] is False and row["npn"] is False
    assert row["alpn_offered_hex"] == ["6832", "687474702f312e31"]


def test_ndjson_does_not_import_pandas() -> None:
    path = shared_file("realcap", TLS12)
    code = (
        "import sys; from alpnsniff.cli import main; "
        f"rc = main(['read', {str(path)!r}, '--format', 'ndjson', '-q']); "
        "sys.stdout.flush(); assert 'pandas' not in sys.modules, 'pandas imported'; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()


def test_stdin_dash_reads_a_pipe() -> None:
    data = shared_file("realcap", TLS12).read_bytes()
    proc = run_cli("read", "-", "--format", "ndjson", "-q", stdin=data)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["alpn_selected"] == "h2"


def test_not_a_capture_is_one_line_and_status_2(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("# not a capture\n")
    proc = run_cli("read", str(bogus))
    assert proc.returncode == 2
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alpnsniff: error: ")
    assert "Traceback" not in proc.stderr.decode()


def test_missing_file_is_status_2() -> None:
    proc = run_cli("read", "/nonexistent/x.pcap")
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("alpnsniff: error: ")


def test_truncated_capture_gives_rows_and_status_1(tmp_path: Path) -> None:
    data = shared_file("realcap", TLS12).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-30])  # the last record loses its end
    proc = run_cli("read", str(cut), "--format", "ndjson", "-q")
    assert proc.returncode == 1
    assert json.loads(proc.stdout.splitlines()[0])["alpn_selected"] == "h2"
    assert "cut short" in proc.stderr.decode() or "truncated" in proc.stderr.decode()


def test_csv_and_parquet(tmp_path: Path) -> None:
    path = str(shared_file("realcap", "openssl_tls13_hrr_alpn.pcap"))
    out_csv = tmp_path / "x.csv"
    assert main(["read", path, "--format", "csv", "-o", str(out_csv), "-q"]) == 0
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [r["selection"] for r in rows] == ["retried", "encrypted"]
    assert rows[0]["alpn_offered"] == "h2 http/1.1"
    out_pq = tmp_path / "x.parquet"
    assert main(["read", path, "--format", "parquet", "-o", str(out_pq), "-q"]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(out_pq)
    assert table.num_rows == 2
    assert table.column("alpn_offered").to_pylist() == [["h2", "http/1.1"]] * 2
    assert str(table.schema.field("ts").type) == "timestamp[ns, tz=UTC]"


def test_parquet_needs_output() -> None:
    proc = run_cli("read", "x.pcap", "--format", "parquet")
    assert proc.returncode == 2 and b"needs -o" in proc.stderr


def test_table_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["read", str(shared_file("realcap", TLS12)), "--format", "table", "-q"]) == 0
    out = capsys.readouterr().out
    assert "127.0.0.1:4431" in out and "visible" in out


def test_csv_cells_cannot_run_as_formulas() -> None:
    from alpnsniff.sinks.text import csv_cell

    assert csv_cell("sni", "=cmd|'/c calc'!A1") == "\\x3dcmd|'/c calc'!A1"
    assert csv_cell("alpn_offered", ["h2", "+x", "@y"]) == "h2 \\x2bx \\x40y"
    assert csv_cell("client_ip", "-1") == "-1"  # not from the wire: left alone


def test_stats_json_and_parallel_jobs_agree(tmp_path: Path) -> None:
    path = str(shared_file("corpus", "pcaps", "ipfixprobe__tls.pcap"))
    outs = {}
    for jobs in ("1", "2"):
        stats = tmp_path / f"stats{jobs}.json"
        rows = tmp_path / f"rows{jobs}.ndjson"
        assert (
            main(
                [
                    "read",
                    path,
                    "--format",
                    "ndjson",
                    "-o",
                    str(rows),
                    "-q",
                    "-j",
                    jobs,
                    "--stats",
                    str(stats),
                ]
            )
            == 0
        )
        counts = json.loads(stats.read_text())
        assert counts["packets"] == 206
        outs[jobs] = sorted(rows.read_text().splitlines())
    assert outs["1"] == outs["2"] and len(outs["1"]) == 29
