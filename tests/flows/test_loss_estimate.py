"""The upstream loss estimate (alpnsniff/flows/loss.py), on real captures: none lost, one
data segment taken out, one direction only, and the two directions on two interfaces."""

from __future__ import annotations

from pathlib import Path

from alpnsniff.net.decode import PacketDecoder
from alpnsniff.pipeline import analyze_file
from alpnsniff.sinks.summary import Summary
from tests.flows.one_sided import read_frames, write_one_side, write_pcapng

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
CAPTURE = CAPTURES / "openssl_tls12_h2.pcap"  # openssl s_client/s_server, h2, TLS 1.2


def _segments(frames: list[tuple[int, int, bytes]]) -> list[object]:
    decoder = PacketDecoder()
    return [decoder.decode(link, data, ts) for ts, link, data in frames]


def test_a_capture_without_loss_has_acks_and_no_gap() -> None:
    stats = analyze_file(CAPTURE).stats
    assert stats["loss_acks"] > 0
    assert stats["loss_gaps"] == 0 and stats["loss_gap_bytes"] == 0
    assert stats["loss_acks_if0"] == stats["loss_acks"]


def test_a_removed_client_hello_is_one_gap_of_its_bytes(tmp_path: Path) -> None:
    frames = read_frames(CAPTURE)
    segs = _segments(frames)
    # the first data segment the client sent: its ClientHello
    at = next(i for i, s in enumerate(segs) if not isinstance(s, str) and s.payload)
    removed = segs[at]
    assert not isinstance(removed, str)
    cut = tmp_path / "lost.pcapng"
    write_pcapng(cut, frames[:at] + frames[at + 1 :])
    result = analyze_file(cut)
    stats = result.stats
    assert stats["loss_gaps"] == 1
    assert stats["loss_gap_bytes"] == len(removed.payload)
    assert stats["loss_gaps_if0"] == 1
    # the summary says it as Zeek does
    summary = Summary()
    for h in result.handshakes:
        summary.add(h)
    line = next(x for x in summary.lines(stats, captures=1) if "upstream loss" in x)
    acks = stats["loss_acks"]
    assert line.startswith(f"estimated upstream loss: {100 / acks:.2f}% (1 gap in {acks} acks")


def test_a_one_sided_copy_counts_no_ack(tmp_path: Path) -> None:
    records = analyze_file(CAPTURE).handshakes
    for side in ("server", "client"):
        copy = tmp_path / f"{side}.pcapng"
        write_one_side(CAPTURE, copy, records, side)
        stats = analyze_file(copy).stats
        assert stats["loss_acks"] == 0 and stats["loss_gaps"] == 0, side


def _two_interfaces(tmp_path: Path, drop_client_hello: bool) -> Path:
    """The capture's packets split by direction over two interfaces: the client's on 0,
    the server's on 1 (optionally without the ClientHello)."""
    frames = read_frames(CAPTURE)
    records = analyze_file(CAPTURE).handshakes
    server = {(records[0].server_ip, records[0].server_port)}
    import socket

    keep: list[tuple[int, int, bytes]] = []
    ifaces: list[int] = []
    dropped = False
    for frame, seg in zip(frames, _segments(frames), strict=True):
        assert not isinstance(seg, str)
        src = (socket.inet_ntop(socket.AF_INET, seg.src), seg.sport)
        from_server = src in server
        if drop_client_hello and not from_server and seg.payload and not dropped:
            dropped = True
            continue
        keep.append(frame)
        ifaces.append(1 if from_server else 0)
    out = tmp_path / "two.pcapng"
    write_pcapng(out, keep, ifaces)
    return out


def test_two_interfaces_without_loss(tmp_path: Path) -> None:
    stats = analyze_file(_two_interfaces(tmp_path, False)).stats
    assert stats["loss_acks"] > 0 and stats["loss_gaps"] == 0
    # a file's summary says nothing of a loss it did not find; a live run's says 0.00%
    assert not any("upstream loss" in x for x in Summary().lines(stats, captures=1))
    (line,) = [x for x in Summary().lines(stats, captures=1, loss_always=True) if "loss" in x]
    assert line.startswith("estimated upstream loss: 0.00% (0 gaps in ")


def test_a_gap_is_booked_to_the_interface_that_lost_it(tmp_path: Path) -> None:
    stats = analyze_file(_two_interfaces(tmp_path, True)).stats
    # the ClientHello came in (or should have) on interface 0, the client's direction
    assert stats["loss_gaps"] == 1
    assert stats["loss_gaps_if0"] == 1 and stats["loss_gaps_if1"] == 0
    # (the client's direction is acknowledged by the server; the client's own acks of the
    # server's flight come after it, which ends the server-side-only flow)
    assert stats["loss_acks_if0"] > 0
    lines = Summary().lines(
        stats, captures=1, interfaces=["client-span", "server-span"], loss_always=True
    )
    assert any(x.startswith("  client-span: ") for x in lines)


def test_frames_cut_by_the_snap_length_are_not_loss(tmp_path: Path) -> None:
    """editcap -s 96: every data segment is cut by the capture, not lost upstream; the
    acknowledgements of their bytes are not gaps (the cut is counted on its own:
    decode_payload-truncated)."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("editcap") is None:
        pytest.skip("editcap (Wireshark) is not installed")
    cut = tmp_path / "cut.pcap"
    subprocess.run(["editcap", "-s", "96", str(CAPTURE), str(cut)], check=True)
    stats = analyze_file(cut).stats
    assert stats["decode_payload-truncated"] > 0
    assert stats["loss_gaps"] == 0
