"""Real records for the sink tests: every capture in captures/, read by alpnsniff."""

from __future__ import annotations

import pytest

import alpnsniff
from alpnsniff.pipeline import RunResult
from alpnsniff.records import Handshake
from tests.conftest import CAPTURES


def capture_paths() -> list[str]:
    return sorted(str(p) for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))


@pytest.fixture(scope="session")
def real_results() -> list[RunResult]:
    """One result per capture in captures/ (their records, in frame order)."""
    results = alpnsniff.analyze(capture_paths())
    assert sum(len(r.handshakes) for r in results) >= 30, "captures/ holds the test captures"
    return results


@pytest.fixture(scope="session")
def real_records(real_results: list[RunResult]) -> list[tuple[str, Handshake]]:
    """Every record of captures/ as ``(capture, record)``, in capture time order (as a live
    run hands them on)."""
    items = [(r.name, h) for r in real_results for h in r.handshakes]
    return sorted(items, key=lambda item: (item[1].ts_ns, item[0], item[1].frame))
