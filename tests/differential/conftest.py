"""Fixtures of the differential tests: one tshark run per capture, shared by every test, and a
tally of the comparison printed at the end of the session."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from tshark_view import TsharkCache, tshark_unavailable_reason

TALLY = pytest.StashKey[Counter[str]]()

# Order and wording of the summary lines (keys of the tally, see test_tls_vs_tshark.py).
SUMMARY_KEYS = (
    ("files", "capture files compared"),
    ("ch_compared", "ClientHellos tshark dissects over TCP (compared)"),
    ("ch_equal", "  equal (same frame, offer list, SNI, SSLv2 flag)"),
    ("ch_differing", "  differing"),
    ("ch_missing", "  missing in alpnsniff"),
    ("ch_extra", "ClientHellos only alpnsniff reports (extra)"),
    ("sh_alpn_compared", "ServerHellos with ALPN tshark shows (compared)"),
    ("sh_alpn_equal", "  equal (selection visible, same octets)"),
    ("sh_selection_compared", "ServerHellos/HRR without ALPN (compared)"),
    ("sh_selection_equal", "  record selection fits (none / encrypted / retried)"),
    ("alert120_compared", "alerts 120 from the server tshark shows (compared)"),
    ("alert120_equal", "  equal (record: alert 120, selection rejected)"),
    ("udp_rows_excluded", "QUIC/DTLS/gQUIC rows excluded (UDP; QUIC compared below)"),
    ("known", "differences explained by the KNOWN_DIFFERENCES table"),
    ("unexplained", "differences NOT explained (failures)"),
)

# The QUIC comparison's lines (keys of the tally, see test_quic_vs_tshark.py / compare_quic).
QUIC_SUMMARY_KEYS = (
    ("quic_files", "capture files with QUIC (either side)"),
    ("quic_ch_compared", "QUIC ClientHellos tshark decrypts (compared)"),
    ("quic_ch_equal", "  equal (frame, offer list, SNI, version, CIDs)"),
    ("quic_ch_differing", "  differing (restarts included)"),
    ("quic_ch_superseded", "  superseded by a later ClientHello (Retry / VN)"),
    ("quic_ch_missing", "  missing in alpnsniff"),
    ("quic_ch_extra", "QUIC ClientHellos only alpnsniff reports (extra)"),
    ("quic_sh_compared", "QUIC ServerHellos tshark shows (compared)"),
    ("quic_sh_equal", "  equal (record answered there: encrypted / decrypted)"),
    ("quic_cc_compared", "server CONNECTION_CLOSE in an Initial (compared)"),
    ("quic_cc_equal", "  equal (0x178: rejected + alert 120; other: aborted)"),
    ("quic_known", "differences explained by the QUIC KNOWN table"),
    ("quic_unexplained", "differences NOT explained (failures)"),
)


@pytest.fixture(scope="session")
def tshark_cache() -> Iterator[TsharkCache]:
    reason = tshark_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    cache = TsharkCache(workers=2)
    yield cache
    cache.close()


@pytest.fixture(scope="session")
def diff_tally(pytestconfig: pytest.Config) -> Counter[str]:
    return pytestconfig.stash.setdefault(TALLY, Counter())


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    tally = config.stash.get(TALLY, None)
    if not tally:
        return
    write = terminalreporter.write_line
    if "files" in tally:
        terminalreporter.write_sep("-", "alpnsniff vs tshark 4.0.17 (TLS over TCP)")
        for key, label in SUMMARY_KEYS:
            write(f"{label:<58} {tally.get(key, 0):>6}")
        reasons = sorted(k for k in tally if k.startswith("diff:"))
        for key in reasons:
            write(f"  difference {key[5:]:<45} {tally[key]:>6}")
    if "quic_files_scanned" in tally:
        terminalreporter.write_sep("-", "alpnsniff vs tshark 4.0.17 (QUIC)")
        for key, label in QUIC_SUMMARY_KEYS:
            write(f"{label:<58} {tally.get(key, 0):>6}")
        for key in sorted(k for k in tally if k.startswith("quic_diff:")):
            write(f"  difference {key[10:]:<45} {tally[key]:>6}")
