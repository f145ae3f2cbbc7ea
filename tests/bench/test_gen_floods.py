"""The flood generator (bench/gen_floods.py): deterministic, well-formed pcaps that the installed
``alpnsniff`` command reads, with the real handshake's row coming out as announced."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import dpkt
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import gen_floods  # noqa: E402
import run_floods  # noqa: E402

COUNT = 200


def _records(path: Path) -> list[tuple[int, bytes]]:
    """(timestamp in µs, frame) of every record of a classic µs Ethernet pcap."""
    data = path.read_bytes()
    magic, vmaj, vmin, _, _, _, link = struct.unpack_from("<IHHiIII", data, 0)
    assert (magic, vmaj, vmin, link) == (0xA1B2C3D4, 2, 4, 1)
    out = []
    pos = 24
    while pos < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        assert incl == orig and usec < 1_000_000
        out.append((sec * 1_000_000 + usec, data[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    assert pos == len(data)
    return out


@pytest.fixture(scope="module")
def floods(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    d = tmp_path_factory.mktemp("floods")
    return {
        k: (d / f"{k}.pcap", gen_floods.generate(k, d / f"{k}.pcap", COUNT))
        for k in gen_floods.KINDS
    }


@pytest.mark.parametrize("kind", gen_floods.KINDS)
def test_same_arguments_same_bytes(
    kind: str, floods: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    path, summary = floods[kind]
    again = tmp_path / "again.pcap"
    assert gen_floods.generate(kind, again, COUNT) == {**summary, "file": str(again)}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert hashlib.sha256(again.read_bytes()).hexdigest() == digest
    other = tmp_path / "other.pcap"
    gen_floods.generate(kind, other, COUNT, seed=2)
    assert hashlib.sha256(other.read_bytes()).hexdigest() != digest


@pytest.mark.parametrize("kind", gen_floods.KINDS)
def test_valid_pcap_in_time_order(
    kind: str, floods: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    path, summary = floods[kind]
    recs = _records(path)
    assert len(recs) == summary["packets"] == summary["flood_packets"] + summary["real"]["frames"]
    assert path.stat().st_size == summary["bytes"]
    stamps = [ts for ts, _ in recs]
    assert stamps == sorted(stamps)
    clients = set()
    for _, frame in recs:
        ip = dpkt.ethernet.Ethernet(frame).data
        l4 = ip.data
        if bytes(ip.src)[0] == 10:  # a flood packet from its client
            assert l4.dport == 443
            clients.add((bytes(ip.src), l4.sport))
            if kind == "quic-garbage":
                payload = bytes(l4.data)
                assert len(payload) == 1200 and payload[0] & 0xF0 == 0xC0
                assert payload[1:6] == b"\x00\x00\x00\x01\x08"
    assert len(clients) == COUNT  # every flood connection from its own address and port


def test_default_span_fits_in_60_s_and_can_be_set(tmp_path: Path) -> None:
    big = gen_floods.flood_span_us(5_000_000, None, None)
    assert big == 60_000_000  # 5M packets at 20k/s would take 250 s: squeezed into 60 s
    assert gen_floods.flood_span_us(1_000_000, None, None) == 50_000_000
    assert gen_floods.flood_span_us(1_000_000, None, 2000.0) == 500_000_000
    s = gen_floods.generate("syn", tmp_path / "spread.pcap", COUNT, duration_s=300)
    stamps = [ts for ts, f in _records(tmp_path / "spread.pcap") if f[26] == 10]
    assert s["flood_duration_s"] == 300
    assert stamps[-1] - stamps[0] == 300_000_000 * (COUNT - 1) // COUNT  # evenly spaced


@pytest.mark.parametrize("kind", gen_floods.KINDS)
def test_alpnsniff_reads_it_and_finds_the_real_handshake(
    kind: str, floods: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    path, summary = floods[kind]
    out = tmp_path / "out.ndjson"
    proc = subprocess.run(
        [run_floods.default_alpnsniff(), "read", str(path), "--format", "ndjson", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    real = summary["real"]
    assert run_floods.find_real(out, real)[0] == "ok"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    mine = [r for r in rows if r["client_ip"] == real["client_ip"]]
    assert len(mine) == 1
    row = mine[0]
    assert row["frame"] == real["frame"]
    assert row["sni"] == real["sni"]
    assert row["alpn_offered"] == real["alpn_offered"]
    assert (row["alpn_selected"], row["selection"]) == (real["alpn_selected"], real["selection"])
    if kind == "stalled-hello":  # every flood hello is reported, none answered
        assert len(rows) == COUNT + 1
        assert all(r["alpn_selected"] is None for r in rows if r is not row)
