"""Duplicate frames (alpnsniff.capture.dedup): marked in place, never dissected twice.

Real captures doubled with ``mergecap`` (every frame twice at the same time) give the
original's records and counts, every second copy marked; editcap (``-d``: the same bytes
among the last 4 frames; ``-w``: within a time window) is the reference for byte-identical
copies. What differs from editcap, on purpose: a copy that differs only in its link header
(a VLAN tag added), TTL, TOS or IPv4 checksum (a routed copy) is a duplicate for us and not
for editcap; a byte-identical frame later than 1 ms (a retransmission) is not.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from alpnsniff.capture import open_capture
from alpnsniff.capture.batch import batch_of
from alpnsniff.capture.dedup import (
    DUPLICATE,
    KEY_TRANSPORT_BYTES,
    MAX_WINDOW_PACKETS,
    Dedup,
    frame_key,
)
from alpnsniff.pipeline import CaptureRun
from alpnsniff.records import Handshake
from tests.conftest import CAPTURES, CORPUS

MERGECAP = shutil.which("mergecap")
EDITCAP = shutil.which("editcap")
needs_wireshark_tools = pytest.mark.skipif(
    MERGECAP is None or EDITCAP is None, reason="mergecap / editcap are not on PATH"
)
CORPUS_PCAPS = sorted((CORPUS / "pcaps").glob("*")) if (CORPUS / "pcaps").is_dir() else []

# IPv4 TCP, IPv6 TCP + QUIC, QUIC with a Retry, one VLAN tag (and non-IP frames), Linux
# cooked v2, a browser's connections
DOUBLED = (
    "openssl_tls12_h2.pcap",
    "openssl_aioquic_ipv6.pcap",
    "aioquic_retry.pcap",
    "openssl_tls12_vlan.pcap",
    "openssl_any_sll2.pcap",
    "chromium_nginx_h2_veth1500.pcap",
)
# what the pipeline counts a duplicate's placeholder as
DUPLICATE_COUNTS = ("packets_duplicate",)


def run(path: Path, dedup: Dedup | None) -> tuple[list[Handshake], Counter[str]]:
    """The records and counts of ``path``, through the run's duplicate stage (what
    ``--dedup`` and a live run use), ``dedup`` being that stage (None: none)."""
    with open_capture(path) as source:
        capture_run = CaptureRun(source, dedup=dedup is not None)
        if dedup is not None:
            capture_run.dissector.dedup = dedup  # (this one, to look at its count)
        records = list(capture_run.records())
        return records, capture_run.result(records).stats


def doubled(path: Path, tmp_path: Path) -> Path:
    assert MERGECAP is not None
    out = tmp_path / ("doubled_" + path.name)
    subprocess.run([MERGECAP, "-F", "pcap", "-w", str(out), str(path), str(path)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    return out


def editcap_skipped(path: Path, *options: str) -> int:
    assert EDITCAP is not None
    done = subprocess.run([EDITCAP, *options, str(path), "/dev/null"],
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    found = re.search(r"(\d+) packets? skipped", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    return int(found.group(1))


def marked(path: Path, dedup: Dedup) -> list[int]:
    """The frame numbers ``dedup`` marks in ``path``."""
    frames = []
    frame = 0
    with open_capture(path) as source:
        for batch in source.batches():
            dedup.filter(batch)
            for linktype in batch.linktypes:
                frame += 1
                if linktype == DUPLICATE:
                    frames.append(frame)
    return frames


def without_duplicate_counts(stats: Counter[str]) -> Counter[str]:
    return Counter({k: v for k, v in stats.items() if k not in (*DUPLICATE_COUNTS, "packets")})


@needs_wireshark_tools
@pytest.mark.parametrize("name", DOUBLED)
def test_a_capture_merged_with_itself(name: str, tmp_path: Path) -> None:
    original = CAPTURES / name
    twice = doubled(original, tmp_path)
    records, stats = run(original, Dedup())
    dedup = Dedup()
    records2, stats2 = run(twice, dedup)
    packets = stats["packets"]
    assert stats2["packets"] == 2 * packets  # every frame is numbered
    # every second copy is a duplicate (these captures have none of their own)
    assert sum(stats[k] for k in DUPLICATE_COUNTS) == 0
    assert dedup.duplicates == packets
    assert sum(stats2[k] for k in DUPLICATE_COUNTS) == packets
    assert marked(twice, Dedup()) == list(range(2, 2 * packets + 1, 2))
    # the same records (the first copy's frame numbers) and the same counts
    renumbered = [
        dataclasses.replace(
            h,
            frame=(h.frame + 1) // 2,
            server_frame=None if h.server_frame is None else (h.server_frame + 1) // 2,
        )
        for h in records2
    ]
    assert renumbered == records
    assert without_duplicate_counts(stats2) == without_duplicate_counts(stats)
    # undeduplicated, the records are the same too, but the packet counts are not
    records3, stats3 = run(twice, None)
    assert len(records3) == len(records)
    assert without_duplicate_counts(stats3) != without_duplicate_counts(stats)
    # tshark's tools: editcap -d removes as many
    assert editcap_skipped(twice, "-d") == packets


def vlan_tagged(data: bytes, vid: int) -> bytes:
    return data[:12] + struct.pack("!HH", 0x8100, vid) + data[12:]


def test_a_copy_with_a_vlan_tag_added_is_a_duplicate(tmp_path: Path) -> None:
    # one SPAN source port untagged, the other with the VLAN's tag (the frames: real ones)
    with open_capture(CAPTURES / "openssl_tls12_h2.pcap") as source:
        packets = list(source.packets())
    both = []
    for ts, linktype, data in packets:
        both.append((ts, linktype, data))
        both.append((ts + 20_000, linktype, vlan_tagged(data, 42)))  # 20 µs later
    batch = batch_of(both)
    dedup = Dedup()
    dedup.filter(batch)
    assert dedup.duplicates == len(packets)
    assert batch.linktypes[1::2] == [DUPLICATE] * len(packets)
    # the tagged frame first: the untagged copy is the duplicate
    batch = batch_of([both[1], both[0]])
    Dedup().filter(batch)
    assert batch.linktypes == [1, DUPLICATE]


def test_a_routed_copy_is_a_duplicate() -> None:
    # the copy after a router: other MAC addresses, TTL one less, checksum mended, TOS
    # re-marked; and Ethernet padding of another length
    with open_capture(CAPTURES / "openssl_tls12_h2.pcap") as source:
        packets = list(source.packets())
    ts, linktype, data = next(p for p in packets if len(p[2]) < 60 or p[2][14 + 8] > 1)
    copy = bytearray(b"\x02" * 12 + data[12:])
    copy[14 + 1] ^= 0xB8  # DSCP
    copy[14 + 8] -= 1
    copy[14 + 10 : 14 + 12] = b"\xde\xad"
    copy += b"\0" * 8
    batch = batch_of([(ts, linktype, data), (ts + 50_000, linktype, bytes(copy))])
    Dedup().filter(batch)
    assert batch.linktypes == [1, DUPLICATE]
    # one byte more of the packet itself, or another IPv4 ID: another packet
    for at in (14 + 4, 14 + 12, len(data) - 1):
        other = bytearray(copy)
        other[at] ^= 1
        batch = batch_of([(ts, linktype, data), (ts + 50_000, linktype, bytes(other))])
        Dedup().filter(batch)
        assert batch.linktypes == [1, 1], at


@needs_wireshark_tools
def test_a_retransmission_outside_the_window_is_kept(tmp_path: Path) -> None:
    # a data segment sent again, byte for byte, 200 ms later (what an RTO resends when
    # the stack reuses the IP ID and carries no timestamps), two frames after the first
    name = "openssl_tls12_h2.pcap"
    with open_capture(CAPTURES / name) as source:
        packets = list(source.packets())
    at = next(i for i, p in enumerate(packets) if len(p[2]) > 200)
    ts, linktype, data = packets[at]
    later = 200_000_000
    resent = [
        *packets[: at + 3],
        (packets[at + 2][0] + later, linktype, data),
        *((t, lt, d) for t, lt, d in packets[at + 3 :]),
    ]
    resent[at + 4 :] = [(t + later, lt, d) for t, lt, d in resent[at + 4 :]]
    assert resent[at + 3][0] - ts >= later
    batch = batch_of(resent)
    Dedup().filter(batch)
    assert DUPLICATE not in batch.linktypes
    # within a window that long, it would be one
    batch = batch_of(resent)
    Dedup(window_ns=1_000_000_000).filter(batch)
    assert batch.linktypes.count(DUPLICATE) == 1
    # editcap -d looks at frames only, not time: it removes the retransmission; editcap -w
    # with our time window does not
    path = tmp_path / "resent.pcap"
    write_pcap(path, resent)
    assert editcap_skipped(path, "-d") == 1
    assert editcap_skipped(path, "-w", "0.001") == 0


def write_pcap(path: Path, packets: list[tuple[int, int, bytes]]) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, packets[0][1]))
        for ts, _linktype, data in packets:
            sec, nsec = divmod(ts, 1_000_000_000)
            f.write(struct.pack("<IIII", sec, nsec, len(data), len(data)) + data)


def same_packet(a: bytes, b: bytes) -> bool:
    """The reference for "the same packet", written apart from frame_key (whole packets,
    not the key's first 64 bytes after the IP header): the IP packets of two Ethernet
    frames (tags skipped) are equal up to their length with TOS/TTL/checksum (IPv4) or
    traffic class and hop limit (IPv6) zeroed."""

    def ip_of(frame: bytes) -> bytes:
        at = 12
        while frame[at : at + 2] in (b"\x81\x00", b"\x88\xa8", b"\x91\x00"):
            at += 4
        packet = bytearray(frame[at + 2 :])
        if packet[0] >> 4 == 4:
            packet = packet[: int.from_bytes(packet[2:4], "big")]
            packet[1] = packet[8] = packet[10] = packet[11] = 0
        else:
            packet = packet[: 40 + int.from_bytes(packet[4:6], "big")]
            packet[0] &= 0xF0
            packet[1] &= 0x0F
            packet[7] = 0
        return bytes(packet)

    return ip_of(a) == ip_of(b)


@needs_wireshark_tools
@pytest.mark.shared
@pytest.mark.skipif(not CORPUS_PCAPS, reason=f"{CORPUS / 'pcaps'} is absent")
def test_the_corpus_against_editcap() -> None:
    """On every corpus capture editcap can read: the frames we mark that repeat an earlier
    frame byte for byte within 1 ms are exactly as many as ``editcap -w 0.001`` removes;
    each other one is the same IP packet as its twin, seen elsewhere (a routed copy:
    nDPI__ftp-start-tls.pcap, 16 frames whose TTL and checksum differ; another MAC address:
    92 in mercury__dns_packet.capture2.pcap) or, in ipfixprobe__tls.pcap (whose second half
    repeats the first with the same timestamps: time goes back), a byte-identical frame 83
    frames back that editcap does not reach, as it looks back only while the time stays
    within its window (the default 64-frame window does not either). ``editcap -d`` differs where a frame repeats
    byte for byte a second later: nDPI__tor.pcap, 122 such repeats ~2 s apart
    (retransmissions), which it removes and we keep."""
    assert EDITCAP is not None
    routed = {}
    for path in CORPUS_PCAPS:
        with open_capture(path) as source:
            packets = list(source.packets())
        batch = batch_of(packets)
        Dedup(MAX_WINDOW_PACKETS, 1_000_000).filter(batch)
        if DUPLICATE not in batch.linktypes:
            # (a byte-identical repeat has our key too: editcap -w would remove none)
            continue
        done = subprocess.run([EDITCAP, "-w", "0.001", str(path), "/dev/null"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        found = re.search(r"(\d+) packets? skipped", done.stdout + done.stderr)
        if done.returncode != 0 or not found:  # a file editcap cannot write again (DSBs)
            continue
        last: dict[tuple[int, bytes], int] = {}  # key -> the latest frame with it
        identical = others = 0
        for i, (ts, lt, data) in enumerate(packets):
            key = frame_key(lt, batch.buf, batch.starts[i], batch.lengths[i])
            twin = last.get(key)
            last[key] = i
            if batch.linktypes[i] != DUPLICATE:
                continue
            assert twin is not None
            j = i - 1
            while j >= 0 and ts - packets[j][0] <= 1_000_000 and packets[j][2] != data:
                j -= 1
            if j >= 0 and ts - packets[j][0] <= 1_000_000:
                identical += 1
                continue
            others += 1
            if lt == 1:
                assert same_packet(packets[twin][2], data), (path.name, i + 1, twin + 1)
        assert identical == int(found.group(1)), path.name
        if others:
            routed[path.name] = others
    assert routed.get("nDPI__ftp-start-tls.pcap") == 16
    assert routed.get("mercury__dns_packet.capture2.pcap") == 92
    tor = CORPUS / "pcaps" / "nDPI__tor.pcap"
    if tor.exists():
        assert editcap_skipped(tor, "-d") == 122
        assert marked(tor, Dedup()) == []


def test_bounded_and_checked() -> None:
    with pytest.raises(ValueError):
        Dedup(window_packets=1)
    with pytest.raises(ValueError):
        Dedup(window_ns=-1)
    # a window of 3: a frame repeated after two others is a duplicate, after three it is not
    a, b, c, d = (bytes([0] * 12) + bytes((0x88, 0xB5, i)) for i in range(4))
    for frames, expected in (([a, b, c, a], [1, 1, 1, DUPLICATE]), ([a, b, c, d, a], [1] * 5)):
        batch = batch_of((1000 * i, 1, f) for i, f in enumerate(frames))
        Dedup(window_packets=4).filter(batch)
        assert batch.linktypes == expected
    # the window goes on across batches; the dict holds at most the window's keys
    dedup = Dedup(window_packets=8)
    for i in range(100):
        frame = bytes(12) + b"\x88\xb5" + i.to_bytes(2, "big")
        batch = batch_of([(i, 1, frame), (i, 1, frame)])
        dedup.filter(batch)
        assert batch.linktypes == [1, DUPLICATE]
    assert dedup.duplicates == 100 and len(dedup._seen) <= 8
    # frames cut anywhere, of any link type: a key, never an exception
    with open_capture(CAPTURES / "openssl_aioquic_ipv6.pcap") as source:
        data = next(d for _t, _l, d in source.packets() if len(d) > 100)
    for linktype in (1, 101, 113, 276, 0, 147):
        for cut in range(len(data)):
            frame_key(linktype, data, 0, cut)



def test_a_tunnelled_packet_is_keyed_whole() -> None:
    """VXLAN (a real capture's frames): the inner headers lie past the 64 bytes after the
    outer IP header (an inner IPv6 header alone takes 40 of them: the inner TCP sequence
    number and checksum are past them), and the outer UDP checksum is 0 — a frame that
    differs from the one before only in its inner TCP checksum and last payload byte is
    another packet; the same frame again is a duplicate."""
    with open_capture(CAPTURES / "openssl_tls12_vxlan.pcap") as source:
        packets = list(source.packets())
    ts, linktype, data = max(packets, key=lambda p: len(p[2]))  # (a data segment)
    outer_udp = 14 + 20
    assert data[outer_udp + 2 : outer_udp + 4] == (4789).to_bytes(2, "big")
    inner_tcp = outer_udp + 8 + 8 + 14 + 20
    assert inner_tcp + 16 > outer_udp + KEY_TRANSPORT_BYTES  # (past what a key would hold)
    other = bytearray(data)
    other[inner_tcp + 16] ^= 1  # the inner TCP checksum
    other[-1] ^= 1  # and the payload's last byte
    batch = batch_of([(ts, linktype, data), (ts + 10_000, linktype, bytes(other))])
    Dedup().filter(batch)
    assert batch.linktypes == [linktype, linktype]
    batch = batch_of([(ts, linktype, data), (ts + 10_000, linktype, data)])
    Dedup().filter(batch)
    assert batch.linktypes == [linktype, DUPLICATE]
