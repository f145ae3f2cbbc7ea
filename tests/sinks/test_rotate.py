"""--rotate: sizes and times parsed; every file complete and valid, no record lost or
written twice, no file replaced."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pandas as pd
import pytest

import alpnsniff
from alpnsniff.records import Handshake
from alpnsniff.sinks.frame import to_dataframe
from alpnsniff.sinks.output import OutputError
from alpnsniff.sinks.rotate import (
    RotatingWriter,
    Rotation,
    parse_rotation,
    rotated_name,
    stamp,
)
from alpnsniff.sinks.rows import row
from alpnsniff.sinks.text import CsvWriter

SECOND = 1_000_000_000
Records = list[tuple[str, Handshake]]


@pytest.mark.parametrize(
    ("text", "size", "seconds"),
    [
        ("500k", 500 * 1024, None),
        ("500K", 500 * 1024, None),
        ("100M", 100 * 1024**2, None),
        ("1G", 1024**3, None),
        ("2GiB", 2 * 1024**3, None),
        ("1T", 1024**4, None),
        ("30s", None, 30),
        ("15m", None, 900),
        ("1h", None, 3600),
        ("1d", None, 86400),
        (" 2h ", None, 7200),
    ],
)
def test_parse_rotation(text: str, size: int | None, seconds: int | None) -> None:
    assert parse_rotation(text) == Rotation(text, size=size, seconds=seconds)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "not a size"),
        ("100", "not a size"),  # no unit: bytes? megabytes (tcpdump -C)? refused
        ("1.5G", "not a size"),
        ("-1h", "not a size"),
        ("h", "not a size"),
        ("0M", "more than 0"),
        ("10x", "unknown unit 'x'"),
        ("10mb", "unknown unit 'mb'"),
        ("1hour", "unknown unit 'hour'"),
    ],
)
def test_parse_rotation_refuses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as err:
        parse_rotation(text)
    message = str(err.value)
    assert message.startswith(f"--rotate {text!r}: ")
    assert "100M" in message and "1h" in message  # what is taken


def test_names_sort_by_time_and_keep_the_extension() -> None:
    t = 1_796_184_000 * SECOND  # 2026-12-02T04:00:00Z
    assert stamp(t) == "2026-12-02T04-00-00Z"
    assert rotated_name("d/out.ndjson", t) == os.path.join("d", "out.2026-12-02T04-00-00Z.ndjson")
    assert rotated_name("out.csv", t, 1) == "out.2026-12-02T04-00-00Z_0001.csv"
    assert rotated_name("out", t) == "out.2026-12-02T04-00-00Z"
    names = [
        rotated_name("out.ndjson", t + SECOND),
        rotated_name("out.ndjson", t, 2),
        rotated_name("out.ndjson", t),
        rotated_name("out.ndjson", t, 1),
        rotated_name("out.ndjson", t + 3600 * SECOND),
    ]
    assert sorted(names) == [names[2], names[3], names[1], names[0], names[4]]


def _files(folder: Path) -> list[Path]:
    """The files in ``folder``, temporary ones included (there must be none left)."""
    return sorted(folder.iterdir())


def _ndjson_rows(path: Path) -> list[dict[str, object]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")  # complete: the last line too
    return [json.loads(line) for line in text.splitlines()]


def _expected_rows(records: Records) -> list[dict[str, object]]:
    return [json.loads(json.dumps(row(h, c))) for c, h in records]


def test_size_rotation_ndjson(real_records: Records, tmp_path: Path) -> None:
    out = tmp_path / "out.ndjson"
    start = real_records[0][1].ts_ns
    writer = RotatingWriter(str(out), "ndjson", parse_rotation("2k"), start_ns=start)
    for capture, h in real_records:
        writer.add(capture, h)
    paths = writer.close()
    files = _files(tmp_path)
    assert [Path(p) for p in paths] == files  # nothing else: no temporary file, no out.ndjson
    assert writer.files_written == len(paths) >= 5
    assert paths == sorted(paths)  # written in time order, and the names sort so
    rows: list[dict[str, object]] = []
    sizes = [f.stat().st_size for f in files]
    longest = max(
        len(json.dumps(r, separators=(",", ":"))) + 1 for r in _expected_rows(real_records)
    )
    for path, size in zip(files, sizes, strict=True):
        got = _ndjson_rows(path)
        assert got
        rows.extend(got)
        assert size < 2048 + longest  # closed after the row that reached the size
    assert all(size >= 2048 for size in sizes[:-1])
    assert rows == _expected_rows(real_records)  # every record once, in order
    # each file named after its first record's capture time
    first = 0
    for path in files:
        ts = real_records[first][1].ts_ns
        assert path.name.startswith(f"out.{stamp(ts)}")
        first += len(_ndjson_rows(path))


def test_size_rotation_csv_each_file_has_its_header(real_records: Records, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    start = real_records[0][1].ts_ns
    writer = RotatingWriter(str(out), "csv", parse_rotation("3k"), start_ns=start)
    for capture, h in real_records:
        writer.add(capture, h)
    paths = writer.close()
    assert len(paths) >= 3
    reference = io.StringIO()
    ref = CsvWriter(reference)
    for capture, h in real_records:
        ref.write(row(h, capture))
    expected = list(csv.reader(io.StringIO(reference.getvalue())))
    header, data = expected[0], expected[1:]
    got: list[list[str]] = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
        assert lines[0] == header
        assert len(lines) > 1
        got.extend(lines[1:])
    assert got == data


def test_time_rotation_on_capture_time_and_ticks(real_records: Records, tmp_path: Path) -> None:
    out = tmp_path / "out.ndjson"
    first_ts = real_records[0][1].ts_ns
    slot = 15 * SECOND
    writer = RotatingWriter(str(out), "ndjson", parse_rotation("15s"), start_ns=first_ts)
    for capture, h in real_records:
        writer.add(capture, h)
    last_ts = real_records[-1][1].ts_ns
    open_name = writer.current
    assert open_name is not None
    # the last slot's file is not there under its name until its slot ends…
    assert not os.path.exists(open_name)
    committed = writer.files_written
    writer.tick(last_ts + SECOND)  # (still in the slot, unless it ends within the second)
    if (last_ts + SECOND) // slot == last_ts // slot:
        assert writer.files_written == committed and not os.path.exists(open_name)
    # …then a tick closes it, with no record coming
    end_of_slot = (last_ts // slot + 1) * slot
    writer.tick(end_of_slot)
    assert os.path.exists(open_name) and writer.current is None
    paths = writer.close()
    assert paths[-1] == open_name  # close made no further (empty) file
    # one file per 15 s slot that had a record, named after the slot's start
    slots = sorted({h.ts_ns // slot for _, h in real_records})
    assert [Path(p).name for p in paths] == [f"out.{stamp(s * slot)}.ndjson" for s in slots]
    assert _files(tmp_path) == [Path(p) for p in paths]
    for path, s in zip(paths, slots, strict=True):  # each slot's records in its file
        in_slot = [(c, h) for c, h in real_records if h.ts_ns // slot == s]
        assert _ndjson_rows(Path(path)) == _expected_rows(in_slot)


def test_late_record_goes_to_the_open_file(real_records: Records, tmp_path: Path) -> None:
    """A record settled after the clock moved on (an unseen one, after the idle timeout)
    goes to the file of the slot the clock is in; no committed file is ever reopened."""
    (c1, early), (c2, later) = real_records[0], real_records[-1]
    assert later.ts_ns - early.ts_ns >= 60 * SECOND
    writer = RotatingWriter(
        str(tmp_path / "o.ndjson"), "ndjson", parse_rotation("1m"), start_ns=early.ts_ns
    )
    writer.add(c2, later)
    writer.add(c1, early)
    paths = writer.close()
    assert len(paths) == 1
    assert _ndjson_rows(Path(paths[0])) == _expected_rows([(c2, later), (c1, early)])
    assert Path(paths[0]).name == f"o.{stamp(later.ts_ns - later.ts_ns % (60 * SECOND))}.ndjson"


def test_never_overwrites(real_records: Records, tmp_path: Path) -> None:
    out = tmp_path / "out.ndjson"
    capture, h = real_records[0]
    taken = Path(rotated_name(str(out), h.ts_ns))
    taken.write_text("another run's file\n")
    # every record at one instant and a tiny size: several files start in one second
    writer = RotatingWriter(str(out), "ndjson", parse_rotation("1k"), start_ns=h.ts_ns)
    for capture, rec in real_records[:6]:
        writer.add(capture, rec)
    paths = writer.close()
    assert taken.read_text() == "another run's file\n"
    names = [Path(p).name for p in paths]
    base = taken.name.removesuffix(".ndjson")
    assert names[0] == f"{base}_0001.ndjson"
    assert names == sorted(names) and len(set(names)) == len(names) >= 3
    rows = [r for p in paths for r in _ndjson_rows(Path(p))]
    assert rows == _expected_rows(real_records[:6])


def test_name_taken_while_open_is_not_replaced(real_records: Records, tmp_path: Path) -> None:
    out = tmp_path / "out.ndjson"
    capture, h = real_records[0]
    writer = RotatingWriter(str(out), "ndjson", parse_rotation("1h"), start_ns=h.ts_ns)
    writer.add(capture, h)
    name = writer.current
    assert name is not None
    Path(name).write_text("written meanwhile by another process\n")
    paths = writer.close()
    assert Path(name).read_text() == "written meanwhile by another process\n"
    assert paths == [name.removesuffix(".ndjson") + "_0001.ndjson"]
    assert _ndjson_rows(Path(paths[0])) == _expected_rows([(capture, h)])


def test_parquet_rotation(real_records: Records, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    start = real_records[0][1].ts_ns
    # a Parquet file is past 1k from its first row group: one file per group of 5 rows
    writer = RotatingWriter(str(out), "parquet", parse_rotation("1k"), start_ns=start, group_rows=5)
    # a run that ends right after a file was closed by size has its counts in no file (the
    # module's docstring): a number of records that is not a multiple of 5 keeps one open
    records = real_records[: len(real_records) - (len(real_records) % 5 == 0)]
    for capture, h in records:
        writer.add(capture, h)
    stats = {"packets": 4242}
    paths = writer.close(stats=stats)
    assert len(records) % 5 and len(paths) == -(-len(records) // 5)
    assert _files(tmp_path) == [Path(p) for p in paths]
    frames = [alpnsniff.load(p) for p in paths]
    assert [len(f) for f in frames[:-1]] == [5] * (len(paths) - 1)
    whole = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(whole, to_dataframe(records), check_like=False)
    assert frames[-1].attrs["stats"] == stats  # the run's counts: in the last file
    assert all("stats" not in f.attrs for f in frames[:-1])


def test_parquet_time_rotation_by_tick(real_records: Records, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    capture, h = real_records[0]
    writer = RotatingWriter(str(out), "parquet", parse_rotation("1m"), start_ns=h.ts_ns)
    writer.add(capture, h)
    name = writer.current
    assert name is not None
    writer.tick(h.ts_ns - h.ts_ns % (60 * SECOND) + 60 * SECOND)
    assert writer.files_written == 1 and os.path.exists(name)
    pd.testing.assert_frame_equal(alpnsniff.load(name), to_dataframe([(capture, h)]))
    assert writer.close() == [name]


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "parquet"])
def test_run_without_records_leaves_one_valid_file(fmt: str, tmp_path: Path) -> None:
    start = 1_796_184_000 * SECOND
    writer = RotatingWriter(str(tmp_path / f"out.{fmt}"), fmt, parse_rotation("1h"), start_ns=start)
    writer.tick(start + 7200 * SECOND)  # slots pass without records: no file for them
    paths = writer.close()
    assert [Path(p).name for p in paths] == [f"out.2026-12-02T06-00-00Z.{fmt}"]
    assert _files(tmp_path) == [Path(paths[0])]
    if fmt == "ndjson":
        assert Path(paths[0]).read_text() == ""
    elif fmt == "csv":
        lines = Path(paths[0]).read_text().splitlines()
        assert [next(csv.reader(lines))] == [list(to_dataframe([]).columns)] and len(lines) == 1
    else:
        pd.testing.assert_frame_equal(alpnsniff.load(paths[0]), to_dataframe([]))


def test_stop_mid_run_commits_complete_files(real_records: Records, tmp_path: Path) -> None:
    """What the CLI does at SIGTERM: close() mid-slot; abort() (a failed run) removes only
    the file being written."""
    start = real_records[0][1].ts_ns
    writer = RotatingWriter(
        str(tmp_path / "a.ndjson"), "ndjson", parse_rotation("2k"), start_ns=start
    )
    for capture, h in real_records[:7]:
        writer.add(capture, h)
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # one being written
    paths = writer.close()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert [r for p in paths for r in _ndjson_rows(Path(p))] == _expected_rows(real_records[:7])

    other = tmp_path / "b"
    other.mkdir()
    writer = RotatingWriter(str(other / "b.ndjson"), "ndjson", parse_rotation("2k"), start_ns=start)
    for capture, h in real_records[:7]:
        writer.add(capture, h)
    kept = list(writer.paths)
    assert kept and writer.current is not None
    writer.abort()
    assert _files(other) == [Path(p) for p in kept]


def test_refused_outputs(tmp_path: Path) -> None:
    rotation = parse_rotation("1h")
    with pytest.raises(OutputError, match="not stdout"):
        RotatingWriter("-", "ndjson", rotation, start_ns=0)
    with pytest.raises(OutputError, match="regular file"):
        RotatingWriter("/dev/null", "ndjson", rotation, start_ns=0)
    with pytest.raises(OutputError, match="no such folder"):
        RotatingWriter(str(tmp_path / "missing" / "o.csv"), "csv", rotation, start_ns=0)
    with pytest.raises(ValueError, match="not table"):
        RotatingWriter(str(tmp_path / "o.txt"), "table", rotation, start_ns=0)
