"""Live capture benchmark: the generated capture replayed by tcpreplay into a veth at rising rates.

    sudo python bench/replay_bench.py [--packets 400000] [--file F] [--rates 50000,...,top]
                                      [--alpnsniff CMD] [--no-tshark] [--no-ndpi]
                                      [--json OUT] [--out-dir DIR]

Two network namespaces joined by a veth (bench/netns.py: MTU 1600, offloads off, IPv6 off, no
addresses: only the replayed frames cross it). For each tool and each rate, in turn:

1. the tool starts capturing on the receiving end, pinned to core 0 (``taskset -c 0``):
   ``alpnsniff live -i IF -T ndjson -o F --stats S -q``, ``tshark -i IF -n -Y
   tls.handshake.type==1 -T fields -e tls.handshake.extensions_alpn_str -e
   tls.handshake.extensions_server_name`` and ``ndpiReader -i IF``; once its packet socket is
   open (``/proc/net/packet`` of the namespace) and a second has passed,
2. ``tcpreplay --preload-pcap --pps RATE`` (``--topspeed`` for ``top``) sends the file once
   from the other end, pinned to core 1 (the veth's receive work runs in the sender's softirq,
   on core 1 too),
3. once tcpreplay is done the tool is left until it is idle (its process group used under 2
   clock ticks of CPU in 0.5 s: the ring, or tshark's temporary file, drained), then gets
   SIGINT, and its outputs are read.

Each step is compared with the same tool reading the file (``alpnsniff read``, ``tshark -r``,
``ndpiReader -i FILE``): alpnsniff's rows must be equal but for ``ts``, ``frame``,
``server_frame`` and ``capture`` (offers, selections, SNI, addresses, ports, every other
column); tshark's lines equal; ndpiReader's "Detected protocols" table equal and its packet
total equal to the packets sent. A step **holds** when the kernel dropped nothing, every
handshake was recorded and the tool kept pace: idle within ``LAG_LIMIT_S`` of the sender's
end, or within ``LATENCY_LIMIT_S`` with its processes using under ``BUSY_LIMIT`` of their core
over the step (tshark captures into a temporary file through dumpcap and reads it when dumpcap
says so: it can lag without dropping, and has a latency of its own). The highest rate is the
fastest step that held, every slower step having held too. CPU per packet is the process
group's utime + stime (/proc/PID/stat) from the start of tcpreplay to idle, over the packets
sent: the start-up is left out. Each rate lasts ``--step-seconds`` (5): the file's first
packets, or the file looped (``--loop``, ``--limit``); the tools reading "the same packets"
get that sequence on stdin, each copy's timestamps moved on.

Needs root, ip, ethtool, tcpreplay (tshark and ndpiReader are optional). Namespaces and
processes are removed in every case (an error, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from netns import DEFAULT_MTU, VethLab, missing_requirements  # noqa: E402

sys.path.insert(0, str(HERE.parent))
# what `alpnsniff live` runs in the kernel without -f (bare TCP ACKs stay there): the packets
# its ring is handed are those of the file this expression keeps
from alpnsniff.capture.kernel_filter import DEFAULT_FILTER  # noqa: E402

TARGET_PPS = 200_000  # issue 10: zero drops at >= 200k packets/s, tcpreplay on the other core
DEFAULT_RATES = "10000,25000,50000,100000,150000,200000,250000,300000,350000,400000,top"
STEP_S = 5.0  # each rate is sent this long at least (the file looped as often as needed)
# Idle this soon after the sender's end, or the tool did not keep up: a tool whose buffer
# (alpnsniff's 64 MiB ring, tshark's temporary file) hides a backlog hides at most this much
# of its own work; over a step of STEP_S that is a few percent of the packets. alpnsniff's
# last block is handed on 0.1 s after the last packet (the ring's block timeout).
LAG_LIMIT_S = 0.25
# ... or, for a pipeline with a fixed latency (tshark reads what dumpcap has written, told of
# it every 100 ms), idle within LATENCY_LIMIT_S while using under BUSY_LIMIT of its core over
# the step: a tool that falls behind keeps its core busy until it has caught up.
LATENCY_LIMIT_S = 1.0
BUSY_LIMIT = 0.9
SETTLE_S = 1.0  # after the tool's packet socket appears: the ring set up and bound
IDLE_WINDOW_S = 0.5
IDLE_TICKS = 2  # CPU clock ticks a group may use in IDLE_WINDOW_S and still be idle
CATCH_UP_LIMIT_S = 120.0  # a tool still busy this long after the sender is stopped anyway
TOOL_CPU = "0"
SENDER_CPU = "1"
# the columns left out of the row comparison: when and in which frame, not what
ROW_SKIP = ("ts", "frame", "server_frame", "capture")
TSHARK_ARGS = ["-n", "-Y", "tls.handshake.type==1", "-T", "fields", "-E", "occurrence=a",
               "-E", "aggregator=,", "-e", "tls.handshake.extensions_alpn_str",
               "-e", "tls.handshake.extensions_server_name"]  # fmt: skip
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Step:
    """One tool at one rate (see the module docstring). ``None``: the tool does not say."""

    tool: str
    rate: str  # as asked: packets/s, or "top"
    count: int = 0  # packets to send: the file's first ones, or the file looped (--limit)
    sent: int = 0  # tcpreplay's "Actual: N packets"
    failed: int = 0  # tcpreplay's "Failed packets"
    send_s: float = 0.0
    pps: float = 0.0  # tcpreplay's "Rated: … pps"
    link_rx: int = 0  # the receiving veth's rx_packets over the step
    seen: int | None = None  # the tool's count of packets captured
    kernel_packets: int | None = None
    kernel_expected: int | None = None  # alpnsniff: the packets sent its default filter keeps
    kernel_drops: int | None = None
    kernel_freezes: int | None = None  # alpnsniff: times the kernel found the next block ours
    rows: int = 0
    reference_rows: int = 0
    rows_equal: bool = False
    lag_s: float = 0.0
    cpu_s: float = 0.0
    cpu_us_per_packet: float = 0.0
    busy: float = 0.0  # cores the tool's processes used from the sender's start to idle
    exit_status: int | None = None
    holds: bool = False
    why: list[str] = field(default_factory=list)


@dataclass
class Reference:
    """What a tool reports reading the file: the rows to compare, and a count of them."""

    rows: Counter[str]
    packets: int | None = None
    # alpnsniff: the packets the kernel's default filter keeps (what its ring should get)
    kept: int | None = None


def normalized_rows(path: Path) -> Counter[str]:
    """alpnsniff ndjson rows without the columns of ROW_SKIP, as canonical JSON."""
    rows: Counter[str] = Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            for key in ROW_SKIP:
                record.pop(key, None)
            rows[json.dumps(record, sort_keys=True)] += 1
    return rows


def tshark_rows(path: Path) -> Counter[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return Counter(line.rstrip("\n") for line in f)


def ndpi_report(text: str) -> tuple[Counter[str], int | None]:
    """ndpiReader's "Detected protocols" lines and its "of N packets total"."""
    rows: Counter[str] = Counter()
    block = text.partition("Detected protocols:")[2].partition("Protocol statistics:")[0]
    for line in block.splitlines():
        if line.strip():
            rows[" ".join(line.split())] += 1
    total = re.search(r"of (\d+) packets total", text)
    return rows, int(total.group(1)) if total else None


def tcpreplay_figures(text: str) -> dict[str, float]:
    """sent, send_s, pps and failed from tcpreplay's report."""
    out: dict[str, float] = {}
    actual = re.search(r"Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds", text)
    if actual:
        out["sent"], out["send_s"] = int(actual.group(1)), float(actual.group(3))
    rated = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", text)
    if rated:
        out["pps"] = float(rated.group(1))
    failed = re.search(r"Failed packets:\s+(\d+)", text)
    if failed:
        out["failed"] = int(failed.group(1))
    return out


def tshark_drops(text: str) -> int:
    """tshark's "N packets dropped from IF" lines at exit (none when nothing was dropped)."""
    return sum(int(n) for n in re.findall(r"(\d+) packets? dropped", text))


def group_members(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` (the tool and, for tshark, dumpcap)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[2]) == pgid:
            pids.append(int(entry))
    return pids


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime of ``pids`` in clock ticks (a process gone counts nothing)."""
    total = 0
    for pid in pids:
        try:
            fields = Path("/proc", str(pid), "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def wait_idle(pids: list[int], since: float) -> tuple[float, bool]:
    """Wait until ``pids`` use under IDLE_TICKS in IDLE_WINDOW_S: (seconds from ``since`` to
    the start of that quiet window, whether it came within CATCH_UP_LIMIT_S)."""
    samples: list[tuple[float, int]] = []
    while True:
        now = time.monotonic()
        samples.append((now, cpu_ticks(pids)))
        window = [s for s in samples if s[0] >= now - IDLE_WINDOW_S - 1e-3]
        long_enough = window[-1][0] - window[0][0] >= IDLE_WINDOW_S - 0.05
        if long_enough and window[-1][1] - window[0][1] < IDLE_TICKS:
            return max(0.0, window[0][0] - since), True
        if now - since > CATCH_UP_LIMIT_S:
            return now - since, False
        time.sleep(0.05)


class Looped:
    """The first ``count`` packets of a classic pcap sent over and over, as ``tcpreplay
    --loop=L --limit=count`` sends them: written to a pipe for the tools reading "the same
    packets" from stdin. Each copy's
    timestamps are moved on by the file's span plus a second, so that time keeps rising as it
    does on the wire (µs or ns pcap, either byte order)."""

    MAGICS: ClassVar[dict[bytes, tuple[str, int]]] = {b"\xd4\xc3\xb2\xa1": ("<", 1_000_000), b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
              b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
              b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000)}  # fmt: skip

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        kind = self.MAGICS.get(self.data[:4])
        if kind is None:
            raise ValueError(f"{path}: not a classic pcap: looping needs one (editcap -F pcap)")
        self.order, self.units = kind
        header = struct.Struct(self.order + "IIII")
        self.offsets: list[int] = []
        pos = 24
        while pos + 16 <= len(self.data):
            self.offsets.append(pos)
            pos += 16 + header.unpack_from(self.data, pos)[2]
        first = self.ts_at(self.offsets[0]) if self.offsets else 0
        last = self.ts_at(self.offsets[-1]) if self.offsets else 0
        self.shift = last - first + self.units  # a copy's span plus one second

    def ts_at(self, pos: int) -> int:
        sec, frac = struct.unpack_from(self.order + "II", self.data, pos)
        return int(sec) * self.units + int(frac)

    def write(self, out: Any, count: int) -> None:
        out.write(self.data[:24])
        n = len(self.offsets)
        for k in range(math.ceil(count / n) if n else 0):
            take = min(n, count - k * n)
            end = self.offsets[take] if take < n else len(self.data)
            if k == 0:
                out.write(memoryview(self.data)[24:end])
                continue
            copy = bytearray(memoryview(self.data)[:end])
            for pos in self.offsets[:take]:
                sec, frac = divmod(self.ts_at(pos) + k * self.shift, self.units)
                struct.pack_into(self.order + "II", copy, pos, sec, frac)
            out.write(memoryview(copy)[24:])


class Procs:
    """Every child started, each in its own session; :meth:`kill_all` ends those still
    running (the process group: tshark's dumpcap too)."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], stdout: Any, stderr: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, start_new_session=True)
        self.running.append(proc)
        return proc

    def reap(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait for ``proc`` (if not waited for yet) and forget it."""
        proc.wait()
        self.running.remove(proc)

    def kill_all(self) -> None:
        for proc in list(self.running):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self.running.remove(proc)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so that the finally blocks clean up."""
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class Bench:
    def __init__(self, args: argparse.Namespace, capture: Path, work: Path) -> None:
        self.args = args
        self.capture = capture
        self.work = work
        self.alpnsniff = shlex.split(args.alpnsniff)
        self.procs = Procs()
        self._looped: Looped | None = None
        self._refs: dict[tuple[str, int], Reference] = {}
        self.packets = 0  # in the file (alpnsniff read's count), set by the first reference

    def tool_cmd(self, tool: str, iface: str, out: Path, stats: Path) -> list[str]:
        if tool == "alpnsniff":
            return [*self.alpnsniff, "live", "-i", iface, "-T", "ndjson", "-o", str(out),
                    "--stats", str(stats), "-q"]  # fmt: skip
        if tool == "tshark":
            return ["tshark", "-i", iface, *TSHARK_ARGS]
        return ["ndpiReader", "-i", iface]

    def reference(self, tool: str, count: int) -> Reference:
        """The tool reading the ``count`` packets a step sends (0: the file), cached."""
        key = (tool, 0 if count == self.packets else count)
        if key not in self._refs:
            self._refs[key] = self._read(tool, key[1])
        return self._refs[key]

    def _read(self, tool: str, count: int) -> Reference:
        out = self.work / f"{tool}.file{count}.out"
        stats = self.work / f"alpnsniff.file{count}.stats"
        src = "-" if count else str(self.capture)
        if tool == "alpnsniff":
            cmd = [*self.alpnsniff, "read", src, "-T", "ndjson", "-o", str(out), "-q",
                   "--stats", str(stats), "-f", DEFAULT_FILTER]  # fmt: skip
        elif tool == "tshark":
            cmd = ["tshark", "-r", src, *TSHARK_ARGS]
        else:
            cmd = ["ndpiReader", "-i", src]
        stdin = subprocess.PIPE if count else subprocess.DEVNULL
        with open(out if tool != "alpnsniff" else os.devnull, "wb") as f:
            proc = subprocess.Popen(cmd, stdin=stdin, stdout=f, stderr=subprocess.DEVNULL)
            if proc.stdin is not None:
                if self._looped is None:
                    self._looped = Looped(self.capture)
                try:
                    self._looped.write(proc.stdin, count)
                finally:
                    proc.stdin.close()
            if proc.wait() != 0:
                raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}")
        if tool == "alpnsniff":
            counts = json.loads(stats.read_text())
            packets = int(counts.get("packets", 0))
            self.packets = self.packets or packets
            kept = packets - int(counts.get("packets_filtered_out", 0))
            return Reference(normalized_rows(out), packets, kept)
        if tool == "tshark":
            return Reference(tshark_rows(out))
        rows, total = ndpi_report(out.read_text(errors="replace"))
        return Reference(rows, total)

    def count_for(self, rate: str, rates: list[str]) -> int:
        """How many packets are sent at ``rate``: as many as make ``--step-seconds`` ("top":
        as many as at the fastest rate given)."""
        numeric = [float(r) for r in rates if r != "top"]
        pps = float(rate) if rate != "top" else max(numeric, default=400_000.0)
        return max(1, math.ceil(pps * float(self.args.step_seconds)))

    def step(self, lab: VethLab, tool: str, rate: str, count: int) -> Step:
        st = Step(tool=tool, rate=rate, count=count)
        loops = math.ceil(count / self.packets)
        out = self.work / f"{tool}.{rate}.out"
        err = self.work / f"{tool}.{rate}.err"
        stats = self.work / f"{tool}.{rate}.stats"
        stats.unlink(missing_ok=True)
        base = lab.packet_sockets(lab.rx_ns)
        nice = ["nice", "-n", str(self.args.nice)] if self.args.nice else []
        cmd = [*lab.exec_in(lab.rx_ns), "taskset", "-c", TOOL_CPU, *nice,
               *self.tool_cmd(tool, lab.rx_dev, out, stats)]  # fmt: skip
        with open(out, "wb") as out_f, open(err, "wb") as err_f:
            proc = self.procs.start(cmd, out_f if tool != "alpnsniff" else subprocess.DEVNULL,
                                    err_f)  # fmt: skip
        deadline = time.monotonic() + 30
        while lab.packet_sockets(lab.rx_ns) <= base:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{tool} did not start capturing: {err.read_text()[-2000:]}")
            time.sleep(0.02)
        time.sleep(SETTLE_S)
        members = group_members(proc.pid)
        link0 = lab.rx_counters()["rx_packets"]
        ticks0 = cpu_ticks(members)
        speed = ["--topspeed"] if rate == "top" else ["--pps", rate]
        replay = self.procs.start(
            [*lab.exec_in(lab.tx_ns), "taskset", "-c", SENDER_CPU, "tcpreplay", "-i",
             lab.tx_dev, "--preload-pcap", f"--loop={loops}", f"--limit={count}", *speed, str(self.capture)],
            subprocess.PIPE, subprocess.STDOUT,
        )  # fmt: skip
        replay_out = replay.communicate()[0].decode(errors="replace")
        self.procs.reap(replay)
        ended = time.monotonic()
        if replay.returncode != 0:
            raise RuntimeError(f"tcpreplay failed ({replay.returncode}): {replay_out[-2000:]}")
        figures = tcpreplay_figures(replay_out)
        st.sent, st.failed = int(figures.get("sent", 0)), int(figures.get("failed", 0))
        st.send_s, st.pps = figures.get("send_s", 0.0), figures.get("pps", 0.0)
        st.lag_s, drained = wait_idle(members, ended)
        ticks1 = cpu_ticks(members)
        st.link_rx = lab.rx_counters()["rx_packets"] - link0
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            st.why.append("did not exit within 60 s of SIGINT")
        self.procs.reap(proc)
        st.exit_status = proc.returncode
        st.cpu_s = (ticks1 - ticks0) / CLK_TCK
        st.cpu_us_per_packet = st.cpu_s / st.sent * 1e6 if st.sent else 0.0
        st.busy = st.cpu_s / (st.send_s + st.lag_s) if st.send_s + st.lag_s > 0 else 0.0
        if not drained:
            st.why.append(f"still busy {CATCH_UP_LIMIT_S:.0f} s after the sender")
        self.outcome(st, tool, self.reference(tool, count), out, err, stats)
        return st

    def outcome(
        self, st: Step, tool: str, ref: Reference, out: Path, err: Path, stats: Path
    ) -> None:
        """The tool's counts and rows, compared; whether the step holds."""
        st.reference_rows = sum(ref.rows.values())
        err_text = err.read_text(errors="replace")
        if tool == "alpnsniff":
            if st.exit_status not in (0, 130) or not stats.exists():
                st.why.append(f"exit {st.exit_status}: {err_text[-500:]}")
                return
            counts = json.loads(stats.read_text())
            st.seen = counts.get("packets")
            st.kernel_packets = counts.get("kernel_packets", 0)
            st.kernel_drops = counts.get("kernel_drops", 0)
            st.kernel_freezes = counts.get("kernel_freezes", 0)
            rows = normalized_rows(out) if out.exists() else Counter()
        elif tool == "tshark":
            st.kernel_drops = tshark_drops(err_text)
            rows = tshark_rows(out)
        else:
            rows, st.seen = ndpi_report(out.read_text(errors="replace"))
            st.kernel_packets = st.seen
            st.kernel_drops = st.sent - st.seen if st.seen is not None else None
        st.rows = sum(rows.values())
        st.rows_equal = rows == ref.rows
        if st.failed:
            st.why.append(f"tcpreplay failed to send {st.failed}")
        if st.link_rx != st.sent:
            st.why.append(f"the veth received {st.link_rx} of {st.sent}")
        if st.kernel_drops != 0:
            st.why.append(f"kernel drops {st.kernel_drops}")
        if tool == "alpnsniff":
            st.kernel_expected = ref.kept
        if tool == "alpnsniff" and st.kernel_packets != ref.kept:
            st.why.append(
                f"kernel_packets {st.kernel_packets} != {ref.kept} of the {st.sent} sent that "
                "the default kernel filter keeps"
            )
        if tool == "ndpiReader" and st.seen != st.sent:
            st.why.append(f"ndpiReader saw {st.seen} of {st.sent}")
        if not st.rows_equal:
            st.why.append(f"rows differ from reading the file ({st.rows} vs {st.reference_rows})")
        latency = st.lag_s <= LATENCY_LIMIT_S and st.busy < BUSY_LIMIT
        if st.lag_s > LAG_LIMIT_S and not latency:
            st.why.append(f"idle only {st.lag_s:.2f} s after the sender, {st.busy:.2f} cores busy")
        st.holds = not st.why


def highest_held(steps: list[Step]) -> float | None:
    """The fastest actual rate held with every slower step held too (None: not the first)."""
    best: float | None = None
    for st in steps:
        if not st.holds:
            break
        best = max(best or 0.0, st.pps)
    return best


def print_table(steps: list[Step]) -> None:
    print(
        f"{'tool':<11}{'rate':>7}{'actual pps':>11}{'sent':>10}{'link rx':>10}{'kernel':>10}"
        f"{'drops':>9}{'rows':>7}{'file':>7}{'equal':>6}{'lag s':>6}{'CPU s':>7}{'µs/pkt':>7}"
        f"{'cores':>6}"
        "  holds"
    )

    def num(v: int | None) -> str:
        return "-" if v is None else f"{v:,}"

    for st in steps:
        print(
            f"{st.tool:<11}{st.rate:>7}{st.pps:>11,.0f}{st.sent:>10,}{st.link_rx:>10,}"
            f"{num(st.kernel_packets):>10}{num(st.kernel_drops):>9}{st.rows:>7,}"
            f"{st.reference_rows:>7,}{'yes' if st.rows_equal else 'NO':>6}{st.lag_s:>6.2f}"
            f"{st.cpu_s:>7.2f}{st.cpu_us_per_packet:>7.2f}{st.busy:>6.2f}  "
            + ("yes" if st.holds else "NO: " + "; ".join(st.why))
        )


def ensure_capture(args: argparse.Namespace) -> Path:
    out_dir = HERE / "out"
    path: Path = args.file or out_dir / f"replay_{args.packets}_seed{args.seed}.pcap"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ({args.packets:,} packets) ...", flush=True)
        tmp = path.with_suffix(".tmp")
        with open(path.with_suffix(".json"), "w", encoding="utf-8") as summary:
            subprocess.run([sys.executable, str(HERE / "gen_capture.py"), str(tmp), "--packets",
                            str(args.packets), "--seed", str(args.seed)],
                           check=True, stdout=summary)  # fmt: skip
        tmp.rename(path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--packets", type=int, default=400_000, help="generated capture's size")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--file", type=Path, help="replay this capture (default: generate one)")
    ap.add_argument("--rates", default=DEFAULT_RATES,
                    help="packets/s, comma-separated, rising; 'top': tcpreplay --topspeed")  # fmt: skip
    ap.add_argument("--alpnsniff", default=shutil.which("alpnsniff") or "alpnsniff",
                    help="the alpnsniff command (default: the one on PATH)")  # fmt: skip
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--no-ndpi", action="store_true")
    ap.add_argument("--all-rates", action="store_true",
                    help="go on with a tool after a rate it did not hold")  # fmt: skip
    ap.add_argument("--step-seconds", type=float, default=STEP_S,
                    help="each rate lasts this long at least (the file looped)")  # fmt: skip
    ap.add_argument("--mtu", type=int, default=DEFAULT_MTU)
    ap.add_argument("--nice", type=int, default=0,
                    help="run every tool under nice -n N (e.g. -5 on a machine other jobs "
                    "share; the same for all tools)")  # fmt: skip
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--out-dir", type=Path, help="keep the tools' outputs here (default: a "
                    "temporary directory, removed)")  # fmt: skip
    args = ap.parse_args(argv)
    why = missing_requirements() or (None if shutil.which("tcpreplay") else "tcpreplay is "
                                     "not installed (Debian: tcpreplay)")  # fmt: skip
    if why:
        print(f"replay_bench: {why}", file=sys.stderr)
        return 2
    rates = [r.strip() for r in args.rates.split(",") if r.strip()]
    tools = ["alpnsniff"]
    for name, skip in (("tshark", args.no_tshark), ("ndpiReader", args.no_ndpi)):
        if not skip:
            if shutil.which(name):
                tools.append(name)
            else:
                print(f"{name}: not installed, not compared")
    with sigterm_as_interrupt():
        try:
            return run(args, rates, tools)
        except KeyboardInterrupt:
            print("replay_bench: interrupted; namespaces and processes removed", file=sys.stderr)
            return 130


def run(args: argparse.Namespace, rates: list[str], tools: list[str]) -> int:
    capture = ensure_capture(args)
    with tempfile.TemporaryDirectory(prefix="replay_bench.") as tmp:
        work = args.out_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        bench = Bench(args, capture, work)
        version = subprocess.run([*bench.alpnsniff, "--version"], capture_output=True,
                                 text=True, check=True).stdout.strip()  # fmt: skip
        print(f"capture: {capture} ({capture.stat().st_size / 1e6:,.0f} MB); {version}; "
              f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        refs = {tool: bench.reference(tool, 0) for tool in tools}
        print(f"reading the file ({bench.packets:,} packets): " + ", ".join(
            f"{t} {sum(r.rows.values()):,} rows" for t, r in refs.items()), flush=True)  # fmt: skip
        steps: list[Step] = []
        lab_info: dict[str, Any] = {}
        with VethLab(mtu=args.mtu) as lab:
            lab_info.update(namespaces=[lab.tx_ns, lab.rx_ns], devices=[lab.tx_dev, lab.rx_dev],
                            offloads_off=lab.offloads_off)  # fmt: skip
            try:
                print(f"lab: {lab.tx_ns}/{lab.tx_dev} -> {lab.rx_ns}/{lab.rx_dev}, MTU "
                      f"{lab.mtu}, offloads off: {','.join(lab.offloads_off[lab.rx_dev])}; "
                      f"tools on core {TOOL_CPU}, tcpreplay on core {SENDER_CPU}",
                      flush=True)  # fmt: skip
                for tool in tools:
                    for rate in rates:
                        count = bench.count_for(rate, rates)
                        st = bench.step(lab, tool, rate, count)
                        steps.append(st)
                        print(f"replayed: {tool} at {rate}: {count:,} packets")
                        print_table([st])
                        if not st.holds and not args.all_rates:
                            break
            finally:
                bench.procs.kill_all()  # before the namespaces go
        print()
        print_table(steps)
        return report(args, capture, version, tools, steps, lab_info)


def report(
    args: argparse.Namespace,
    capture: Path,
    version: str,
    tools: list[str],
    steps: list[Step],
    lab_info: dict[str, Any],
) -> int:
    lowest = steps[0].rate if steps else "?"
    highest: dict[str, float | None] = {}
    print()
    for tool in tools:
        own = [st for st in steps if st.tool == tool]
        highest[tool] = best = highest_held(own)
        if best is None:
            print(f"{tool}: did not keep up at the lowest rate tried ({lowest} packets/s): "
                  + "; ".join(own[0].why if own else []))  # fmt: skip
        else:
            top = " (every rate held: the sender is the limit)" if len(own) == len(
                [s for s in own if s.holds]) and own[-1].rate == "top" else ""  # fmt: skip
            print(f"{tool}: highest rate held {best:,.0f} packets/s{top}")
    ours = highest.get("alpnsniff")
    for other in ("tshark", "ndpiReader"):
        if other not in highest:
            continue
        theirs = highest[other]
        if ours is None:
            print(f"ratio alpnsniff/{other}: n/a (alpnsniff held no rate)")
        elif theirs is None:
            low = float(lowest) if lowest.isdigit() else float("nan")
            print(f"ratio alpnsniff/{other}: > {ours / low:.2f}x ({other} held no rate tried)")
        else:
            print(f"ratio alpnsniff/{other}: {ours / theirs:.2f}x")
    met = ours is not None and ours >= TARGET_PPS
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other jobs share the cores)")
    print(
        f"target (issue 10): >= {TARGET_PPS:,} packets/s with zero drops, every handshake "
        f"recorded, tcpreplay on the other core: {'target met' if met else 'MISSED'}"
    )
    if args.json:
        doc = {
            "capture": str(capture),
            "alpnsniff": version,
            "tool_cpu": TOOL_CPU,
            "sender_cpu": SENDER_CPU,
            "mtu": args.mtu,
            "nice": args.nice,
            **lab_info,
            "steps": [asdict(st) for st in steps],
            "highest_pps": highest,
            "target_pps": TARGET_PPS,
            "target_met": met,
            "load_average_end": os.getloadavg()[0],
        }
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
