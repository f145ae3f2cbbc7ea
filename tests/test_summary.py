"""The run summary: two offer-share columns when ClientHellos carry ECH (``--include-ech``
picks the sorted one), plurals and thousands separators, skip reasons, named draft and legacy
ALPN IDs, the DTLS and internal-error lines. Records from real captures; the CLI test runs the
installed ``alpnsniff`` command."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from alpnsniff.pipeline import analyze_file
from alpnsniff.records import Handshake
from alpnsniff.sinks.summary import Summary
from tests.conftest import CAPTURES, shared_file

ALPNSNIFF = shutil.which("alpnsniff")
CHROMIUM_H2 = CAPTURES / "chromium_nginx_h2_veth1500.pcap"  # 2 ClientHellos, GREASE ECH
ECH_LINE_2_OF_2 = (
    "ECH: 2 of 2 ClientHellos carry it: GREASE ECH and real ECH look alike on the wire, "
    "and a real ECH hello's outer offer may be a decoy, so both shares are shown"
)


def records(*names: str) -> list[Handshake]:
    return [h for name in names for h in analyze_file(CAPTURES / name).handshakes]


def summary_lines(hs: list[Handshake], stats: Counter[str], **kwargs: bool) -> list[str]:
    summary = Summary(**kwargs)
    for h in hs:
        summary.add(h)
    return summary.lines(stats, captures=1)


def section(lines: list[str], head: str) -> list[str]:
    """The line starting with ``head`` and the indented lines under it."""
    start = next(i for i, line in enumerate(lines) if line.startswith(head))
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return lines[start:end]


# ECH: 3 ClientHellos carry it (Chromium: h2,http/1.1 twice over TCP, h3 once over QUIC);
# 3 do not (nghttp: h2,h2-16,h2-14; aioquic: h3, twice).
MIXED = (
    "chromium_nginx_h2_veth1500.pcap",
    "chromium_aioquic_h3_veth1500.pcap",
    "nghttp_h2_tls12.pcap",
    "aioquic_h3_v1.pcap",
    "aioquic_h3_v2.pcap",
)


def test_offer_shares_with_ech_left_out_and_counted_side_by_side() -> None:
    lines = summary_lines(records(*MIXED), Counter(packets=10))
    assert lines[1] == (
        "ECH: 3 of 6 ClientHellos carry it: GREASE ECH and real ECH look alike on the wire, "
        "and a real ECH hello's outer offer may be a decoy, so both shares are shown"
    )
    assert section(lines, "offered") == [
        "offered (share of ClientHellos, count):",
        "                             ECH left out (3)        ECH counted (6)",
        "  h3                         66.7%          2       50.0%          3  HTTP/3",
        "  h2                         33.3%          1       50.0%          3  HTTP/2 over TLS",
        "  h2-16                      33.3%          1       16.7%          1  "
        "HTTP/2 draft 16 (unregistered)",
        "  h2-14                      33.3%          1       16.7%          1  "
        "HTTP/2 draft 14 (unregistered)",
        "  http/1.1                    0.0%          0       33.3%          2  HTTP/1.1",
    ]


def test_include_ech_puts_the_ech_counted_column_first_and_sorts_by_it() -> None:
    lines = summary_lines(records(*MIXED), Counter(packets=10), include_ech=True)
    assert section(lines, "offered") == [
        "offered (share of ClientHellos, count; --include-ech: sorted by ECH counted):",
        "                              ECH counted (6)       ECH left out (3)",
        "  h3                         50.0%          3       66.7%          2  HTTP/3",
        "  h2                         50.0%          3       33.3%          1  HTTP/2 over TLS",
        "  http/1.1                   33.3%          2        0.0%          0  HTTP/1.1",
        "  h2-16                      16.7%          1       33.3%          1  "
        "HTTP/2 draft 16 (unregistered)",
        "  h2-14                      16.7%          1       33.3%          1  "
        "HTTP/2 draft 14 (unregistered)",
    ]


def test_every_client_hello_with_ech_leaves_the_left_out_column_empty() -> None:
    lines = summary_lines(records("chromium_nginx_h2_veth1500.pcap"), Counter(packets=39))
    assert lines[:6] == [
        "1 capture, 39 packets, 2 handshakes (tcp 2)",
        ECH_LINE_2_OF_2,
        "offered (share of ClientHellos, count):",
        "                             ECH left out (0)        ECH counted (2)",
        "  h2                                        -      100.0%          2  HTTP/2 over TLS",
        "  http/1.1                                  -      100.0%          2  HTTP/1.1",
    ]


def test_without_ech_one_column_and_singulars() -> None:
    lines = summary_lines(records("nginx_curl_h2_tls12.pcap"), Counter(packets=12))
    assert lines[:5] == [
        "1 capture, 12 packets, 1 handshake (tcp 1)",
        "ECH: not carried by the ClientHello",
        "offered (share of 1 ClientHello):",
        "  h2                    100.0%          1  HTTP/2 over TLS",
        "  http/1.1              100.0%          1  HTTP/1.1",
    ]
    assert "selected (share of 1 selection seen or decrypted):" in lines


def test_one_client_hello_with_ech() -> None:
    lines = summary_lines(records("chromium_aioquic_h3_veth1500.pcap"), Counter(packets=1))
    assert lines[0] == "1 capture, 1 packet, 1 handshake (quic 1)"
    assert lines[1].startswith("ECH: 1 of 1 ClientHello carries it: GREASE ECH and real ECH")


def test_no_client_hello_no_ech_line() -> None:
    assert Summary().lines(Counter(packets=5), captures=2) == [
        "2 captures, 5 packets, 0 handshakes"
    ]


def test_thousands_separators_in_every_count() -> None:
    (h,) = records("openssl_tls12_split_records.pcap")
    many = dataclasses.replace(h, alpn_offered_raw=tuple(b"x%d" % i for i in range(1020)))
    summary = Summary()
    for _ in range(1000):
        summary.add(many)
    lines = summary.lines(Counter(packets=1_234_567, **{"skipped_non-ip": 2345}), captures=1)
    assert lines[0] == "1 capture, 1,234,567 packets, 1,000 handshakes (tcp 1,000)"
    assert lines[1] == "ECH: carried by none of the 1,000 ClientHellos"
    assert lines[2] == "offered (share of 1,000 ClientHellos):"
    assert lines[3] == "  x0                    100.0%      1,000  unknown"
    assert lines[18] == "  … 1,005 more IDs              1,005,000  (offers)"
    assert lines[-2:] == ["skipped:", "  non-ip  2,345"]


def test_skip_reasons_listed_one_a_line_without_the_prefix() -> None:
    stats = Counter(
        {
            "packets": 5000,
            "skipped_non-ip": 1306,
            "skipped_not-tcp-udp": 99,
            "tcp_evicted_byte_budget": 3,
            "quic_initial_undecryptable": 7,
            "tcp_client_hello_incomplete": 1,
            "udp_not_quic": 40,  # not a skip reason: not listed
        }
    )
    lines = Summary().lines(stats, captures=1)
    assert lines[1:] == [
        "skipped:",
        "  non-ip                       1,306",
        "  not-tcp-udp                     99",
        "  quic_initial_undecryptable       7",
        "  tcp_evicted_byte_budget          3",
        "  tcp_client_hello_incomplete      1",
    ]


@pytest.mark.parametrize(
    ("errors", "line"),
    [
        (1, "1 packet hit an internal error and was skipped (see the first message above)"),
        (
            1200,
            "1,200 packets hit an internal error and were skipped (see the first message above)",
        ),
    ],
)
def test_internal_errors_have_their_own_line(errors: int, line: str) -> None:
    stats = Counter({"packets": 5000, "internal_error": errors, "quic_evicted_idle": 2})
    lines = Summary().lines(stats, captures=1)
    assert lines[1:] == [line, "skipped:", "  quic_evicted_idle  2"]


def test_draft_and_legacy_ids_are_named_in_the_summary() -> None:
    lines = summary_lines(records("nghttp_h2_tls12.pcap", "aioquic_alpn_mismatch.pcap"), Counter())
    assert "  h2-16                  50.0%          1  HTTP/2 draft 16 (unregistered)" in lines
    assert "  h2-14                  50.0%          1  HTTP/2 draft 14 (unregistered)" in lines
    assert "  h3-29                  50.0%          1  HTTP/3 draft 29 (unregistered)" in lines
    assert not [line for line in lines if line.endswith("unknown")]


def test_dtls_connections_not_dissected_get_one_line() -> None:
    stats = Counter({"packets": 17, "dtls_connections_not_dissected": 1})
    assert Summary().lines(stats, captures=1) == [
        "1 capture, 17 packets, 0 handshakes",
        "DTLS: 1 connection seen, not dissected (DTLS support comes later)",
    ]
    stats.update(dtls_connections_not_dissected=1999, dtls_records_not_dissected=4321)
    assert Summary().lines(stats, captures=3)[1] == (
        "DTLS: 2,000 connections (4,321 records) seen, not dissected (DTLS support comes later)"
    )
    assert Summary().lines(Counter(packets=3, dtls_connections_not_dissected=0), captures=1) == [
        "1 capture, 3 packets, 0 handshakes"
    ]
    # another protocol recognised on UDP but not dissected yet gets the same kind of line
    stats = Counter({"packets": 3, "stun_connections_not_dissected": 2})
    assert Summary().lines(stats, captures=1)[1] == "STUN: 2 connections seen, not dissected"


def run_cli(*args: str | Path) -> list[str]:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    done = subprocess.run(
        [ALPNSNIFF, "read", *map(str, args), "--format", "summary"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_cli_shows_both_share_columns_on_a_chromium_capture() -> None:
    assert run_cli(CHROMIUM_H2) == [
        "1 capture, 39 packets, 2 handshakes (tcp 2)",
        ECH_LINE_2_OF_2,
        "offered (share of ClientHellos, count):",
        "                             ECH left out (0)        ECH counted (2)",
        "  h2                                        -      100.0%          2  HTTP/2 over TLS",
        "  http/1.1                                  -      100.0%          2  HTTP/1.1",
        "selection: encrypted 2",
        "tls version: 1.3 2",
    ]
    assert run_cli(CHROMIUM_H2, "--include-ech")[2:6] == [
        "offered (share of ClientHellos, count; --include-ech: sorted by ECH counted):",
        "                              ECH counted (2)       ECH left out (0)",
        "  h2                        100.0%          2                      -  HTTP/2 over TLS",
        "  http/1.1                  100.0%          2                      -  HTTP/1.1",
    ]


def test_cli_says_dtls_was_seen_and_not_dissected() -> None:
    names = (
        "arkime__wireshark-dtls12.pcap",
        "ja4__dtls-udp.notest.pcap",
        "zeek__tls_dtls13-wolfssl.pcap",
    )
    paths = [shared_file("corpus", "pcaps", name) for name in names]
    lines = run_cli(*paths)
    assert lines[0].startswith("3 captures, ") and lines[0].endswith(", 0 handshakes")
    assert "DTLS: 3 connections seen, not dissected (DTLS support comes later)" in lines
