"""Packet batches: what every reader hands the pipeline (``CaptureSource.batches()``).

A batch keeps a chunk's packets where they lie; these tests check that batches hold exactly
the packets the per-packet view gives, never more than ``MAX_BATCH_PACKETS``, that a regular
file (positioned reads) and a stream of the same bytes give the same packets, that in-band
secrets become visible exactly after the packets before them, and the helpers.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from capture_testlib import REALCAP, needs_shared

from alpnsniff.capture import FILTERED_OUT, MAX_CAPLEN, PacketBatch, batch_of, open_capture
from alpnsniff.capture.batch import MAX_BATCH_PACKETS, first_packets, flatten
from alpnsniff.capture.stats import CaptureStats, FileRefill
from alpnsniff.pipeline import CaptureRun, analyze_file

pytestmark = [needs_shared, pytest.mark.shared]

REAL = REALCAP / "chromium_nginx_h2_veth1500.pcap"
DSB = REALCAP / "chromium_nginx_h2_veth1500_dsb.pcapng"


def big_pcap(path: Path, copies: int) -> Path:
    """The real capture's records repeated: many chunks and many full batches."""
    data = REAL.read_bytes()
    path.write_bytes(data[:24] + data[24:] * copies)
    return path


def packets_of(source: str | Path | io.BytesIO) -> list[tuple[int, int, bytes]]:
    with open_capture(source) as src:
        return list(src.packets())


def test_batches_hold_the_packets_and_no_more_than_the_cap(tmp_path: Path) -> None:
    path = big_pcap(tmp_path / "big.pcap", 400)  # ~10 MB, ~37 * 400 packets
    with open_capture(path) as src:
        batches = list(src.batches())
        stats = src.stats
    sizes = [len(b) for b in batches]
    assert max(sizes) <= MAX_BATCH_PACKETS and min(sizes) > 0
    assert sum(sizes) == stats.packets == 37 * 400
    assert [p for b in batches for p in b.packets()] == packets_of(path)
    # the captured lengths add up to what the reader counted
    assert sum(sum(b.lengths) for b in batches) == stats.bytes


def test_small_records_fill_batches_to_the_cap(tmp_path: Path) -> None:
    # 60-byte frames: a 1 MiB chunk holds ~13,000 of them, more than one batch may
    data = REAL.read_bytes()
    sec, frac = struct.unpack_from("<II", data, 24)
    record = struct.pack("<IIII", sec, frac, 60, 60) + data[40 : 40 + 60]
    path = tmp_path / "small.pcap"
    path.write_bytes(data[:24] + record * 30_000)
    with open_capture(path) as src:
        sizes = [len(b) for b in src.batches()]
    assert sizes.count(MAX_BATCH_PACKETS) >= 6 and sum(sizes) == 30_000


def test_a_file_and_a_stream_of_it_give_the_same_packets(tmp_path: Path) -> None:
    path = big_pcap(tmp_path / "big.pcap", 300)
    with open_capture(path) as src:
        assert isinstance(src._refill(0), FileRefill)  # positioned reads for a regular file
    assert packets_of(io.BytesIO(path.read_bytes())) == packets_of(path)


def test_a_file_cut_inside_a_record_is_counted_the_same_by_both_reads(tmp_path: Path) -> None:
    data = big_pcap(tmp_path / "big.pcap", 100).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 5])  # inside the last record
    results = []
    for source in (cut, io.BytesIO(cut.read_bytes())):
        with open_capture(source) as src:
            n = sum(len(b) for b in src.batches())
            results.append((n, src.stats.truncated_records, src.stats.error is not None))
    assert results[0] == results[1] == (37 * 100 - 1, 1, True)


def test_a_read_error_ends_the_capture_with_one_line(tmp_path: Path) -> None:
    path = big_pcap(tmp_path / "big.pcap", 10)
    stats = CaptureStats()
    with open(path, "rb") as f:
        refill = FileRefill(f.fileno(), 0, "big.pcap", stats)
        assert len(refill(b"", 16)) > 16
    tail = b"partial"
    assert refill(tail, 16) is tail  # the descriptor is closed: the end, said once
    assert stats.error is not None and stats.error.startswith("big.pcap: read error")


def test_secrets_come_after_the_packets_before_them(tmp_path: Path) -> None:
    # the real pcapng's Decryption Secrets Block moved behind its first five packets
    data = DSB.read_bytes()
    blocks = []
    pos = 0
    while pos < len(data):
        blen = struct.unpack_from("<I", data, pos + 4)[0]
        blocks.append(data[pos : pos + blen])
        pos += blen
    kinds = [struct.unpack_from("<I", b)[0] for b in blocks]
    dsb = kinds.index(0x0000000A)
    first_epb = kinds.index(6)
    assert dsb < first_epb  # as dumpcap / editcap write it: before the packets
    moved = blocks[:dsb] + blocks[dsb + 1 : first_epb + 5] + [blocks[dsb]] + blocks[first_epb + 5 :]
    path = tmp_path / "late_dsb.pcapng"
    path.write_bytes(b"".join(moved))
    seen = []
    with open_capture(path) as src:
        for batch in src.batches():
            seen.append((len(batch), len(src.secrets)))
    assert seen[0] == (5, 0)  # the five packets before the block, without its secrets
    assert all(n_secrets == 1 for _n, n_secrets in seen[1:])
    # and the run finds what the original gives: the secrets come before the ServerHello
    late, original = analyze_file(path), analyze_file(DSB)
    assert [h.selection for h in late.handshakes] == [h.selection for h in original.handshakes]


def test_helpers() -> None:
    packets = [(1, 1, b"ab"), (2, 1, b""), (3, 113, b"cde")]
    batch = batch_of(packets)
    assert isinstance(batch, PacketBatch) and len(batch) == 3
    assert list(batch.packets()) == packets and batch.data(2) == b"cde"
    assert list(batch.head(2).packets()) == packets[:2]
    assert list(flatten([batch, batch_of(packets[:1])])) == [*packets, packets[0]]
    cut = list(first_packets([batch, batch_of(packets)], 4))
    assert [len(b) for b in cut] == [3, 1]
    assert list(first_packets([batch], 0)) == []
    assert FILTERED_OUT < 0 and MAX_CAPLEN > 0


def test_a_run_stopped_inside_a_batch_counts_the_packets_it_dissected(tmp_path: Path) -> None:
    path = big_pcap(tmp_path / "big.pcap", 200)
    with open_capture(path) as src:
        run = CaptureRun(src, watch=lambda batches: first_packets(batches, 1234))
        list(run.records())
        result = run.result([])
    assert result.stats["packets"] == 1234 == run.dissector.frame


class _BlockSource:
    """A source that is not a file: the packets of a real capture handed on in small
    blocks, as a live ring delivers them (issue 10's source will feed the same loop)."""

    name = "ring"
    carries_secrets = False

    def __init__(self, packets: list[tuple[int, int, bytes]], block: int) -> None:
        self.secrets: list[tuple[int, bytes]] = []
        self.stats = CaptureStats()
        self._packets = packets
        self._block = block

    def batches(self) -> Iterator[PacketBatch]:
        for i in range(0, len(self._packets), self._block):
            batch = batch_of(self._packets[i : i + self._block])
            self.stats.packets += len(batch)
            yield batch

    def packets(self) -> Iterator[tuple[int, int, bytes]]:
        return flatten(self.batches())

    def close(self) -> None:
        pass

    def __enter__(self) -> _BlockSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.mark.parametrize("block", [1, 3, 64])
def test_any_source_of_batches_feeds_the_run(block: int) -> None:
    from alpnsniff.capture import Source

    packets = packets_of(REAL)
    source = _BlockSource(packets, block)
    assert isinstance(source, Source)
    run = CaptureRun(source)
    records = list(run.records())
    from_file = analyze_file(REAL)
    assert records == from_file.handshakes and len(records) > 0
    assert run.result(records).stats == from_file.stats


def test_a_quiet_link_lets_idle_flows_leave_by_time() -> None:
    """A live source's empty batch carries its clock: a ClientHello whose answer never came
    leaves as ``unseen`` once the flow is idle for the timeout, without another packet."""
    from alpnsniff.pipeline import Dissector
    from alpnsniff.records import Selection

    packets = packets_of(REAL)
    first = analyze_file(REAL).handshakes[0]
    upto = packets[: first.frame]  # up to and with the first ClientHello, no answer
    asked: list[str] = []

    def batches() -> Iterator[PacketBatch]:
        yield batch_of(upto)
        asked.append("quiet")
        yield PacketBatch(b"", now_ns=upto[-1][0] + 121 * 1_000_000_000)
        asked.append("more")  # a live source would block here until the next packet
        yield batch_of(packets[first.frame :])

    seen = []
    for h in Dissector().run_batches(batches()):
        seen.append((list(asked), h.frame, h.selection))
    assert (["quiet"], first.frame, Selection.UNSEEN) in seen
    # the same packets without the quiet batch: that record waits for its answer
    assert first.selection is not Selection.UNSEEN


CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_pcapng_packets_carry_their_interface_as_tshark_numbers_it() -> None:
    """dumpcap on lo and "any" at once: two interfaces; each packet's is tshark's
    frame.interface_id, and the dissector hands it on with the segment."""
    import subprocess

    path = CAPTURES / "dumpcap_lo_any.pcapng"
    tshark = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.interface_id"],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = [int(line) for line in tshark.stdout.split()]
    ours: list[int] = []
    with open_capture(path) as source:
        for batch in source.batches():
            ours.extend(batch.interfaces.get(i, 0) for i in range(len(batch)))
    assert ours == expected
    assert set(expected) == {0, 1}


def test_a_head_of_a_batch_keeps_its_interfaces() -> None:
    batch = batch_of([(1, 1, b"a"), (2, 1, b"b"), (3, 1, b"c")])
    batch.interfaces[1] = 3
    batch.interfaces[2] = 4
    assert batch.head(2).interfaces == {1: 3}
