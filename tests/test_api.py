"""alpnsniff.read: the DataFrame's fixed columns, their types, and the run's counts."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import alpnsniff
from alpnsniff import analytics
from alpnsniff.sinks.rows import COLUMNS
from tests.conftest import CAPTURES, shared_file

FIXED = [
    "ts",
    "frame",
    "transport",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "sni",
    "alpn_offered",
    "alpn_selected",
    "selection",
    "tls_version",
    "ech",
    "npn",
]


def test_read_several_captures_gives_typed_columns() -> None:
    paths = [
        shared_file("realcap", "openssl_tls12_alpn_h2.pcap"),
        shared_file("realcap", "chromium_nginx_h2_veth1500.pcap"),
        shared_file("realcap", "aioquic_alpn_mismatch.pcap"),
    ]
    df = alpnsniff.read(paths)
    assert list(df.columns) == list(COLUMNS)
    assert list(df.columns[: len(FIXED)]) == FIXED
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    assert df["frame"].dtype == "int64" and df["ech"].dtype == "boolean"
    assert len(df) == 4
    first = df.iloc[0]
    assert first["ts"] == pd.Timestamp(1795302742069708000, unit="ns", tz="UTC")
    assert first["alpn_offered"] == ["h2", "http/1.1"] and first["alpn_selected"] == "h2"
    assert list(df["selection"]) == ["visible", "encrypted", "encrypted", "rejected"]
    assert list(df["transport"]) == ["tcp", "tcp", "tcp", "quic"]
    assert df.attrs["stats"]["packets"] == 16 + 37 + 2
    assert df.attrs["stats"]["quic_client_hellos"] == 1


def test_offer_shares_leave_ech_out_unless_asked() -> None:
    df = alpnsniff.read(
        [
            shared_file("realcap", "openssl_tls12_alpn_h2.pcap"),
            shared_file("realcap", "chromium_nginx_h2_veth1500.pcap"),
        ]
    )
    shares = analytics.offer_share(df)
    assert shares.set_index("protocol")["client_hellos"].to_dict() == {"h2": 1, "http/1.1": 1}
    assert shares.attrs["left_out_ech"] == 2
    with_ech = analytics.offer_share(df, include_ech=True).set_index("protocol")
    assert with_ech.loc["h2", "client_hellos"] == 3 and with_ech.loc["h2", "share"] == 1.0
    assert with_ech.attrs["left_out_ech"] == 0
    selected = analytics.selection_share(df).set_index("protocol")["handshakes"].to_dict()
    assert selected == {"h2": 1}
    assert analytics.outcomes(df).set_index("selection").loc["encrypted", "handshakes"] == 2


def test_importing_alpnsniff_does_not_import_pandas() -> None:
    code = "import sys, alpnsniff, alpnsniff.cli; assert 'pandas' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# --- the run's counts and error lines, per capture (as the CLI reports them) ----------------

TLS12 = CAPTURES / "openssl_tls12_h2.pcap"


def _cut(tmp_path: Path) -> Path:
    """The capture cut short in its last packet record."""
    path = tmp_path / "cut.pcap"
    path.write_bytes(TLS12.read_bytes()[:-30])
    return path


def _corrupt(tmp_path: Path) -> Path:
    """The capture with its 5th record's captured length made absurd."""
    data = bytearray(TLS12.read_bytes())
    offset = 24
    for _ in range(4):
        offset += 16 + struct.unpack_from("<I", data, offset + 8)[0]
    struct.pack_into("<I", data, offset + 8, 0x7FFFFFFF)
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(data))
    return path


def _cli(path: Path, tmp_path: Path) -> tuple[int, dict[str, int], str]:
    stats = tmp_path / "stats.json"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "alpnsniff.cli", "read", str(path), "--format", "ndjson"),
            *("-q", "--stats", str(stats), "-o", str(tmp_path / "out.ndjson")),
        ],
        capture_output=True,
        timeout=120,
    )
    counts = json.loads(stats.read_text())
    counts.pop("peak_rss_kb", None)
    return proc.returncode, counts, proc.stderr.decode()


@pytest.mark.parametrize(
    ("make", "count"), [(_cut, "truncated_records"), (_corrupt, "corrupt_records")]
)
def test_a_capture_that_ends_early_is_reported_as_the_cli_does(
    tmp_path: Path, make: Any, count: str
) -> None:
    path = make(tmp_path)
    df = alpnsniff.read(path)
    name = str(path)
    assert list(df["capture"].unique()) == [name]
    assert df.attrs["stats"][count] == 1
    assert df.attrs["stats_by_capture"] == {name: df.attrs["stats"]}
    (first, *_) = df.attrs["errors"][name]
    assert name in first and ("cut short" in first or "corrupt" in first)
    status, cli_stats, stderr = _cli(path, tmp_path)
    assert status == 1
    assert cli_stats == df.attrs["stats"]  # the same counts
    assert first in stderr  # the same message


def test_counts_and_errors_by_capture(tmp_path: Path) -> None:
    cut = _cut(tmp_path)
    df = alpnsniff.read([TLS12, cut])
    by = df.attrs["stats_by_capture"]
    assert set(by) == set(df["capture"]) == {str(TLS12), str(cut)}
    assert "truncated_records" in by[str(cut)] and "truncated_records" not in by[str(TLS12)]
    assert set(df.attrs["errors"]) == {str(cut)}
    total: Counter[str] = Counter()
    for counts in by.values():
        total.update(counts)
    assert df.attrs["stats"] == dict(total)


# --- binary file objects --------------------------------------------------------------------


def test_read_a_binary_stream() -> None:
    want = alpnsniff.read(TLS12)
    got = alpnsniff.read(io.BytesIO(TLS12.read_bytes()))
    assert list(got["capture"]) == ["<stream>"]
    pd.testing.assert_frame_equal(got.drop(columns="capture"), want.drop(columns="capture"))
    assert got["capture"].dtype == want["capture"].dtype
    assert got.attrs["stats"] == want.attrs["stats"]
    assert list(got.attrs["stats_by_capture"]) == ["<stream>"]
    # a file opened in binary mode is named by its path: the same frame as the path's
    with open(TLS12, "rb") as f:
        pd.testing.assert_frame_equal(alpnsniff.read(f), want)
        assert not f.closed  # its owner closes it


def test_read_a_mix_of_paths_and_streams(tmp_path: Path) -> None:
    data = TLS12.read_bytes()
    cut = io.BytesIO(data[:-30])
    df = alpnsniff.read([TLS12, io.BytesIO(data), cut])
    assert list(df["capture"]) == [str(TLS12), "<stream 1>", "<stream 2>"]
    assert set(df.attrs["stats_by_capture"]) == {str(TLS12), "<stream 1>", "<stream 2>"}
    (line, *_) = df.attrs["errors"]["<stream 2>"]
    assert line.startswith("<stream 2>:") and "cut short" in line


def test_bytes_are_refused_with_a_hint() -> None:
    with pytest.raises(TypeError, match="BytesIO"):
        alpnsniff.read(TLS12.read_bytes())  # type: ignore[arg-type]
