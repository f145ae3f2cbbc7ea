"""Reading without seeking: standard input from a pipe, open streams, streams that hand
over a few bytes at a time, files much larger than one chunk; bounded memory."""

from __future__ import annotations

import gzip
import io
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import IO

import pytest
from capture_testlib import (
    CORPUS,
    REALCAP,
    needs_shared,
    needs_tshark,
    ours,
    pcap_records,
    tshark_frames,
)

from alpnsniff.capture import CHUNK_SIZE, open_capture
from tests.conftest import subprocess_env

pytestmark = [needs_shared, pytest.mark.shared]

REAL = REALCAP / "chromium_nginx_h2_veth1500.pcap"
SITES = CORPUS / "nDPI__sites.pcapng"

READER = (
    "import sys\n"
    "from alpnsniff.capture import open_capture\n"
    "with open_capture('-') as src:\n"
    "    pkts = list(src.packets())\n"
    "print(src.name, src.format, src.compression, len(pkts), pkts[0][0], sum(map(len, (p[2] for p in pkts))))\n"
)


def expected_line(path: Path, fmt: str, compression: str | None) -> str:
    with open_capture(path) as src:
        pkts = list(src.packets())
    return f"<stdin> {fmt} {compression} {len(pkts)} {pkts[0][0]} {sum(len(p[2]) for p in pkts)}"


def run_reader(stdin: IO[bytes] | None) -> subprocess.CompletedProcess[str]:
    env = subprocess_env()
    return subprocess.run(
        [sys.executable, "-c", READER],
        stdin=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(("path", "fmt"), [(REAL, "pcap"), (SITES, "pcapng")])
def test_stdin_redirected_from_a_file(path: Path, fmt: str) -> None:
    with open(path, "rb") as f:
        result = run_reader(f)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected_line(path, fmt, None)


@pytest.mark.parametrize(("path", "fmt"), [(REAL, "pcap"), (SITES, "pcapng")])
@pytest.mark.parametrize("compress", [False, True])
def test_stdin_from_a_pipe(path: Path, fmt: str, compress: bool) -> None:
    """``cat F | reader`` (and ``gzip -c F | reader``): not seekable, peeked, not rewound."""
    cmd = ["gzip", "-c", str(path)] if compress else ["cat", str(path)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as producer:
        result = run_reader(producer.stdout)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected_line(path, fmt, "gzip" if compress else None)


def test_stdin_not_a_capture_is_one_line() -> None:
    with subprocess.Popen(["echo", "hello"], stdout=subprocess.PIPE) as producer:
        env = subprocess_env()
        code = (
            "from alpnsniff.capture import open_capture\n"
            "from alpnsniff.errors import CaptureError\n"
            "try:\n    open_capture('-')\n"
            "except CaptureError as e:\n    print(e)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            stdin=producer.stdout,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )
    assert result.stdout == "<stdin>: not a pcap or pcapng file (starts with 68 65 6c 6c)\n"


class Trickle(io.RawIOBase):
    """A non-seekable stream that hands over at most ``step`` bytes per read, as a pipe
    fed by a slow writer does."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        take = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos : self._pos + take]
        self._pos += len(out)
        return out

    read1 = read


@pytest.mark.parametrize("step", [1, 7, 4096])
@pytest.mark.parametrize("path", [REAL, SITES, REALCAP / "openssl_tls13_alpn_h2_dsb.pcapng"])
def test_trickling_stream(path: Path, step: int) -> None:
    data = path.read_bytes()
    with open_capture(path) as whole:
        expected = list(whole.packets())
        expected_secrets = whole.secrets
    with open_capture(Trickle(data, step)) as src:  # type: ignore[arg-type]
        assert list(src.packets()) == expected
        assert src.secrets == expected_secrets
        assert src.name == "<stream>"


def test_trickling_gzip_stream() -> None:
    with open_capture(Trickle(gzip.compress(SITES.read_bytes()), 5)) as src:  # type: ignore[arg-type]
        assert len(list(src.packets())) == 699
        assert src.compression == "gzip"


def test_open_stream_is_left_open() -> None:
    """A stream handed in belongs to the caller: close() leaves it open."""
    stream = io.BytesIO(REAL.read_bytes())
    with open_capture(stream) as src:
        assert sum(1 for _ in src.packets()) == 37
    assert not stream.closed


def test_path_file_is_closed() -> None:
    src = open_capture(REAL)
    src.close()
    assert src._owned is not None and src._owned.closed


def test_packets_only_once() -> None:
    with open_capture(REAL) as src:
        list(src.packets())
        with pytest.raises(RuntimeError, match="only once"):
            src.packets()


def test_stats_after_an_early_stop() -> None:
    """Counts are right when the consumer stops early (the iterator closed mid-chunk)."""
    with open_capture(REAL) as src:
        it = src.packets()
        taken = [next(it) for _ in range(5)]
        it.close()
    assert src.stats.packets == 5
    assert src.stats.bytes == sum(len(d) for _ts, _lt, d in taken)


def build_big_pcap(path: Path, n: int) -> bytes:
    """A pcap of ``n`` records repeating a real capture's records, timestamps stepping by
    1 µs: several chunks long, so records straddle chunk boundaries."""
    header = REAL.read_bytes()[:24]
    recs = pcap_records(REAL.read_bytes())
    out = [header]
    t = 1_795_302_742_000_000
    for i in range(n):
        _s, _f, orig, pkt = recs[i % len(recs)]
        t += 1
        out.append(struct.pack("<IIII", t // 10**6, t % 10**6, len(pkt), orig) + pkt)
    data = b"".join(out)
    path.write_bytes(data)
    return data


@needs_tshark
@pytest.mark.tshark
def test_many_chunks_match_tshark(tmp_path: Path) -> None:
    path = tmp_path / "big.pcap"
    data = build_big_pcap(path, 12_000)
    assert len(data) > 3 * CHUNK_SIZE
    assert ours(path) == tshark_frames(path)


def test_memory_stays_bounded(tmp_path: Path) -> None:
    """Reading a 30 MB file holds about two chunks, not the file."""
    path = tmp_path / "big.pcap"
    data = build_big_pcap(path, 110_000)
    assert len(data) > 28_000_000
    tracemalloc.start()
    try:
        with open_capture(path) as src:
            n = 0
            for _ts, _lt, _data in src.packets():
                n += 1
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 110_000
    assert src.stats.bytes == len(data) - 24 - 16 * n
    assert peak < 4 * CHUNK_SIZE
