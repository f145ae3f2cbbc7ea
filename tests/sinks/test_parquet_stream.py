"""ParquetStream: row groups as records come; the file equals alpnsniff.read's DataFrame."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import alpnsniff
from alpnsniff.pipeline import RunResult
from alpnsniff.records import Handshake
from alpnsniff.sinks.frame import to_dataframe, write_parquet
from alpnsniff.sinks.parquet_stream import ParquetStream
from tests.sinks.conftest import capture_paths

SECOND = 1_000_000_000


def test_file_equals_read_of_the_same_captures(
    real_results: list[RunResult], tmp_path: Path
) -> None:
    path = tmp_path / "stream.parquet"
    expected = alpnsniff.read(capture_paths())
    stream = ParquetStream(path, group_rows=7, provenance=expected.attrs["provenance"])
    most_buffered = 0
    for r in real_results:
        for h in r.handshakes:
            stream.add(r.name, h)
            most_buffered = max(most_buffered, stream.buffered)
    attrs = alpnsniff.run_attrs(real_results)
    rows = stream.close(
        stats=attrs["stats"], errors=attrs["errors"], stats_by_capture=attrs["stats_by_capture"]
    )
    assert rows == len(expected) == sum(len(r.handshakes) for r in real_results)
    assert most_buffered < 7  # a full group is written at once: never more than one held
    assert pq.ParquetFile(path).metadata.num_row_groups == math.ceil(rows / 7)
    got = alpnsniff.load(path)
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs == expected.attrs and got.attrs["stats"]["packets"] > 0
    # plain pandas: the pandas metadata gives back read's dtypes
    assert pd.read_parquet(path).dtypes.to_dict() == expected.dtypes.to_dict()


def test_schema_and_metadata_equal_write_parquet(
    real_records: list[tuple[str, Handshake]], tmp_path: Path
) -> None:
    stats = {"packets": 123, "kernel_drops": 0}
    whole = tmp_path / "whole.parquet"
    write_parquet(real_records, whole, stats=stats)
    streamed = tmp_path / "streamed.parquet"
    stream = ParquetStream(streamed, group_rows=10)
    for capture, h in real_records:
        stream.add(capture, h)
    stream.close(stats=stats)
    a, b = pq.read_schema(whole), pq.read_schema(streamed)
    assert a.equals(b, check_metadata=True)
    assert a.metadata == b.metadata  # pandas (with attrs) and alpnsniff, byte for byte
    assert pq.read_table(whole).equals(pq.read_table(streamed))


def test_row_group_when_time_has_come(
    real_records: list[tuple[str, Handshake]], tmp_path: Path
) -> None:
    path = tmp_path / "timed.parquet"
    stream = ParquetStream(path, group_rows=10_000, group_seconds=10)
    t0 = 1_800_000_000 * SECOND
    assert not stream.tick(t0)  # the first tick: where the wait starts
    for capture, h in real_records[:3]:
        stream.add(capture, h)
    size_before = stream.bytes_written
    assert not stream.tick(t0 + 9 * SECOND)
    assert stream.buffered == 3 and stream.row_groups == 0
    assert stream.tick(t0 + 10 * SECOND)
    assert stream.buffered == 0 and stream.row_groups == 1 and stream.rows == 3
    assert stream.bytes_written > size_before  # the group is in the file, not in memory
    # a quiet spell: nothing waits, no group; the next record's wait starts from the tick
    assert not stream.tick(t0 + 100 * SECOND)
    capture, h = real_records[3]
    stream.add(capture, h)
    assert not stream.tick(t0 + 105 * SECOND)
    assert stream.tick(t0 + 110 * SECOND)
    assert stream.close() == 4
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    got = alpnsniff.load(path)
    pd.testing.assert_frame_equal(got, to_dataframe(real_records[:4]))


def test_empty_stream_is_a_valid_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    assert ParquetStream(path).close() == 0
    got = alpnsniff.load(path)
    pd.testing.assert_frame_equal(got, to_dataframe([]))


def test_closed_stream_refuses_records(
    real_records: list[tuple[str, Handshake]], tmp_path: Path
) -> None:
    stream = ParquetStream(tmp_path / "x.parquet")
    stream.close()
    capture, h = real_records[0]
    with pytest.raises(ValueError, match="closed"):
        stream.add(capture, h)
    with pytest.raises(ValueError, match="group_rows 0"):
        ParquetStream(tmp_path / "y.parquet", group_rows=0)
