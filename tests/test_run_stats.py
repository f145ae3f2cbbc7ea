"""Every count of a run reaches its stats, the same whichever way the capture is read:
the installed ``alpnsniff`` command (one process or several) and ``alpnsniff.analyze``."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

import alpnsniff
from alpnsniff.sinks.summary import Summary

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
ALPNSNIFF = shutil.which("alpnsniff")
# counts of the CLI process itself, not of the run
PROCESS_STATS = ("peak_rss_kb", "peak_rss_kb_worker", "parallel_jobs")


def cli_stats(tmp_path: Path, *args: str) -> dict[str, int]:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    stats = tmp_path / "stats.json"
    done = subprocess.run(
        [ALPNSNIFF, "read", *args, "--format", "ndjson", "-o", str(tmp_path / "rows.ndjson"), "-q",
         "--stats", str(stats)],
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    counts: dict[str, int] = json.loads(stats.read_text())
    return {k: v for k, v in counts.items() if k not in PROCESS_STATS}


def api_stats(path: Path, **kwargs: object) -> dict[str, int]:
    (result,) = alpnsniff.analyze(path, **kwargs)  # type: ignore[arg-type]
    return {k: v for k, v in result.stats.items() if v and k not in PROCESS_STATS}


@pytest.mark.parametrize(
    ("capture", "counts"),
    [
        ("openssl_tls12_gre.pcap", {"decode_tunnel:gre": 21}),
        ("openssl_tls12_vxlan.pcap", {"decode_tunnel:vxlan": 20}),
        ("openssl_tls12_qinq.pcap", {"decode_qinq": 23, "decode_vlan": 23}),
    ],
)
def test_decoder_counts_reach_the_stats(tmp_path: Path, capture: str, counts: dict) -> None:
    stats = cli_stats(tmp_path, str(CAPTURES / capture))
    assert {k: stats.get(k) for k in counts} == counts
    assert stats == api_stats(CAPTURES / capture)


def test_cli_and_api_stats_agree_with_a_key_log(tmp_path: Path) -> None:
    capture = CAPTURES / "nginx_curl_h2_tls13.pcap"
    keys = CAPTURES / "nginx_curl_h2_tls13.keys"
    stats = cli_stats(tmp_path, str(capture), "--keylog", str(keys))
    assert stats["keylog_sessions"] == 1
    assert stats["tcp_decrypted_encrypted_extensions"] == 1
    assert stats == api_stats(capture, keylog=keys)


def test_one_key_log_for_several_captures_is_counted_once(tmp_path: Path) -> None:
    # the key log holds one TLS 1.3 session (5 secret lines of one client random); read with
    # three captures it still holds one, and each capture's own count says the same
    keys = CAPTURES / "openssl_tls13_h2.keys"
    names = ["openssl_tls13_h2.pcap", "openssl_tls12_h2.pcap", "pyssl_tls12_http11.pcap"]
    paths = [str(CAPTURES / n) for n in names]
    stats = cli_stats(tmp_path, *paths, "--keylog", str(keys))
    assert stats["keylog_sessions"] == 1
    df = alpnsniff.read(paths, keylog=keys)
    assert df.attrs["stats"]["keylog_sessions"] == 1
    assert {c: s["keylog_sessions"] for c, s in df.attrs["stats_by_capture"].items()} == {
        p: 1 for p in paths
    }
    assert {k: v for k, v in df.attrs["stats"].items() if k not in PROCESS_STATS} == stats
    # two pcapngs, each with its own secrets in a Decryption Secrets Block and no key log:
    # each capture's sessions are its own, and the run's are their sum
    dsb = [str(CAPTURES / n) for n in ("openssl_tls13_h2_dsb.pcapng", "aioquic_h3_v1_dsb.pcapng")]
    assert cli_stats(tmp_path, *dsb)["keylog_sessions"] == 2


def test_parallel_run_counts_the_capture_once(tmp_path: Path) -> None:
    capture = str(CAPTURES / "chromium_nginx_h2_veth1500.pcap")
    keys = str(CAPTURES / "chromium_nginx_h2_veth1500.keys")
    one = cli_stats(tmp_path, capture, "--keylog", keys, "--jobs", "1")
    two = cli_stats(tmp_path, capture, "--keylog", keys, "--jobs", "2")
    assert one["keylog_sessions"] == two["keylog_sessions"] > 0
    assert one["packets"] == two["packets"] > 0
    shared = ("packets", "keylog_", "decode_", "skipped_", "tcp_client_hellos", "tcp_decrypted")
    assert {k: v for k, v in two.items() if k.startswith(shared)} == {
        k: v for k, v in one.items() if k.startswith(shared)
    }


def test_summary_reports_quic_evictions_and_internal_errors() -> None:
    stats = Counter(
        {"packets": 10, "quic_evicted_idle": 2, "tcp_evicted_byte_budget": 3, "internal_error": 1}
    )
    lines = Summary().lines(stats, captures=1)
    assert lines[1:] == [
        "1 packet hit an internal error and was skipped (see the first message above)",
        "skipped:",
        "  tcp_evicted_byte_budget  3",
        "  quic_evicted_idle        2",
    ]
