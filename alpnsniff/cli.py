"""``alpnsniff read FILE…``: handshakes from captures, as a summary, table, ndjson, CSV or Parquet.

Exit status (for scripts):
  0   every input was read to its end
  1   results were written, but an input ended early (truncated or corrupt record), or an
      output could not be written in the middle of the run (one line on stderr says why)
  2   bad usage, an input that could not be read at all, or an output refused before reading
      (a missing folder, a folder, a file that cannot be written, an input as output)
  130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM: what was read is summarised and written

Every ``-o`` and ``--stats`` file is written under a temporary name in its folder and renamed
into place at the end (:mod:`alpnsniff.sinks.output`): no half-written file carries its name.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__
from ._build_plan import build_kind
from .capture.kernel_filter import MAX_SNAPLEN
from .capture.ring import BLOCK_COUNT, BLOCK_SIZE
from .errors import CaptureError
from .flows.table import IDLE_TIMEOUT_NS
from .sinks.output import AtomicOutput, OutputError, guarded, same_file

if TYPE_CHECKING:  # (imported when a run starts: a refused run or --help stays quick)
    from .capture import Source
    from .keys.keylog import KeyLog
    from .parallel import LiveJobs
    from .pipeline import Batches, CaptureRun, FrameFilter, RunResult
    from .records import Handshake
    from .sinks.parquet_stream import ParquetStream
    from .sinks.rotate import RotatingWriter

FORMATS = ("summary", "table", "ndjson", "csv", "parquet", "eve", "zeek")
MAX_BUFFER_MIB = 16384  # a live ring of 16 GiB at most
MAX_LIVE_JOBS = 64
# Show a progress bar for inputs at least this big, when stderr is a terminal.
PROGRESS_MIN_BYTES = 20 * 1024 * 1024
# Exit status for a run stopped by a signal: 128 + its number, as a shell reports it.
SIGNAL_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}

EXAMPLES = """\
examples:
  alpnsniff read -r trace.pcapng -f 'tcp port 443 or udp port 443'
      the summary of HTTPS and QUIC handshakes (-f: a BPF capture filter)
  alpnsniff read trace.pcap --sni '*.example.com' --alpn h2 -T table
      the handshakes to example.com hosts that offered or selected h2, as a table
  alpnsniff read trace.pcap --host 10.0.0.0/8 -T csv -o handshakes.csv
      one CSV row per handshake to or from 10/8 (the file appears complete or not at all)
  tcpdump -i eth0 -w - | alpnsniff read - -T ndjson
      a live link, one JSON line per handshake as it completes (Ctrl-C: summary and exit)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alpnsniff",
        description="Passive ALPN dissector: which application protocols TLS clients offer "
        "and servers select, from captures.",
    )
    parser.add_argument(
        "--version", action="version", version=f"alpnsniff {__version__}, {build_kind()}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    read = sub.add_parser(
        "read",
        help="read pcap/pcapng files (also .gz/.xz/.bz2, or - for stdin)",
        description="Read captures and report every TLS and QUIC handshake's ALPN offer and "
        "selection.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _read_arguments(read)
    live = sub.add_parser(
        "live",
        help="capture from a network interface (a span port) through a TPACKET_V3 ring",
        description="Capture from an interface and report every TLS and QUIC handshake's ALPN "
        "offer and selection as it completes (Linux; needs CAP_NET_RAW).",
    )
    _live_arguments(live)
    report = sub.add_parser(
        "report",
        help="write one self-contained HTML page about captures (pictures embedded)",
        description="Read captures and write one self-contained HTML page: what was read and "
        "skipped, offered vs selected, outcomes, ECH, top servers, timeline, per capture.",
    )
    _report_arguments(report)
    sub.add_parser(
        "interfaces",
        help="list the interfaces that can be captured on",
        description="List the network interfaces: index, name, link type, state, MTU, "
        "whether alpnsniff live can capture on it, and addresses.",
    )
    return parser


def _report_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("files", nargs="+", metavar="FILE", help="capture file (pcap, pcapng)")
    report.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="the HTML file (written atomically)"
    )
    report.add_argument(
        "--keylog",
        action="append",
        default=[],
        metavar="FILE",
        help="TLS key log (repeatable) to decrypt the server's ALPN choice",
    )
    report.add_argument("--title", help="the page's heading")
    report.add_argument(
        "--top", type=_positive, default=20, metavar="N", help="rows per table (default 20)"
    )
    report.add_argument(
        "--include-ech", action="store_true", help="count ECH ClientHellos in the offer shares"
    )


def cmd_report(args: argparse.Namespace) -> int:
    """``alpnsniff report FILE… -o report.html``."""
    import alpnsniff

    from .sinks.summary import plural

    for name in [*args.files, *args.keylog]:
        if os.path.exists(name) and same_file(name, args.output):
            _error(f"{args.output}: is an input ({name}); refusing to overwrite it")
            return 2
    try:
        output = AtomicOutput(args.output)
    except OutputError as err:
        _error(str(err))
        return 2
    try:
        try:
            df = alpnsniff.read(args.files, keylog=args.keylog or None)
        except (CaptureError, OSError) as err:
            _error(str(err))
            return 2
        from .analytics.report import render_report

        page = render_report(df, title=args.title, top=args.top, include_ech=args.include_ech)
        stream = output.text()
        stream.write(page)
        output.commit()
    except OutputError as err:
        _error(str(err))
        return 1
    finally:
        output.discard()
    for name, lines in df.attrs.get("errors", {}).items():
        for line in lines[:1]:  # (why reading stopped early names its capture already)
            _error(line if line.startswith(f"{name}: ") else f"{name}: {line}")
    found = f"{plural(len(df), 'handshake')} from {plural(len(args.files), 'capture')}"
    sys.stderr.write(f"{args.output}: {found}\n")
    stats = df.attrs.get("stats", {})
    # as read's: 1 when an input ended early (the page says so in its Inputs table)
    return 1 if stats.get("truncated_records") or stats.get("corrupt_records") else 0


def _live_arguments(live: argparse.ArgumentParser) -> None:
    live.add_argument(
        "-i",
        "--interface",
        dest="interfaces",
        action="append",
        required=True,
        metavar="IFACE",
        help="an interface to capture on (repeatable: the interfaces' packets are merged by "
        "time, e.g. one span port per direction)",
    )
    live.add_argument(
        "--user",
        metavar="NAME",
        help="once the capture sockets are open, run as this user (and its groups), as "
        "tcpdump -Z does; the output files are then made as that user",
    )
    live.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this many seconds"
    )
    live.add_argument("--count", type=int, metavar="N", help="stop after N packets")
    live.add_argument(
        "--no-promiscuous", action="store_true", help="do not put the interface in promiscuous mode"
    )
    live.add_argument(
        "-s",
        "--snaplen",
        type=_snaplen,
        default=MAX_SNAPLEN,
        metavar="BYTES",
        help="keep this many bytes of each frame (the kernel cuts the rest, as tcpdump -s; "
        f"default and 0: {MAX_SNAPLEN}); frames cut are counted as snap_cut",
    )
    live.add_argument(
        "-B",
        "--buffer-size",
        type=_buffer_mib,
        default=BLOCK_COUNT * BLOCK_SIZE >> 20,
        metavar="MiB",
        help="each interface's capture ring, in MiB (default %(default)s): a burst this big "
        "waits for the dissector before the kernel drops",
    )
    live.add_argument(
        "-j",
        "--jobs",
        type=_live_jobs,
        default=1,
        help="processes dissecting the packets: N sockets in a PACKET_FANOUT group share the "
        "interface by flow, one process each (default 1)",
    )
    live.add_argument(
        "--rotate",
        metavar="SIZE|TIME",
        help="with -o FILE: write a series of files, a new one each SIZE (100M, 1G) or TIME "
        "(15m, 1h, 1d); each named after its start (FILE.2026-12-02T04-00-00Z.ndjson)",
    )
    _output_arguments(live, live=True)
    live.set_defaults(files=[], read_files=[], progress="never", rotation=None, grouped=None)


def _read_arguments(read: argparse.ArgumentParser) -> None:
    read.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="capture file (pcap, pcapng, compressed), - for stdin",
    )
    read.add_argument(
        "-r",
        "--read-file",
        dest="read_files",
        action="append",
        default=[],
        metavar="FILE",
        help="a capture file to read, as with tshark/tcpdump (repeatable; read before FILEs)",
    )
    _output_arguments(read)
    read.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: for large files when stderr is a terminal)",
    )
    read.add_argument(
        "-j",
        "--jobs",
        default="auto",
        type=_jobs,
        help="processes per file: N, or auto (all cores for files over 64 MB, else 1)",
    )
    read.set_defaults(rotation=None, grouped=None)  # (live's --rotate; --by)


def _output_arguments(read: argparse.ArgumentParser, *, live: bool = False) -> None:
    """The options ``read`` and ``live`` share: formats, outputs, filters, keys, counts."""
    read.add_argument(
        "-T",
        "--format",
        choices=FORMATS,
        default="summary",
        help="summary (default): shares and counts; table, ndjson, csv, parquet: a row per "
        "handshake; eve: Suricata EVE JSON events (tls, quic); zeek: a Zeek ssl.log",
    )
    read.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="write the output (any format) to OUT instead of stdout, atomically",
    )
    read.add_argument(
        "-f",
        "--filter",
        metavar="EXPR",
        help="BPF capture filter, as tcpdump/tshark -f (e.g. 'tcp port 443'); "
        + (
            "run by the kernel before the ring, in place of the default (which drops only TCP "
            "segments without payload, SYN, FIN or RST); '' keeps every frame"
            if live
            else "frame numbers stay the file's"
        ),
    )
    record = read.add_argument_group(
        "record filters", "repeatable: any value of one kind matches, every kind given must match"
    )
    record.add_argument(
        "--host",
        dest="hosts",
        action="append",
        default=[],
        metavar="ADDR",
        help="client or server address, or CIDR prefix (10.0.0.0/8, 2001:db8::/32)",
    )
    record.add_argument(
        "--port",
        dest="ports",
        action="append",
        default=[],
        type=_port,
        metavar="N",
        help="client or server port",
    )
    record.add_argument(
        "--sni",
        dest="sni_globs",
        action="append",
        default=[],
        metavar="GLOB",
        help="server name, shell pattern, case-insensitive ('*.example.com')",
    )
    record.add_argument(
        "--alpn",
        dest="alpns",
        action="append",
        default=[],
        metavar="ID",
        help="ALPN protocol ID offered or selected (h2, http/1.1, h3)",
    )
    read.add_argument(
        "--include-ech",
        action="store_true",
        help="count ClientHellos that carry ECH in the offer shares (left out by default)",
    )
    read.add_argument(
        "--by",
        metavar="COLUMN",
        help="with the summary: the offer and selection shares per value of COLUMN (sni, "
        "server_ip, server_port, client_ip, capture, transport, quic_version, …)",
    )
    read.add_argument(
        "--top",
        type=_positive,
        default=20,
        metavar="N",
        help="--by: the N groups with the most ClientHellos (default %(default)s)",
    )
    read.add_argument(
        "--keylog",
        action="append",
        default=[],
        metavar="FILE",
        help="TLS key log (SSLKEYLOGFILE format, repeatable) to decrypt the server's ALPN choice",
    )
    read.add_argument(
        "--dedup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="leave out a packet seen twice within 1 ms (a mirror copy, as editcap -d): "
        "counted as packets_duplicate (default: on for live, off for read)",
    )
    read.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=IDLE_TIMEOUT_NS / 1e9,
        metavar="S",
        help="a flow silent this long (capture time) leaves, its waiting ClientHellos as "
        f"'unseen' (default {IDLE_TIMEOUT_NS // 1_000_000_000} s)",
    )
    read.add_argument(
        "-q", "--quiet", action="store_true", help="no summary on stderr (row formats)"
    )
    read.add_argument(
        "--stats",
        metavar="FILE",
        help="write every count of the run (packets, skips by reason, evictions) as JSON",
    )


def _jobs(text: str) -> str:
    if text == "auto" or (text.isdigit() and int(text) >= 1):
        return text
    raise argparse.ArgumentTypeError(f"expected auto or a positive integer, got {text!r}")


def _positive(text: str) -> int:
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")


def _live_jobs(text: str) -> int:
    if not (text.isdigit() and 1 <= int(text) <= MAX_LIVE_JOBS):
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_LIVE_JOBS} processes")
    return int(text)


def _snaplen(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of bytes: {text!r}") from None
    if not 0 <= value <= MAX_SNAPLEN:
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_SNAPLEN} bytes (0: {MAX_SNAPLEN})")
    return value or MAX_SNAPLEN


def _buffer_mib(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MiB: {text!r}") from None
    if not 1 <= value <= MAX_BUFFER_MIB:
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_BUFFER_MIB} MiB")
    return value


def _seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 1e9:  # (nan and inf too)
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _port(text: str) -> int:
    if text.isdigit() and int(text) <= 65535:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}")


def _error(message: str) -> None:
    sys.stderr.write(f"alpnsniff: error: {message}\n")


class _Stop(BaseException):
    """Raised by the signal handler where the run waits for input: stop reading."""


class _Abort(BaseException):
    """A second signal: give up at once (no output is renamed into place)."""


class _Signals:
    """SIGINT and SIGTERM: the first stops the reading (the run then ends as if its inputs had
    ended there); a second aborts. The handler only raises inside :meth:`reading` (a blocking
    read, or a whole parallel run); elsewhere the packet stream ends at the next packet, so no
    packet is left half dissected and no row half written."""

    def __init__(self) -> None:
        self.signum = 0
        self._raise = False
        self._old: dict[int, Any] = {}
        # instead of raising: a parallel run's processes are told to stop at one packet
        self.on_signal: Callable[[], None] | None = None

    def install(self) -> None:
        for signum in SIGNAL_STATUS:
            self._old[signum] = signal.signal(signum, self._handler)

    def restore(self) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, old)
        self._old.clear()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum:
            raise _Abort
        self.signum = signum
        if self.on_signal is not None:
            self.on_signal()
        elif self._raise:
            raise _Stop

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Inside: a signal raises :class:`_Stop` at once (the run waits for input)."""
        if self.signum:
            raise _Stop
        self._raise = True
        try:
            yield
        finally:
            self._raise = False

    def between_batches(self, batches: Batches) -> Batches:
        """The batches until a signal arrives, looked at between two batches, for a source
        whose reads never block (a regular file): nothing is raised, no packet is left half
        dissected, and the look costs nothing per packet."""
        for batch in batches:
            if self.signum:
                return
            yield batch

    def batches(self, batches: Batches) -> Batches:
        """The batches until a signal arrives. A signal raises only inside ``next(it)``
        (where a pipe's read blocks), so no packet is left half dissected."""
        it = iter(batches)
        while not self.signum:
            self._raise = True
            try:
                item = next(it)
            except (StopIteration, _Stop):
                return
            finally:
                self._raise = False
            yield item


class _Rows:
    """Where rows go: streamed (ndjson, csv; a live run's Parquet, in row groups), collected
    (table, a file's Parquet), or a series of files (``--rotate``)."""

    def __init__(
        self,
        fmt: str,
        out: TextIO,
        parquet: AtomicOutput | None,
        *,
        live: bool = False,
        rotating: RotatingWriter | None = None,
        provenance: dict[str, Any] | None = None,
        keylogs: Sequence[str] = (),
    ) -> None:
        self.fmt = fmt
        self.out = out
        self.parquet = parquet
        self.keylogs = keylogs
        self.collected: list[tuple[str, Handshake]] = []
        # for the Parquet file's metadata
        self.errors: dict[str, list[str]] = {}
        self.stats_by_capture: dict[str, Counter[str]] = {}
        self.writer: Any = None
        self.rotating = rotating
        # a live run's Parquet: row groups as records arrive (a long run is not held)
        self.stream: ParquetStream | None = None
        from .sinks.rows import row

        self.row = row
        if rotating is not None:
            pass
        elif fmt == "parquet" and live and parquet is not None:
            from .sinks.parquet_stream import ParquetStream

            parquet.release()
            # a live run's provenance (the interfaces) is known at the start; a file's is
            # made at the end, over the captures read (close, sinks/provenance.py)
            self.stream = ParquetStream(
                parquet.write_path, label=parquet.path, provenance=provenance
            )
        elif fmt == "ndjson":
            from .sinks.text import NdjsonWriter

            self.writer = NdjsonWriter(out)
        elif fmt == "csv":
            from .sinks.text import CsvWriter

            self.writer = CsvWriter(out)
        elif fmt == "eve":
            from .sinks.eve import EveWriter

            self.writer = EveWriter(out)
        elif fmt == "zeek":
            from .sinks.zeek import ZeekWriter

            self.writer = ZeekWriter(out)

    def add(self, capture: str, h: Handshake) -> None:
        if self.writer is not None:
            self.writer.write(self.row(h, capture))
        elif self.rotating is not None:
            self.rotating.add(capture, h)
        elif self.stream is not None:
            self.stream.add(capture, h)
        elif self.fmt in ("table", "parquet"):
            self.collected.append((capture, h))

    def tick(self, now_ns: int) -> None:
        """The run's clock (a live run, between batches): a time slot of --rotate ends, a
        Parquet row group waiting for its time is written."""
        if self.rotating is not None:
            self.rotating.tick(now_ns)
        elif self.stream is not None:
            self.stream.tick(now_ns)

    def abort(self) -> None:
        """A run that failed: the file being written is removed (those done are kept)."""
        if self.rotating is not None:
            self.rotating.abort()
        elif self.stream is not None:
            self.stream.abort()

    def close(self, stats: Counter[str]) -> None:
        if self.writer is not None:
            self.writer.close()
        elif self.rotating is not None:
            self.rotating.close(
                stats=stats, errors=self.errors, stats_by_capture=self.stats_by_capture
            )
            stats["rotated_files"] = self.rotating.files_written
        elif self.stream is not None:
            self.stream.close(
                stats=stats, errors=self.errors, stats_by_capture=self.stats_by_capture
            )
        elif self.fmt == "parquet":
            from .sinks.frame import write_parquet
            from .sinks.provenance import run_provenance

            assert self.parquet is not None
            self.parquet.release()
            try:
                write_parquet(
                    self.collected,
                    self.parquet.write_path,
                    stats=stats,
                    errors=self.errors,
                    stats_by_capture=self.stats_by_capture,
                    provenance=run_provenance(self.stats_by_capture, keylogs=self.keylogs),
                )
            except OSError as err:
                raise OutputError(
                    f"cannot write to {self.parquet.path}: {err.strerror or err}"
                ) from None
        elif self.fmt == "table":
            from .sinks.table import print_table

            print_table(self.collected, self.out, width=None)


class _LiveScreen:
    """A live run's terminal view (sinks/live_view.py), refreshed each second between
    batches, and the outputs' clock (``_Rows.tick``); the view only on a terminal, without
    -q, and when the rows do not go to that terminal too."""

    def __init__(self, args: argparse.Namespace, rows: _Rows) -> None:
        import time

        self.rows = rows
        self.run: CaptureRun | None = None  # the run, once made (its counts for the view)
        self.screen = None
        if not args.quiet and sys.stderr.isatty() and (args.format == "summary" or args.output):
            from .sinks.live_view import LiveScreen, LiveView

            view = LiveView(time.monotonic(), label=", ".join(args.interfaces))
            self.screen = LiveScreen(view, sys.stderr)
            self.screen.start()

    def add(self, h: Handshake) -> None:
        if self.screen is not None:
            self.screen.view.add(h)

    def counts(self) -> dict[str, int]:
        """The run's counts so far, the kernel's among them."""
        from .capture.live import kernel_counts

        run = self.run
        if run is None:
            return {}
        counts = dict(run.dissector.stats)
        counts["packets"] = run.dissector.frame
        counts.update(kernel_counts(run.source))
        return counts

    def watch(self, batches: Batches) -> Batches:
        for batch in batches:
            self.beat(batch.now_ns or (batch.stamps[-1] if batch.stamps else 0))
            yield batch

    def beat(self, now_ns: int) -> None:
        """Between batches (or, with --jobs, every 100 ms): the outputs' clock (a --rotate
        slot ends, a Parquet row group waiting for its time is written), the view redrawn
        once a second."""
        import time

        if now_ns:
            self.rows.tick(now_ns)
        screen = self.screen
        if screen is not None and screen.view.due(time.monotonic()):
            screen.view.update(self.counts())
            screen.refresh(time.monotonic())

    def stop(self) -> None:
        """The last frame stays on the terminal (the summary follows it)."""
        import time

        if self.screen is not None:
            self.screen.view.update(self.counts())
            self.screen.stop(time.monotonic())
            self.screen = None


def _batches_with_progress(batches: Batches, total: int, label: str) -> Batches:
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
        for batch in batches:
            done += sum(batch.lengths) + 16 * len(batch)
            progress.update(task, completed=done)
            yield batch


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
        _error(cs.error)  # (it starts with the capture's name)
        status = 1
    elif cs is not None and cs.truncated_records:
        _error(f"{name}: the last packet record is cut short (file truncated)")
        status = 1
    return status


def _frame_filter(expression: str | None) -> FrameFilter | None:
    """The compiled BPF filter; :class:`CaptureError` (one line) for a bad expression."""
    if expression is None:
        return None
    from .capture.bpf import compile_frame_filter

    return compile_frame_filter(expression)


def _record_filter(args: argparse.Namespace) -> Callable[[Handshake], bool] | None:
    """The record filter of --host/--port/--sni/--alpn; ValueError (one line) for a bad one."""
    if not (args.hosts or args.ports or args.sni_globs or args.alpns):
        return None
    from .filters import RecordFilter

    return RecordFilter(
        hosts=tuple(args.hosts),
        ports=tuple(args.ports),
        sni_globs=tuple(args.sni_globs),
        alpns=tuple(args.alpns),
    )


def _check_paths(args: argparse.Namespace) -> str | None:
    """Why the outputs may not be written where asked (an input, a key log, each other)."""
    outputs = [(f"-o {p}", p) for p in [args.output] if p and p != "-"]
    if args.stats:
        outputs.append((f"--stats {args.stats}", args.stats))
    readers = [(f"input {p}", p) for p in args.files if p != "-" and args.command == "read"]
    readers += [(f"key log {p}", p) for p in args.keylog]
    for i, (label, path) in enumerate(outputs):
        for other_label, other in readers + outputs[i + 1 :]:
            if same_file(path, other):
                return f"{label} is the same file as {other_label}: refusing to overwrite it"
    return None


def cmd_live(args: argparse.Namespace) -> int:
    args.files = [",".join(args.interfaces)]
    if len(set(args.interfaces)) != len(args.interfaces):
        _error("an interface is named twice with -i")
        return 2
    if args.count is not None and args.count <= 0:
        _error("--count must be a positive number of packets")
        return 2
    if args.duration is not None and not args.duration > 0:  # (nan too)
        _error("--duration must be a positive number of seconds")
        return 2
    if args.jobs > 1 and args.count is not None:
        _error("--count counts one process's packets: not with --jobs")
        return 2
    if args.rotate is not None:
        from .sinks.rotate import FORMATS as ROTATED
        from .sinks.rotate import parse_rotation

        try:
            args.rotation = parse_rotation(args.rotate)
        except ValueError as err:
            _error(str(err))
            return 2
        if not args.output or args.output == "-" or args.format not in ROTATED:
            _error(f"--rotate needs -o FILE and -T {'|'.join(ROTATED)}")
            return 2
    return _run_command(args)


def cmd_interfaces() -> int:
    from .capture.interfaces import format_table, list_interfaces

    try:
        lines = format_table(list_interfaces())
    except OSError as err:
        _error(f"cannot list the interfaces: {err.strerror or err}")
        return 1
    out = guarded(sys.stdout, "stdout")
    for line in lines:
        out.write(line + "\n")
    out.flush()
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    args.files = args.read_files + args.files
    if not args.files:
        _error("no capture given: name FILE, -r FILE or - for stdin")
        return 2
    return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    """What ``read`` and ``live`` share once their inputs are named: the outputs made,
    checked and committed atomically, the filters, the signals."""
    if args.format == "parquet" and (not args.output or args.output == "-"):
        _error("--format parquet needs -o FILE")
        return 2
    why = _check_paths(args)
    if why:
        _error(why)
        return 2
    try:
        # a live run's -f is the kernel's filter (capture.kernel_filter), judged before the ring
        frame_filter = None if args.command == "live" else _frame_filter(args.filter)
        keep = _record_filter(args)
        if args.by is not None:
            from .sinks.grouped import GroupedShares

            args.grouped = GroupedShares(args.by, top=args.top, include_ech=args.include_ech)
    except (CaptureError, ValueError) as err:
        _error(str(err))
        return 2
    signals = _Signals()
    signals.install()
    outputs: list[AtomicOutput] = []
    try:
        status = _read_all(args, signals, outputs, frame_filter, keep)
        for output in outputs:
            output.commit()
        if signals.signum:
            return SIGNAL_STATUS[signal.Signals(signals.signum)]
        return status
    except OutputError as err:
        _error(str(err))
        _drop_stdout()
        return 2 if isinstance(err, _Refused) else 1
    except _Abort:
        return SIGNAL_STATUS[signal.Signals(signals.signum)]
    finally:
        for output in outputs:
            output.discard()
        signals.restore()


class _Refused(OutputError):
    """An output refused before reading (status 2)."""


def _drop_stdout() -> None:
    """After a write error: what stdout still buffers goes nowhere (not to a traceback at
    exit)."""
    try:
        sys.stdout.flush()
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _open_output(path: str, outputs: list[AtomicOutput]) -> AtomicOutput:
    try:
        output = AtomicOutput(path)
    except OutputError as err:
        raise _Refused(str(err)) from None
    outputs.append(output)
    return output


def _read_all(
    args: argparse.Namespace,
    signals: _Signals,
    outputs: list[AtomicOutput],
    frame_filter: FrameFilter | None,
    keep: Callable[[Handshake], bool] | None,
) -> int:
    """Every capture read into the outputs (made first: a live run's after its sockets are
    open and root is given up)."""
    from .keys.keylog import KeyLog

    live = args.command == "live"
    opened: Source | LiveJobs | None = None  # a live run's capture: open before anything
    keylog = None
    try:
        if live:
            with signals.reading():
                opened = _open_live(args, signals) if args.jobs == 1 else _open_jobs(args, signals)
        if args.keylog:  # (a live run's stay open: read on as they grow, after root is gone)
            keylog = KeyLog()
            for path in args.keylog:
                if live:
                    keylog.follow(path)
                else:
                    keylog.load(path)
            for line in keylog.errors:  # malformed lines: reported, never fatal or the secret
                _error(f"key log: {line}")
        if live and args.user:  # the sockets and key logs are open: root is needed no more
            _preload(args)
            _drop_privileges(args.user)
    except CaptureError as err:  # (a KeyLogError too)
        if opened is not None:
            opened.close()
        _error(str(err))
        return 2
    except _Stop:
        if opened is not None:
            opened.close()
        return 0
    # every output is made (as a temporary file) before anything is read
    rotating = None
    provenance = None
    if live and args.format == "parquet":
        from .sinks.provenance import run_provenance

        provenance = run_provenance([], interfaces=args.interfaces, keylogs=args.keylog)
    try:
        if args.rotation is not None:  # (live only: a series of files, each made as it starts)
            import time

            from .sinks.rotate import RotatingWriter

            try:
                rotating = RotatingWriter(
                    args.output,
                    args.format,
                    args.rotation,
                    start_ns=time.time_ns(),
                    provenance=provenance,
                )
            except OutputError as err:
                raise _Refused(str(err)) from None
        out_file = (
            _open_output(args.output, outputs)
            if args.output and args.output != "-" and rotating is None
            else None
        )
        stats_file = _open_output(args.stats, outputs) if args.stats else None
    except BaseException:
        if rotating is not None:
            rotating.abort()
        if opened is not None:
            opened.close()
        raise
    stdout = guarded(sys.stdout, "stdout")
    out: TextIO = stdout
    if out_file is not None and args.format != "parquet":
        out = out_file.text()
    rows = _Rows(
        args.format,
        out,
        out_file,
        live=live,
        rotating=rotating,
        provenance=provenance,
        keylogs=args.keylog,
    )
    try:
        return _read_on(
            args,
            signals,
            outputs,
            frame_filter,
            keep,
            opened,
            keylog,
            rows,
            out,
            stdout,
            stats_file,
        )
    except BaseException:
        rows.abort()
        raise


def _read_on(
    args: argparse.Namespace,
    signals: _Signals,
    outputs: list[AtomicOutput],
    frame_filter: FrameFilter | None,
    keep: Callable[[Handshake], bool] | None,
    opened: Source | LiveJobs | None,
    keylog: KeyLog | None,
    rows: _Rows,
    out: TextIO,
    stdout: TextIO,
    stats_file: AtomicOutput | None,
) -> int:
    """``_read_all`` once the outputs are made: every capture read into them."""
    from .capture import open_capture
    from .capture.batch import first_packets
    from .parallel import LiveJobs, ParallelStop, analyze_parallel, auto_jobs
    from .pipeline import CaptureRun, add_run_stats
    from .sinks.summary import Summary

    live = opened is not None
    status = 0
    summary = Summary(include_ech=args.include_ech)
    grouped = args.grouped  # --by: the shares per group
    stats: Counter[str] = Counter()
    captures = 0
    filtered_out = 0
    view = _LiveScreen(args, rows) if live else None

    def take(name: str, records: Iterable[Handshake]) -> int:
        """A capture's records into the summary and the rows, those the record filters keep;
        the number they drop."""
        dropped = 0
        for h in records:
            if keep is None or keep(h):
                summary.add(h)
                if grouped is not None:
                    grouped.add(h, name)
                rows.add(name, h)
                if view is not None:
                    view.add(h)
                if live:  # as each record completes, not when a buffer fills
                    out.flush()
            else:
                dropped += 1
        return dropped

    idle_timeout_ns = round(args.idle_timeout * 1e9)
    dedup = live if args.dedup is None else args.dedup
    for name in args.files:
        # (a live capture is open already: what its rings took before a signal is read)
        if signals.signum and opened is None:
            break
        try:
            if opened is not None:
                source = opened
            else:
                with signals.reading():
                    source = open_capture(name)
        except CaptureError as err:
            _error(str(err))
            status = 2
            continue
        except _Stop:
            break
        captures += 1
        if isinstance(source, LiveJobs):  # live --jobs N: a process per fanout socket
            import time

            assert view is not None
            try:
                filtered_out += take(
                    name,
                    source.records(
                        lambda: bool(signals.signum),
                        keylog=keylog,
                        idle_timeout_ns=idle_timeout_ns,
                        dedup=dedup,
                        watch=None if keylog is None else _keylog_watch(keylog),
                        every_wait=lambda: view.beat(time.time_ns()),
                    ),
                )
                result = source.result()
            except RuntimeError as err:
                _error(f"{name}: {err}")
                status = 2
                continue
            finally:
                view.stop()
            add_run_stats(stats, result.stats, shared_keylog=keylog is not None)
            rows.stats_by_capture[name] = result.stats
            status = max(status, _report_run(name, result))
            continue
        jobs = auto_jobs(name) if args.jobs == "auto" else int(args.jobs)
        size = _want_progress(args.progress, name)
        progress = (
            functools.partial(_batches_with_progress, total=size, label=os.path.basename(name))
            if size
            else None
        )
        if jobs > 1:
            source.close()
            # a signal stops every process at the same packet: the result is then what one
            # process stopped there gives
            stop = ParallelStop(jobs)
            signals.on_signal = stop.request
            try:  # records come sorted by frame
                result = analyze_parallel(
                    name,
                    jobs,
                    watch=progress,
                    keylog=keylog,
                    frame_filter=frame_filter,
                    stop=stop,
                    idle_timeout_ns=idle_timeout_ns,
                    dedup=dedup,
                )
            except RuntimeError as err:  # a worker process failed: one line, not a trace
                _error(f"{name}: {err}")
                status = 2
                continue
            except CaptureError as err:  # the filter cannot judge this file's link type
                _error(str(err))
                status = 2
                continue
            finally:
                signals.on_signal = None
            filtered_out += take(name, result.handshakes)
        else:
            # a regular file's reads do not block: the stream is looked at between batches;
            # a pipe's (stdin, a FIFO) can: a signal must reach the waiting read. A live ring
            # polls with a timeout and looks at the signal itself (then hands on what it holds)
            blocking = not live and (name == "-" or not os.path.isfile(name))
            count = args.count if live else None

            def watch(
                batches: Batches,
                progress: Callable[..., Batches] | None = progress,
                blocking: bool = blocking,
                count: int | None = count,
            ) -> Batches:
                if blocking:
                    batches = signals.batches(batches)
                elif not live:  # (the ring stops itself, and hands on the block still open)
                    batches = signals.between_batches(batches)
                if count is not None:
                    batches = first_packets(batches, count)
                if live and keylog is not None:
                    batches = _reading_keylog(batches, keylog)
                if view is not None:
                    batches = view.watch(batches)
                return batches if progress is None else progress(batches)

            with source:
                run = CaptureRun(
                    source,
                    keylog=keylog,
                    watch=watch,
                    frame_filter=frame_filter,
                    idle_timeout_ns=idle_timeout_ns,
                    dedup=dedup,
                )
                if view is not None:
                    view.run = run
                try:  # records come in frame order, streamed (ndjson: as each is certain)
                    filtered_out += take(name, run.records())
                except CaptureError as err:  # the filter cannot judge this file's link type
                    _error(str(err))
                    status = 2
                    continue
                finally:
                    if view is not None:
                        view.stop()
                result = run.result([])
                if live:
                    from .capture.live import kernel_counts

                    result.stats.update(kernel_counts(source))
        add_run_stats(stats, result.stats, shared_keylog=keylog is not None)
        rows.stats_by_capture[name] = result.stats
        if result.errors:
            rows.errors[name] = result.errors
        status = max(status, _report_run(name, result))
    if filtered_out:
        stats["handshakes_filtered_out"] = filtered_out
    if signals.signum:
        stats["interrupted"] = 1
        sig = signal.Signals(signals.signum).name
        _error(f"interrupted by {sig}: the output covers what was read until then")
    if not captures:  # nothing was read: no output file is made, nor one replaced
        _discard(outputs)
        return status
    rows.close(stats)
    if stats_file is not None:
        import json
        import resource

        stats["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stream = stats_file.text()
        json.dump(dict(sorted(stats.items())), stream, indent=1)
    if args.format == "summary" or not args.quiet:
        stream = out if args.format == "summary" else sys.stderr
        stdout.flush()  # rows first, then the summary
        names = args.interfaces if live else None  # (the loss estimate's, per interface)
        lines = summary.lines(stats, captures=captures, interfaces=names, loss_always=live)
        if grouped is not None:
            lines.extend(grouped.lines())
        for line in lines:
            stream.write(line + "\n")
    stdout.flush()
    return status


def _open_live(
    args: argparse.Namespace,
    signals: _Signals,
    *,
    stop: Any = None,
    fanout_groups: list[int] | None = None,
) -> Source:
    """The ring on each ``-i`` interface (several: merged by time), stopping at a signal or
    when ``--duration`` is over, or once ``stop`` (a multiprocessing Event: --jobs, whose
    processes the parent alone hears signals for) is set."""
    import time

    from .capture.live import open_live

    deadline = None if args.duration is None else time.monotonic() + args.duration

    def stop_now() -> bool:
        return (
            bool(signals.signum)
            or (stop is not None and stop.is_set())
            or (deadline is not None and time.monotonic() >= deadline)
        )

    return open_live(
        args.interfaces,
        promiscuous=not args.no_promiscuous,
        kernel_filter=args.filter,
        snaplen=args.snaplen,
        buffer_mib=args.buffer_size,
        should_stop=stop_now,
        fanout_groups=fanout_groups,
    )


def _open_jobs(args: argparse.Namespace, signals: _Signals) -> LiveJobs:
    """``--jobs N``: N captures of the -i interfaces in one PACKET_FANOUT group (opened now,
    as root), each to be dissected by its own process (parallel.LiveJobs)."""
    import multiprocessing as mp

    from .capture.live import fanout_groups
    from .capture.ring import NEW_FANOUT_GROUP
    from .parallel import LiveJobs

    stop = mp.get_context("fork").Event()

    # the first source starts a group of its own per interface; the others join those
    groups: list[int] = [NEW_FANOUT_GROUP] * len(args.interfaces)
    sources: list[Source] = []
    try:
        for _ in range(args.jobs):
            source = _open_live(args, signals, stop=stop, fanout_groups=groups)
            sources.append(source)
            groups = fanout_groups(source)
    except BaseException:
        for source in sources:
            source.close()
        raise
    return LiveJobs(sources, stop=stop)


def _keylog_watch(keylog: KeyLog) -> Callable[[Batches], Batches]:
    return functools.partial(_reading_keylog, keylog=keylog)


def _reading_keylog(batches: Batches, keylog: KeyLog) -> Batches:
    """The batches, the followed key logs read on before each (a live run's client writes
    its secrets as its handshakes go)."""
    for batch in batches:
        keylog.read_more()
        yield batch


def _preload(args: argparse.Namespace) -> None:
    """Import, while still root, what the run imports when it needs it: the user it goes on
    as may not be allowed to read the Python installation (a venv under /root, say)."""
    import importlib

    for name in (
        "json",
        "resource",
        "datetime",
        "csv",
        "alpnsniff.pipeline",
        "alpnsniff.parallel",
        "alpnsniff.capture.live",
        "alpnsniff.sinks.rows",
        "alpnsniff.sinks.summary",
        "alpnsniff.sinks.text",
        "alpnsniff.sinks.table",
    ):
        importlib.import_module(name)
    if args.format == "parquet":
        importlib.import_module("alpnsniff.sinks.frame")
        importlib.import_module("alpnsniff.sinks.parquet_stream")
        importlib.import_module("alpnsniff.sinks.provenance")
        importlib.import_module("pyarrow.parquet")
    if args.rotation is not None:
        importlib.import_module("alpnsniff.sinks.rotate")
    if not args.quiet and sys.stderr.isatty():
        from .sinks.live_view import LiveView, console

        # a frame drawn (and thrown away) imports what the view's first frame would
        console(io.StringIO()).print(LiveView(0.0).render(0.0))


def _drop_privileges(user: str) -> None:
    """Run as ``user`` from now on (its uid, primary group and supplementary groups): what
    is already open (the capture sockets) stays usable, nothing new needs root."""
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise CaptureError(f"--user {user}: no such user") from None
    try:
        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except PermissionError:
        raise CaptureError(
            f"--user {user}: cannot change to that user (needs CAP_SETUID and CAP_SETGID: "
            "run as root)"
        ) from None
    if os.getuid() != entry.pw_uid or os.geteuid() != entry.pw_uid:
        raise CaptureError(f"--user {user}: the user did not change")


def _discard(outputs: list[AtomicOutput]) -> None:
    for output in outputs:
        output.discard()
    outputs.clear()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "read":
        # options and files in any order (``read a.pcap -T csv b.pcap``)
        read = argparse.ArgumentParser(
            prog="alpnsniff read",
            description="Read captures and report every TLS and QUIC handshake's ALPN offer "
            "and selection.",
            epilog=EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _read_arguments(read)
        args = read.parse_intermixed_args(argv[1:])
        args.command = "read"
    else:
        args = parser.parse_args(argv)
    try:
        if args.command == "read":
            return cmd_read(args)
        if args.command == "live":
            return cmd_live(args)
        if args.command == "interfaces":
            return cmd_interfaces()
        if args.command == "report":
            return cmd_report(args)
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
