"""Helpers for the packet decoder tests: real frames, pcap writing, and tshark's view.

Frames are read with dpkt (not alpnsniff.capture, so these tests check the decoder alone).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dpkt
import pytest

from alpnsniff.net.decode import PacketDecoder
from alpnsniff.net.segment import Segment

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
CORPUS = SHARED / "corpus" / "pcaps"
REALCAP = SHARED / "realcap"

TSHARK_FIELDS = (
    "frame.number",
    "frame.protocols",
    "ip.src",
    "ipv6.src",
    "ip.dst",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "tcp.seq_raw",
    "tcp.len",
    "udp.length",
)


def shared(*parts: str) -> Path:
    """A path under ../shared, or skip when it is absent (a user's clone has no ../shared)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared sits beside the repo on dev machines and CI)")
    return path


def need_tshark() -> str:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark is not on PATH")
    return exe


def read_frames(path: Path) -> list[tuple[int, bytes]]:
    """(linktype, frame bytes) for every record dpkt can read (stops at a damaged record)."""
    out: list[tuple[int, bytes]] = []
    with path.open("rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        linktype = reader.datalink()
        try:
            for _ts, buf in reader:
                out.append((linktype, bytes(buf)))
        except (dpkt.dpkt.Error, ValueError):
            pass
    return out


def write_pcap(path: Path, linktype: int, frames: list[bytes]) -> Path:
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=linktype, snaplen=262144)
        for i, frame in enumerate(frames):
            writer.writepkt(frame, ts=1_700_000_000 + i)
    return path


def tshark_view(path: Path) -> tuple[dict[int, dict[str, str]], bool]:
    """tshark's fields per frame number, and whether tshark read the whole file."""
    cmd = [need_tshark(), "-n", "-r", str(path), "-T", "fields"]
    cmd += ["-E", "occurrence=a", "-E", "aggregator=|", "-E", "separator=\t"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    rows: dict[int, dict[str, str]] = {}
    for line in done.stdout.splitlines():
        values = line.split("\t")
        rows[int(values[0])] = dict(zip(TSHARK_FIELDS, values, strict=True))
    return rows, done.returncode == 0


def _last(value: str) -> str:
    return value.split("|")[-1]


@dataclass
class Verdict:
    """What the comparison of one capture found."""

    agreed: int = 0  # frames with a TCP/UDP layer where every field agrees
    truncated: int = 0  # of those, cut by the snap length (payload compared as a prefix)
    icmp_quote: int = 0  # tshark's L4 is a header quoted in an ICMP error: we say not-tcp-udp
    inner_not_l4: int = 0  # tshark's L4 is outside a tunnel whose inner packet has none
    skipped: int = 0  # frames without TCP/UDP in tshark's view and a reason from us


def compare_with_tshark(path: Path) -> tuple[Verdict, list[str]]:
    """Decode every frame and compare with tshark; the disagreements, named.

    Documented differences (counted in the verdict, not disagreements):

    * ICMP errors quote the IP and TCP/UDP header of the packet that caused them; tshark
      dissects the quote as TCP/UDP, the decoder reports ``not-tcp-udp`` (the quote is not
      traffic of that flow and must not reach the flow table).
    * A tunnel whose inner packet carries no TCP/UDP (Teredo bubbles, ICMPv6 over Teredo):
      tshark still shows the outer UDP ports, the decoder reports the inner outcome.
    * A packet whose IP length claims more than the frame holds (cut by the snap length, or
      a lying header): the payload holds what was captured and the segment is flagged
      ``truncated``; tshark's length (from the headers, or clamped to the frame) is never
      shorter.
    """
    view, complete = tshark_view(path)
    decoder = PacketDecoder()
    verdict = Verdict()
    problems: list[str] = []
    for number, (linktype, frame) in enumerate(read_frames(path), 1):
        row = view.get(number)
        if row is None:
            if complete:
                problems.append(f"frame {number}: tshark printed no row")
            continue
        got = decoder.decode(linktype, frame, number * 1_000_000)
        layers = row["frame.protocols"].split(":")
        l4_at = [i for i, p in enumerate(layers) if p in ("tcp", "udp")]
        ip_at = [i for i, p in enumerate(layers) if p in ("ip", "ipv6")]
        if not l4_at:
            if isinstance(got, Segment):
                problems.append(f"frame {number}: segment, but tshark has {layers}")
            else:
                verdict.skipped += 1
            continue
        l4 = l4_at[-1]
        if "icmp" in layers[:l4] or "icmpv6" in layers[:l4]:
            if got != "not-tcp-udp":
                problems.append(f"frame {number}: ICMP quote gave {got!r}")
            verdict.icmp_quote += 1
            continue
        if ip_at[-1] > l4:
            if isinstance(got, Segment):
                problems.append(f"frame {number}: inner has no L4 but got a segment")
            verdict.inner_not_l4 += 1
            continue
        if not isinstance(got, Segment):
            problems.append(f"frame {number}: {got!r} where tshark has {layers}")
            continue
        problems.extend(_field_diffs(number, got, row, layers, l4, ip_at[-1], verdict))
    return verdict, problems


def _field_diffs(
    number: int,
    seg: Segment,
    row: dict[str, str],
    layers: list[str],
    l4: int,
    ip: int,
    verdict: Verdict,
) -> list[str]:
    proto = layers[l4]
    v6 = layers[ip] == "ipv6"
    want: dict[str, object] = {
        "proto": 6 if proto == "tcp" else 17,
        "ip_version": 6 if v6 else 4,
        "src": _last(row["ipv6.src" if v6 else "ip.src"]),
        "dst": _last(row["ipv6.dst" if v6 else "ip.dst"]),
        "sport": int(_last(row[f"{proto}.srcport"])),
        "dport": int(_last(row[f"{proto}.dstport"])),
    }
    have: dict[str, object] = {
        "proto": seg.proto,
        "ip_version": seg.ip_version,
        "src": str(ipaddress.ip_address(seg.src)),
        "dst": str(ipaddress.ip_address(seg.dst)),
        "sport": seg.sport,
        "dport": seg.dport,
    }
    if proto == "tcp":
        want["seq"] = int(_last(row["tcp.seq_raw"]))
        have["seq"] = seg.seq
        length = int(_last(row["tcp.len"]))
    else:
        length = int(_last(row["udp.length"])) - 8
    if seg.truncated:
        verdict.truncated += 1
        if len(seg.payload) > length:  # tshark may also clamp to the frame (then equal)
            return [f"frame {number}: truncated, yet {len(seg.payload)} > {length} bytes"]
    else:
        want["payload_len"] = length
        have["payload_len"] = len(seg.payload)
    if want != have:
        return [f"frame {number}: tshark {want} decoder {have}"]
    verdict.agreed += 1
    return []
