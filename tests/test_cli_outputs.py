"""Outputs as a user meets them, through the installed ``alpnsniff`` command: an output that
is an input is refused, bad output paths are refused before reading, write errors are one
line, every output file appears whole or not at all, ``-o`` works for every format, and an
error names its file once."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
TLS12 = CAPTURES / "openssl_tls12_h2.pcap"  # one handshake, frame 4, 17 packets


def installed_command() -> str | None:
    """The installed ``alpnsniff`` script (the one beside this Python: no pyenv shim, whose
    start costs more than the run)."""
    found = shutil.which("alpnsniff")
    beside = Path(sys.executable).with_name("alpnsniff")
    return str(beside) if found and beside.exists() else found


ALPNSNIFF = installed_command()


def cli(
    *args: str, cwd: Path | None = None, stdout: object = subprocess.PIPE
) -> subprocess.CompletedProcess[bytes]:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    return subprocess.run(
        [ALPNSNIFF, "read", *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, timeout=60
    )  # type: ignore[call-overload, no-any-return]


def err_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The one line on stderr (and no traceback)."""
    text = proc.stderr.decode()
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "same.pcap"
    shutil.copy(TLS12, path)
    return path


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------- 1: an output that is an input
@pytest.mark.parametrize(
    ("fmt", "how"),
    [("csv", "same"), ("parquet", "same"), ("summary", "symlink"), ("ndjson", "hardlink")],
)
def test_an_input_is_never_an_output(tmp_path: Path, capture: Path, fmt: str, how: str) -> None:
    target = capture
    if how == "symlink":
        target = tmp_path / "link.pcap"
        target.symlink_to(capture.name)
    elif how == "hardlink":
        target = tmp_path / "hard.pcap"
        os.link(capture, target)
    before = md5(capture)
    proc = cli(str(capture), "--format", fmt, "-o", str(target))
    assert proc.returncode == 2
    assert err_line(proc) == (
        f"alpnsniff: error: -o {target} is the same file as input {capture}: "
        "refusing to overwrite it"
    )
    assert md5(capture) == before and proc.stdout == b""
    assert len(listing(tmp_path)) == (1 if how == "same" else 2)  # no temporary file left


def test_stats_and_keylog_are_never_outputs(tmp_path: Path, capture: Path) -> None:
    keys = tmp_path / "tls.keys"
    keys.write_text("# no secrets\n")
    before = md5(capture)
    proc = cli(str(capture), "--stats", str(capture))
    assert proc.returncode == 2 and proc.stdout == b""
    assert err_line(proc) == (
        f"alpnsniff: error: --stats {capture} is the same file as input {capture}: "
        "refusing to overwrite it"
    )
    proc = cli(str(capture), "--keylog", str(keys), "--format", "csv", "-o", str(keys))
    assert proc.returncode == 2
    assert "is the same file as key log" in err_line(proc)
    out = tmp_path / "x.csv"
    proc = cli(str(capture), "--format", "csv", "-o", str(out), "--stats", str(out))
    assert proc.returncode == 2
    assert err_line(proc).endswith(f"is the same file as --stats {out}: refusing to overwrite it")
    assert md5(capture) == before and keys.read_text() == "# no secrets\n"
    assert listing(tmp_path) == ["same.pcap", "tls.keys"]


# ---------------------------------------------------------------- 2: output paths and errors
def test_bad_output_paths_are_refused_before_reading(tmp_path: Path, capture: Path) -> None:
    cases = [
        ("csv", str(tmp_path / "missing" / "x.out"), f"no such folder: {tmp_path / 'missing'}"),
        ("parquet", str(tmp_path / "missing" / "x.out"), f"no such folder: {tmp_path / 'missing'}"),
        ("summary", str(tmp_path), "is a folder"),
        ("table", str(capture / "x.out"), f"not a folder: {capture}"),
    ]
    for fmt, path, why in cases:
        proc = cli(str(capture), "--format", fmt, "-o", path)
        assert proc.returncode == 2, proc.stderr
        assert err_line(proc) == f"alpnsniff: error: {path}: {why}"
        assert proc.stdout == b""  # refused before reading: no summary either
    bad = str(tmp_path / "missing" / "stats.json")
    proc = cli(str(capture), "--stats", bad)
    assert proc.returncode == 2 and proc.stdout == b""
    assert err_line(proc) == f"alpnsniff: error: {bad}: no such folder: {tmp_path / 'missing'}"
    assert listing(tmp_path) == ["same.pcap"]


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A file this user cannot write: mode 0444, or for root an immutable file (chattr +i)."""
    path = tmp_path / "locked.csv"
    path.write_text("old\n")
    path.chmod(0o444)
    immutable = False
    if os.access(path, os.W_OK):  # root: the mode does not stop it
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if done.returncode != 0 or os.access(path, os.W_OK):
            pytest.skip("running as root where chattr +i is unavailable: nothing stops root")
        immutable = True
    yield path
    if immutable:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_file_that_cannot_be_written_is_refused(capture: Path, unwritable: Path) -> None:
    proc = cli(str(capture), "--format", "csv", "-o", str(unwritable))
    assert proc.returncode == 2
    assert err_line(proc) == f"alpnsniff: error: {unwritable}: permission denied"
    assert unwritable.read_text() == "old\n"
    assert listing(unwritable.parent) == ["locked.csv", "same.pcap"]


@pytest.mark.parametrize(("fmt", "fmt_o"), [("csv", "table"), ("summary", "ndjson")])
def test_a_full_disk_is_one_line_and_status_1(capture: Path, fmt: str, fmt_o: str) -> None:
    with open("/dev/full", "wb") as full:
        proc = cli(str(capture), "--format", fmt, "-q", stdout=full)
    assert proc.returncode == 1
    assert err_line(proc) == "alpnsniff: error: cannot write to stdout: No space left on device"
    proc = cli(str(capture), "--format", fmt_o, "-q", "-o", "/dev/full")
    assert proc.returncode == 1
    assert err_line(proc) == "alpnsniff: error: cannot write to /dev/full: No space left on device"


# ---------------------------------------------------------------- 3: atomic outputs
def test_a_failed_run_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    out.write_text("old rows\n")
    stats = tmp_path / "stats.json"
    proc = cli(
        str(tmp_path / "absent.pcap"), "--format", "csv", "-o", str(out), "--stats", str(stats)
    )
    assert proc.returncode == 2
    assert err_line(proc) == f"alpnsniff: error: {tmp_path / 'absent.pcap'}: no such file"
    assert out.read_text() == "old rows\n"
    assert listing(tmp_path) == ["rows.csv"]


def test_outputs_replace_through_a_symlink_and_keep_the_mode(tmp_path: Path, capture: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real.name)
    proc = cli(str(capture), "--format", "csv", "-q", "-o", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and (real.stat().st_mode & 0o777) == 0o640
    rows = list(csv.DictReader(io.StringIO(real.read_text())))
    assert [r["frame"] for r in rows] == ["4"]
    assert listing(tmp_path) == ["link.csv", "real.csv", "same.pcap"]


# ---------------------------------------------------------------- 4: -o for summary and table
def test_o_writes_the_summary_and_the_table(tmp_path: Path, capture: Path) -> None:
    summary = tmp_path / "summary.txt"
    proc = cli(str(capture), "--format", "summary", "-o", str(summary))
    assert proc.returncode == 0 and proc.stdout == b"" and proc.stderr == b""
    text = summary.read_text()
    assert "17 packets" in text and "h2" in text and "selection: visible 1" in text
    table = tmp_path / "table.txt"
    proc = cli(str(capture), "--format", "table", "-q", "-o", str(table))
    assert proc.returncode == 0 and proc.stdout == b"" and proc.stderr == b""
    text = table.read_text()
    assert "127.0.0.1:4431" in text and "visible" in text and "\x1b" not in text
    assert text.splitlines()[0].split()[0] == "frame"


# ---------------------------------------------------------------- 5: the name once in errors
def test_a_capture_error_names_the_file_once(tmp_path: Path) -> None:
    bad = tmp_path / "trunc.pcap"
    # a record header that claims 16 MiB after the file's packets: corrupt, reading stops
    bad.write_bytes(TLS12.read_bytes() + b"\x00" * 8 + (1 << 24).to_bytes(4, "little") * 2)
    proc = cli(str(bad), "--format", "ndjson", "-q")
    assert proc.returncode == 1
    line = err_line(proc)
    assert line.startswith(f"alpnsniff: error: {bad}: ") and line.count(str(bad)) == 1, line
    assert len(proc.stdout.splitlines()) == 1


# ---------------------------------------------------------------- 7: --jobs
def test_jobs_takes_any_positive_count(tmp_path: Path, capture: Path) -> None:
    one = cli(str(capture), "--format", "ndjson", "-q", "--jobs", "1")
    many = cli(str(capture), "--format", "ndjson", "-q", "--jobs", "12")
    assert many.returncode == 0, many.stderr
    assert many.stdout == one.stdout and len(one.stdout.splitlines()) == 1
    proc = cli(str(capture), "--jobs", "0")
    assert proc.returncode == 2
    assert "expected auto or a positive integer, got '0'" in proc.stderr.decode()


# ---------------------------------------------------------------- 8: --help
def test_help_describes_every_flag_and_shows_examples() -> None:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    import argparse

    from alpnsniff import cli as cli_module

    parser = argparse.ArgumentParser()
    cli_module._read_arguments(parser)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and "\n" not in action.help, action.option_strings
    text = subprocess.run(
        [ALPNSNIFF, "read", "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    examples = text.split("examples:", 1)[1].splitlines()
    commands = [line for line in examples if "alpnsniff read " in line]
    assert 3 <= len(commands) <= 4, text
    assert any(" -f " in c for c in commands)  # a capture filter
    assert any("--sni" in c or "--host" in c for c in commands)  # a record filter
    assert any(" -T " in c and " -o " in c for c in commands)  # a format with -o
    for flag in ("-r", "-T", "-f", "-o", "--host", "--port", "--sni", "--alpn", "--stats"):
        assert f"  {flag}" in text or f", {flag}" in text, flag
