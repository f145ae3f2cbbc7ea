"""The capture reader against an independent one (dpkt) on every bundled capture: the same
frames, bytes and timestamps, in order."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import dpkt
import pytest

from alpnsniff.capture import open_capture

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
FILES = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))


def dpkt_frames(path: Path) -> list[tuple[float | Decimal, bytes]]:
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        return [(ts, bytes(buf)) for ts, buf in reader]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_same_frames_as_dpkt(path: Path) -> None:
    theirs = dpkt_frames(path)
    with open_capture(path) as source:
        ours = [(ts_ns, data) for ts_ns, _, data in source.packets()]
    assert len(ours) == len(theirs) > 0
    assert [data for _, data in ours] == [data for _, data in theirs]
    for (ts_ns, _), (ts, _) in zip(ours, theirs, strict=True):
        if isinstance(ts, Decimal):  # dpkt's exact form (nanosecond pcap): equal
            assert ts_ns == int(ts * 1_000_000_000)
        else:  # float seconds: ~0.2 µs of precision at today's epoch
            assert abs(ts_ns - ts * 1e9) < 1_000
