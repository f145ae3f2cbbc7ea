"""Frames cut short anywhere (a span port with a small snap length): a counted skip, never a crash.

Every capture of ``captures/``, ``../shared/realcap`` and ``../shared/corpus/pcaps``: each of
its first frames is cut at every length from 0 to 120 bytes and all the cuts go, in order, as
one packet stream through one :class:`Dissector`. Nothing may escape, nothing may reach the
pipeline's safety net (``internal_error``), every frame is seen, and the cuts too short for
their headers come out as ``skipped_<reason>`` counts.

What each cut may become is checked on the decoder alone (a fresh :class:`PacketDecoder` per
cut, so no fragment state links them): a reason string while the headers are cut, then the
frame's own segment with a prefix of its payload (a cut TCP segment with no payload left is
an empty one), or, for a UDP tunnel cut inside its inner packet, the outer datagram.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alpnsniff.capture import open_capture
from alpnsniff.errors import CaptureError
from alpnsniff.net.decode import PacketDecoder
from alpnsniff.pipeline import Dissector, dissect
from tests.conftest import CAPTURES, CORPUS, REALCAP, SHARED, shared_file

FRAMES_PER_CAPTURE = 40
MAX_CUT = 120
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".xz", ".bz2", ".zst")
# (id prefix, folder, searched recursively, under ../shared)
SOURCES = (
    ("captures", CAPTURES, False, False),
    ("realcap", REALCAP, True, True),
    ("corpus", CORPUS / "pcaps", True, True),
)
# Where the IP header starts at the earliest, per link type (Ethernet, Linux SLL, SLL2; any
# other link type: 0). A cut shorter than this + 20 bytes cannot hold an IP header.
MIN_IP_OFFSET = {1: 14, 113: 16, 276: 20}
# The hot loop's counters for packets it drops without the full decoder.
FAST_PATH_COUNTERS = ("packets_fast_skipped", "tcp_empty_skipped", "udp_skipped")

Frame = tuple[int, int, bytes]


def capture_files(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES))


def capture_params() -> list[Any]:
    """One param per capture file; an absent or empty folder gives one param saying so."""
    out: list[Any] = []
    for label, folder, recursive, shared in SOURCES:
        marks = (pytest.mark.shared,) if shared else ()
        files = capture_files(folder, recursive) if folder.is_dir() else []
        if not files:
            state = "empty" if folder.is_dir() else "absent"
            out.append(pytest.param(folder, id=f"{label}-{state}", marks=marks))
        out.extend(
            pytest.param(p, id=f"{label}/{p.relative_to(folder).as_posix()}", marks=marks)
            for p in files
        )
    return out


def first_frames(path: Path) -> list[Frame]:
    """The first FRAMES_PER_CAPTURE frames, or skip (the folder is absent, not a capture)."""
    if not path.is_file():  # the placeholder of an absent or empty folder
        if path.is_relative_to(SHARED) and not path.exists():
            shared_file(*path.relative_to(SHARED).parts)  # skips: ../shared/... is absent
        assert path.is_relative_to(SHARED), f"{path}: no capture files in the repository"
        pytest.skip(f"no capture files in {path}")
    frames: list[Frame] = []
    try:
        with open_capture(path) as source:
            for frame in source.packets():
                frames.append(frame)
                if len(frames) == FRAMES_PER_CAPTURE:
                    break
    except CaptureError as err:
        if not frames:
            pytest.skip(f"not a readable capture: {err}")
        # a file damaged after some frames: the frames read so far are still tested
    return frames


def cuts(frames: list[Frame]) -> Iterator[Frame]:
    """Every prefix of every frame, 0 to MAX_CUT bytes (the whole frame if it is no longer)."""
    for ts_ns, linktype, data in frames:
        for n in range(min(MAX_CUT, len(data)) + 1):
            yield ts_ns, linktype, data[:n]


def flow(seg: Any) -> tuple[Any, ...]:
    return (seg.proto, seg.ip_version, seg.src, seg.dst, seg.sport, seg.dport)


def check_cuts_alone(ts_ns: int, linktype: int, data: bytes) -> tuple[list[Frame], list[Frame]]:
    """Decode each cut of one frame on its own and check what it became.

    Returns the cuts too short for an IP header (the dissector must count each as a
    ``skipped_*``), and every cut that gave a reason string where the whole frame decodes
    (each a ``skipped_*`` or a fast-path drop: the hot loop may drop a cut TCP header of a
    known connection without decoding it).
    """
    ip_at = MIN_IP_OFFSET.get(linktype, 0)
    full = PacketDecoder().decode(linktype, data, ts_ns)
    whole = not isinstance(full, str)  # the frame decodes alone: not a fragment, no state
    no_ip: list[Frame] = []
    reasons: list[Frame] = []
    headers_end = -1  # the first cut holding all of the frame's own headers
    for n in range(min(MAX_CUT, len(data)) + 1):
        cut = data[:n]
        got = PacketDecoder().decode(linktype, cut, ts_ns)
        where = f"frame of {len(data)} bytes (linktype {linktype}) cut at {n}: {got!r}"
        if isinstance(got, str):
            assert got, where
            if n < ip_at + 20:
                no_ip.append((ts_ns, linktype, cut))
            if whole:
                reasons.append((ts_ns, linktype, cut))
            # once the headers are whole, a longer cut keeps them
            assert headers_end < 0, f"{where}, but its headers were whole at {headers_end}"
            continue
        # a segment needs an IP header and at least a UDP header
        assert n >= ip_at + 28, where
        if not whole:
            continue
        if flow(got) != flow(full):
            # a UDP tunnel cut inside its inner packet falls back to the outer datagram
            assert got.proto == 17 and got.truncated and headers_end < 0, where
            continue
        if headers_end < 0:
            headers_end = n
            ip_len = 20 if full.ip_version == 4 else 40
            l4_len = 20 if full.proto == 6 else 8
            assert n >= ip_at + ip_len + l4_len, where
        assert (got.seq, got.ack, got.flags) == (full.seq, full.ack, full.flags), where
        # a cut in the payload is a shorter payload (none left: an empty segment), marked cut
        assert got.payload == full.payload[: n - headers_end], where
        assert got.truncated or got.payload == full.payload, where
    return no_ip, reasons


def run(packets: list[Frame]) -> tuple[Dissector, int, int]:
    """Dissect ``packets``: the dissector, its ``skipped_*`` and its fast-path drop counts."""
    dissector = Dissector()
    records = list(dissect(packets, dissector))
    stats = dissector.stats
    assert stats["internal_error"] == 0, (dict(stats), dissector.errors[:3])
    assert dissector.frame == len(packets)
    assert all(1 <= r.frame <= len(packets) for r in records)
    skipped = sum(v for k, v in stats.items() if k.startswith("skipped_"))
    return dissector, skipped, sum(stats[k] for k in FAST_PATH_COUNTERS)


@pytest.mark.parametrize("path", capture_params())
def test_every_cut_of_the_first_frames_is_a_counted_skip(path: Path) -> None:
    frames = first_frames(path)
    no_ip: list[Frame] = []
    reasons: list[Frame] = []
    for frame in frames:
        a, b = check_cuts_alone(*frame)
        no_ip += a
        reasons += b

    # all the cuts as one stream, the flows of the earlier frames known when later ones come
    dissector, skipped, fast = run(list(cuts(frames)))
    # (frames that are not traffic at all, ARP say, add skips of their own: hence <=)
    assert len(no_ip) <= skipped, dict(dissector.stats)
    assert len(reasons) <= skipped + fast, dict(dissector.stats)

    # alone, exactly: each cut without an IP header is one skip; each cut that decodes to a
    # reason (of a frame that decodes whole) is one skip or one fast-path drop
    dissector, skipped, fast = run(no_ip)
    assert skipped == len(no_ip), dict(dissector.stats)
    dissector, skipped, fast = run(reasons)
    assert skipped + fast == len(reasons), dict(dissector.stats)


# --- the reported crash: a frame cut 7 to 9 bytes into its IPv4 header -----------------------


def ipv4_tcp_frames() -> list[Frame]:
    with open_capture(CAPTURES / "openssl_tls12_h2.pcap") as source:
        frames = list(source.packets())
    return [
        (ts, lt, data)
        for ts, lt, data in frames
        if lt == 1 and data[12:14] == b"\x08\x00" and data[14] == 0x45 and data[23] == 6
    ]


@pytest.mark.parametrize("after", [False, True], ids=["alone", "after-the-capture"])
@pytest.mark.parametrize("flags", [b"\x00\x00", b"\x40\x00"], ids=["no-flags", "df"])
@pytest.mark.parametrize("ip_bytes", [7, 8, 9])
def test_frame_cut_inside_the_ipv4_header_is_a_counted_skip(
    ip_bytes: int, flags: bytes, after: bool
) -> None:
    frames = ipv4_tcp_frames()
    assert frames, "openssl_tls12_h2.pcap holds IPv4 TCP frames over Ethernet"
    ts_ns, linktype, data = frames[-1]
    cut = (data[:20] + flags + data[22:])[: 14 + ip_bytes]
    # after the capture, the connection's flow key is known to the hot loop
    packets = [*frames, (ts_ns + 1, linktype, cut)] if after else [(ts_ns, linktype, cut)]
    dissector = Dissector()
    list(dissect(packets, dissector))
    before = Dissector()
    list(dissect(packets[:-1], before))
    stats = dissector.stats
    assert stats["internal_error"] == 0, (dict(stats), dissector.errors[:3])
    assert dissector.frame == len(packets)
    new = {k: v - before.stats[k] for k, v in stats.items() if v != before.stats[k]}
    assert [k for k in new if k.startswith("skipped_")] == [k for k in new], new
    assert sum(new.values()) == 1, new
