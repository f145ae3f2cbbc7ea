"""A Parquet file says where its rows came from: the captures (path, size, time, SHA-256),
the key logs by name, alpnsniff's version and build — checked through the installed command,
the hashes against ``sha256sum``."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

import alpnsniff
from tests.test_cli_outputs import ALPNSNIFF, CAPTURES, cli

TLS12 = CAPTURES / "openssl_tls12_h2.pcap"
TLS13 = CAPTURES / "nginx_curl_h2_tls13.pcap"
KEYS = CAPTURES / "nginx_curl_h2_tls13.keys"


def _sha256sum(path: Path) -> str:
    if shutil.which("sha256sum") is None:
        pytest.skip("no sha256sum (coreutils)")
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, check=True, text=True)
    return out.stdout.split()[0]


def _version() -> str:
    assert ALPNSNIFF is not None
    out = subprocess.run([ALPNSNIFF, "--version"], capture_output=True, check=True, text=True)
    return out.stdout.strip()  # "alpnsniff 0.1.0, compiled (mypyc)"


def test_parquet_names_its_captures_their_hashes_and_the_version(tmp_path: Path) -> None:
    out = tmp_path / "rows.parquet"
    # TLS12 given twice: one entry (its rows are one capture's)
    args = [str(TLS12), str(TLS13), str(TLS12), "--keylog", str(KEYS), "-T", "parquet"]
    proc = cli(*args, "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    prov = alpnsniff.load(out).attrs["provenance"]
    assert [c["name"] for c in prov["captures"]] == [str(TLS12), str(TLS13)]
    for entry, path in zip(prov["captures"], (TLS12, TLS13), strict=True):
        assert entry["path"] == str(path.resolve())
        assert entry["size"] == path.stat().st_size
        assert entry["sha256"] == _sha256sum(path)
        mtime = datetime.fromtimestamp(path.stat().st_mtime_ns // 10**9, UTC)
        assert entry["mtime"].startswith(mtime.strftime("%Y-%m-%dT%H:%M:%S."))
    assert prov["keylogs"] == [str(KEYS)] and prov["interfaces"] == []
    assert _version() == f"alpnsniff {prov['alpnsniff']}, {prov['build']}"
    # pandas alone finds it too, in the pandas metadata's attrs
    pd = pytest.importorskip("pandas")
    assert pd.read_parquet(out).attrs["provenance"] == prov


def test_stdin_has_no_path_size_or_hash(tmp_path: Path) -> None:
    out = tmp_path / "rows.parquet"
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    with TLS12.open("rb") as f:
        proc = subprocess.run(
            [ALPNSNIFF, "read", "-", "-T", "parquet", "-o", str(out), "-q"],
            stdin=f,
            capture_output=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr.decode()
    (entry,) = alpnsniff.load(out).attrs["provenance"]["captures"]
    assert entry == {"name": "-", "path": None, "size": None, "mtime": None, "sha256": None}


def test_read_carries_provenance_without_hashing() -> None:
    df = alpnsniff.read([TLS12], keylog=KEYS)
    prov = df.attrs["provenance"]
    (entry,) = prov["captures"]
    assert entry["name"] == str(TLS12) and entry["size"] == os.path.getsize(TLS12)
    assert entry["sha256"] is None  # read does not read its inputs twice
    assert prov["keylogs"] == [str(KEYS)]
