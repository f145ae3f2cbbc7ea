"""``alpnsniff read FILE…``: handshakes from captures, as a summary, table, ndjson, CSV or Parquet.

Exit status (for scripts):
  0  every input was read to its end
  1  results were written, but an input ended early (truncated or corrupt record)
  2  bad usage, or an input could not be read at all (one line on stderr says why)
  130 interrupted
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any, TextIO

from . import __version__
from .capture import open_capture
from .errors import CaptureError
from .keys.keylog import KeyLog
from .parallel import MAX_JOBS, analyze_parallel, auto_jobs
from .pipeline import CaptureRun, RunResult
from .records import Handshake
from .sinks.rows import row
from .sinks.summary import Summary

FORMATS = ("summary", "table", "ndjson", "csv", "parquet")
# Show a progress bar for inputs at least this big, when stderr is a terminal.
PROGRESS_MIN_BYTES = 20 * 1024 * 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alpnsniff",
        description="Passive ALPN dissector: which application protocols TLS clients offer "
        "and servers select, from captures.",
    )
    parser.add_argument("--version", action="version", version=f"alpnsniff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    read = sub.add_parser(
        "read",
        help="read pcap/pcapng files (also .gz/.xz/.bz2, or - for stdin)",
        description="Read captures and report every TLS handshake's ALPN offer and selection.",
    )
    read.add_argument("files", nargs="+", metavar="FILE", help="capture file, or - for stdin")
    read.add_argument(
        "-f",
        "--format",
        choices=FORMATS,
        default="summary",
        help="summary (default): shares and counts; table, ndjson, csv, parquet: one row per "
        "handshake",
    )
    read.add_argument("-o", "--output", metavar="FILE", help="write rows here (default stdout)")
    read.add_argument(
        "--include-ech",
        action="store_true",
        help="count ClientHellos that carry ECH in the offer shares (left out by default)",
    )
    read.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: for large files when stderr is a terminal)",
    )
    read.add_argument(
        "--keylog",
        action="append",
        default=[],
        metavar="FILE",
        help="TLS key log (SSLKEYLOGFILE format; several allowed): decrypt TLS 1.3 / QUIC "
        "EncryptedExtensions and TLS 1.2 NextProtocol. pcapng Decryption Secrets Blocks "
        "are used too.",
    )
    read.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    read.add_argument(
        "--stats",
        metavar="FILE",
        help="write every count of the run (packets, skips by reason, evictions) as JSON",
    )
    read.add_argument(
        "-j",
        "--jobs",
        default="auto",
        type=_jobs,
        help="processes per file (auto: all cores for files over 64 MB, else 1)",
    )
    return parser


def _jobs(text: str) -> str:
    if text == "auto" or (text.isdigit() and 1 <= int(text) <= MAX_JOBS):
        return text
    raise argparse.ArgumentTypeError(f"expected auto or 1..{MAX_JOBS}, got {text!r}")


def _error(message: str) -> None:
    sys.stderr.write(f"alpnsniff: error: {message}\n")


class _Rows:
    """Where rows go: streamed (ndjson, csv) or collected (table, parquet)."""

    def __init__(self, fmt: str, out: TextIO | None, path: str | None) -> None:
        self.fmt = fmt
        self.path = path
        self.collected: list[tuple[str, Handshake]] = []
        self.writer: Any = None
        if fmt == "ndjson":
            from .sinks.text import NdjsonWriter

            self.writer = NdjsonWriter(out or sys.stdout)
        elif fmt == "csv":
            from .sinks.text import CsvWriter

            self.writer = CsvWriter(out or sys.stdout)

    def add(self, capture: str, h: Handshake) -> None:
        if self.writer is not None:
            self.writer.write(row(h, capture))
        elif self.fmt in ("table", "parquet"):
            self.collected.append((capture, h))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        elif self.fmt == "parquet":
            from .sinks.frame import write_parquet

            assert self.path is not None
            write_parquet(self.collected, self.path)
        elif self.fmt == "table":
            from .sinks.table import print_table

            print_table(self.collected, sys.stdout)


def _packets_with_progress(
    packets: Iterator[tuple[int, int, bytes]], total: int, label: str
) -> Iterator[tuple[int, int, bytes]]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task(label, total=total)
        done = 0
        step = 0
        for item in packets:
            done += len(item[2]) + 16
            step += 1
            if step >= 8192:
                progress.update(task, completed=done)
                step = 0
            yield item


def _want_progress(mode: str, name: str) -> int:
    """The file size to show progress against, or 0 for no bar."""
    if mode == "never" or name == "-":
        return 0
    try:
        size = os.path.getsize(name)
    except OSError:
        return 0
    if mode == "always" or (size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()):
        return size
    return 0


def _report_run(name: str, result: RunResult) -> int:
    """One line on stderr for each thing the user must know of a run; its exit status."""
    status = 0
    internal = result.stats.get("internal_error", 0)
    if internal:
        first = next((e for e in result.errors if "internal error" in e), "")
        _error(f"{name}: {internal} packet(s) hit an internal error and were skipped; {first}")
    cs = result.capture
    if cs is not None and cs.error:
        _error(f"{name}: {cs.error}")
        status = 1
    elif cs is not None and cs.truncated_records:
        _error(f"{name}: the last packet record is cut short (file truncated)")
        status = 1
    return status


def cmd_read(args: argparse.Namespace) -> int:
    if args.format == "parquet" and not args.output:
        _error("--format parquet needs -o FILE")
        return 2
    status = 0
    keylog = None
    if args.keylog:
        from .keys.keylog import KeyLogError

        keylog = KeyLog()
        try:
            for path in args.keylog:
                keylog.load(path)
        except KeyLogError as err:
            _error(str(err))
            return 2
        for line in keylog.errors:  # malformed lines: reported, never fatal, never the secret
            _error(f"key log: {line}")
    out: TextIO | None = None
    if args.output and args.format in ("ndjson", "csv"):
        out = open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    summary = Summary(include_ech=args.include_ech)
    stats: Counter[str] = Counter()
    captures = 0
    rows = _Rows(args.format, out, args.output)
    try:
        for name in args.files:
            try:
                source = open_capture(name)
            except CaptureError as err:
                _error(str(err))
                status = 2
                continue
            captures += 1
            jobs = auto_jobs(name) if args.jobs == "auto" else int(args.jobs)
            size = _want_progress(args.progress, name)
            watch = (
                functools.partial(_packets_with_progress, total=size, label=os.path.basename(name))
                if size
                else None
            )
            if jobs > 1:
                source.close()
                try:  # records come sorted by frame
                    result = analyze_parallel(name, jobs, watch=watch, keylog=keylog)
                except RuntimeError as err:  # a worker process failed: one line, not a trace
                    _error(f"{name}: {err}")
                    status = 2
                    continue
                for h in result.handshakes:
                    summary.add(h)
                    rows.add(name, h)
            else:
                with source:
                    run = CaptureRun(source, keylog=keylog, watch=watch)
                    records = run.records()
                    if args.format not in ("ndjson", "summary"):
                        records = iter(sorted(records, key=lambda r: r.frame))
                    for h in records:  # ndjson: streamed as each handshake completes
                        summary.add(h)
                        rows.add(name, h)
                    result = run.result([])
            stats.update(result.stats)
            status = max(status, _report_run(name, result))
        rows.close()
    finally:
        if out is not None:
            out.close()
    if args.stats:
        import json
        import resource

        stats["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with open(args.stats, "w", encoding="utf-8") as f:
            json.dump(dict(sorted(stats.items())), f, indent=1)
    if captures and (args.format == "summary" or not args.quiet):
        stream = sys.stdout if args.format == "summary" else sys.stderr
        sys.stdout.flush()  # rows first, then the summary
        for line in summary.lines(stats, captures=captures):
            stream.write(line + "\n")
    return status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "read":
            return cmd_read(args)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): not an error; keep Python from complaining at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
