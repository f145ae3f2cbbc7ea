"""Files that are not captures, or are damaged: one clear line (CaptureError) when nothing
can be read, otherwise the packets before the damage and a counted, described stop."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from _pytest.monkeypatch import MonkeyPatch
from capture_testlib import (
    REALCAP,
    block,
    needs_shared,
    needs_tshark,
    ours,
    pcapng_blocks,
    shb,
    tshark_frames,
)

from alpnsniff.capture import MAX_CAPLEN, CaptureStats, open_capture
from alpnsniff.capture import pcapng as pcapng_module
from alpnsniff.errors import CaptureError

REAL = REALCAP / "chromium_nginx_h2_veth1500.pcap"
REAL_NG = REALCAP / "openssl_tls13_alpn_h2_dsb.pcapng"
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(path: Path) -> tuple[list[tuple[int, int, bytes]], CaptureStats]:
    with open_capture(path) as src:
        return list(src.packets()), src.stats


def epb_file(*packets: tuple[int, bytes], ifid: int = 0) -> bytes:
    """SHB, one Ethernet IDB in microseconds, and EPBs (µs timestamp, data)."""
    out = [shb("<"), block("<", 1, struct.pack("<H2xI", 1, 0))]
    for ts, data in packets:
        fixed = struct.pack("<IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        out.append(block("<", 6, fixed + data))
    return b"".join(out)


# ---- nothing readable: CaptureError, one line ----


def test_not_a_capture(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", b"# notes about the capture\n")
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert str(err.value) == f"{path}: not a pcap or pcapng file (starts with 23 20 6e 6f)"


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "x.pcap", b"")
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert str(err.value) == f"{path}: empty file"


def test_no_such_file(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert str(err.value) == f"{path}: no such file"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as err:
        open_capture(tmp_path)
    assert str(err.value) == f"{tmp_path}: is a directory"


def test_pcap_header_cut_short(tmp_path: Path) -> None:
    path = write(tmp_path, "x.pcap", PCAP_HEADER[:10])
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert str(err.value) == f"{path}: pcap file header cut short (10 of 24 bytes)"


@needs_shared
def test_pcapng_bad_byte_order_magic(tmp_path: Path) -> None:
    data = bytearray(REAL_NG.read_bytes())
    data[8:12] = b"\x01\x02\x03\x04"
    path = write(tmp_path, "x.pcapng", bytes(data))
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert str(err.value) == (
        f"{path}: not a pcapng file (bad byte-order magic 01 02 03 04 in the section header)"
    )


@needs_shared
def test_pcapng_unsupported_version(tmp_path: Path) -> None:
    data = bytearray(REAL_NG.read_bytes())
    data[12:14] = struct.pack("<H", 2)
    path = write(tmp_path, "x.pcapng", bytes(data))
    with pytest.raises(CaptureError, match=r"pcapng version 2\.0 is not supported$"):
        open_capture(path)


def test_compressed_text(tmp_path: Path) -> None:
    path = write(tmp_path, "x.pcap.gz", gzip.compress(b"hello, not a capture"))
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert str(err.value) == (
        f"{path}: gzip-compressed, but not a pcap or pcapng file (starts with 68 65 6c 6c)"
    )


def test_compressed_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "x.gz", gzip.compress(b""))
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert str(err.value) == f"{path}: empty file once gzip-decompressed"


def test_bad_gzip_data(tmp_path: Path) -> None:
    path = write(tmp_path, "x.gz", b"\x1f\x8b" + b"\xff" * 40)
    with pytest.raises(CaptureError) as err:
        open_capture(path)
    assert str(err.value).startswith(f"{path}: bad gzip data (")
    assert "\n" not in str(err.value)


# ---- readable up to the damage: packets, then a counted stop ----


@needs_shared
def test_header_only(tmp_path: Path) -> None:
    packets, stats = read(write(tmp_path, "x.pcap", REAL.read_bytes()[:24]))
    assert packets == []
    assert stats.error is None
    assert stats.interfaces == [(1, 1_000_000)]


def test_pcapng_section_and_interface_only(tmp_path: Path) -> None:
    packets, stats = read(write(tmp_path, "x.pcapng", epb_file()))
    assert packets == []
    assert stats.error is None
    assert stats.interfaces == [(1, 1_000_000)]


@needs_shared
@needs_tshark
@pytest.mark.parametrize("keep", [24 + 10, 3000, 5000, -1])
def test_truncated_last_record(tmp_path: Path, keep: int) -> None:
    """A real capture cut short (in a record header, in packet data, one byte short of
    the end): the whole records before the cut, like tshark; the cut one counted."""
    data = REAL.read_bytes()
    path = write(tmp_path, "cut.pcap", data[:keep])
    packets, stats = read(path)
    expected = tshark_frames(path)
    assert ours(path) == expected
    assert len(packets) == len(expected) < 37
    assert stats.truncated_records == 1
    assert stats.corrupt_records == 0
    assert "cut short by the end of the file" in str(stats.error)


@needs_shared
@needs_tshark
def test_truncated_pcapng(tmp_path: Path) -> None:
    data = REAL_NG.read_bytes()
    path = write(tmp_path, "cut.pcapng", data[: len(data) - 50])
    packets, stats = read(path)
    assert ours(path) == tshark_frames(path)
    assert len(packets) == len(tshark_frames(REAL_NG)) - 1
    assert stats.truncated_records == 1


@needs_shared
def test_truncated_gzip_stream(tmp_path: Path) -> None:
    """A .gz cut in half: the packets decompressed so far, then a described stop."""
    whole = gzip.compress(REAL.read_bytes())
    path = write(tmp_path, "cut.pcap.gz", whole[: len(whole) // 2])
    packets, stats = read(path)
    assert 0 < len(packets) < 37
    assert packets == list(open_capture(REAL).packets())[: len(packets)]
    assert str(stats.error).startswith(f"{path}: read error, stopped there: ")


@needs_shared
def test_hostile_caplen(tmp_path: Path) -> None:
    """A record header claiming 4 GiB: stop there, counted, nothing allocated for it."""
    first = REAL.read_bytes()[: 24 + 16 + 74]  # header and the first real record
    bad = struct.pack("<IIII", 1, 2, 0xFFFFFFFF, 0xFFFFFFFF) + b"x" * 100
    packets, stats = read(write(tmp_path, "x.pcap", first + bad))
    assert len(packets) == 1
    assert stats.corrupt_records == 1
    assert stats.error == (
        f"{tmp_path / 'x.pcap'}: record 2 at offset 114: captured length 4294967295 > 262144,"
        " the record header is corrupt; stopped there"
    )


def test_caplen_limit_is_inclusive(tmp_path: Path) -> None:
    big = bytes(range(256)) * (MAX_CAPLEN // 256)
    rec = struct.pack("<IIII", 10, 20, MAX_CAPLEN, MAX_CAPLEN) + big
    over = struct.pack("<IIII", 11, 0, MAX_CAPLEN + 1, MAX_CAPLEN + 1) + big + b"!"
    packets, stats = read(write(tmp_path, "x.pcap", PCAP_HEADER + rec + over))
    assert packets == [(10_000_020_000, 1, big)]
    assert stats.corrupt_records == 1


def _second_epb_offset(data: bytes) -> int:
    pos = 0
    seen = 0
    for _order, btype, body in pcapng_blocks(data):
        if btype == 6:
            seen += 1
            if seen == 2:
                return pos
        pos += len(body) + 12
    raise AssertionError("no second EPB")


@needs_shared
@needs_tshark
@pytest.mark.parametrize(
    ("label", "at", "value", "why"),
    [
        ("leading length not a multiple of 4", 4, 0x7E, "bad block length 126"),
        ("leading length below 12", 4, 8, "bad block length 8"),
        ("trailing length differs", -4, 0x400, "trailing block length 1024 != "),
        ("length past MAX_BLOCK_LEN", 4, 0x7FFFFFFC, "block length 2147483644 > 16777216"),
        ("interface not described", 8, 5, "interface 5 not described (have 1)"),
        ("caplen past the block", 20, 5000, "captured length 5000 does not fit"),
    ],
)
def test_pcapng_bad_block(tmp_path: Path, label: str, at: int, value: int, why: str) -> None:
    """A real pcapng with its second packet block damaged: the first packet, then a stop
    counted as corrupt, as tshark stops (it calls the file damaged)."""
    data = bytearray(REAL_NG.read_bytes())
    pos = _second_epb_offset(bytes(data))
    (blen,) = struct.unpack_from("<I", data, pos + 4)
    where = pos + at if at >= 0 else pos + blen + at
    struct.pack_into("<I", data, where, value)
    path = write(tmp_path, "bad.pcapng", bytes(data))
    packets, stats = read(path)
    assert len(packets) == 1, label
    assert len(tshark_frames(path)) == 1, label
    assert stats.corrupt_records == 1
    assert f"block at offset {pos} (type 0x00000006): {why}" in str(stats.error)


def test_epb_before_any_interface(tmp_path: Path) -> None:
    data = shb("<") + block("<", 6, struct.pack("<IIIII", 0, 0, 1, 4, 4) + b"abcd")
    packets, stats = read(write(tmp_path, "x.pcapng", data))
    assert packets == []
    assert "interface 0 not described (have 0)" in str(stats.error)


def test_unknown_and_custom_blocks_are_skipped_and_counted(tmp_path: Path) -> None:
    base = epb_file((1_000_000, b"first"))
    extra = block("<", 0x0BAD, b"\0\0\0\x01custom") + block("<", 0x1234, b"")
    data = base + extra + epb_file((2_000_000, b"second"))[len(epb_file()) :]
    packets, stats = read(write(tmp_path, "x.pcapng", data))
    assert packets == [(1_000_000_000, 1, b"first"), (2_000_000_000, 1, b"second")]
    assert stats.skipped_blocks == 2


def test_secrets_beyond_the_cap_are_counted(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setattr(pcapng_module, "MAX_SECRETS_BYTES", 10)
    dsb = [block("<", 0x0A, struct.pack("<II", 0x544C534B, 6) + s) for s in (b"keys-1", b"keys-2")]
    data = epb_file() + b"".join(dsb) + epb_file((5, b"pkt"))[len(epb_file()) :]
    with open_capture(write(tmp_path, "x.pcapng", data)) as src:
        assert len(list(src.packets())) == 1
    assert src.secrets == [(0x544C534B, b"keys-1")]
    assert src.stats.skipped_blocks == 1


def test_interface_cap(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setattr(pcapng_module, "MAX_INTERFACES", 3)
    idb = block("<", 1, struct.pack("<H2xI", 1, 0))
    packets, stats = read(write(tmp_path, "x.pcapng", shb("<") + idb * 5))
    assert packets == []
    assert len(stats.interfaces) == 3
    assert "more than 3 interfaces" in str(stats.error)


def test_interface_option_past_the_block(tmp_path: Path) -> None:
    idb = block("<", 1, struct.pack("<H2xI", 1, 0) + struct.pack("<HH", 9, 200) + b"\x09")
    packets, stats = read(write(tmp_path, "x.pcapng", shb("<") + idb))
    assert packets == []
    assert "interface option 9 of 200 bytes runs past the block" in str(stats.error)


@pytest.mark.parametrize("blen", [16, 20, 24])
def test_short_section_header_at_the_end(tmp_path: Path, blen: int) -> None:
    """A second SHB too short to hold its fixed fields, as the file's last bytes."""
    short = struct.pack("<II", 0x0A0D0D0A, blen) + b"\x4d\x3c\x2b\x1a" + bytes(blen - 16)
    short += struct.pack("<I", blen)
    packets, stats = read(write(tmp_path, "x.pcapng", epb_file((7, b"pkt")) + short))
    assert packets == [(7000, 1, b"pkt")]
    assert stats.corrupt_records == 1
    assert f"section header of length {blen}" in str(stats.error)


def test_second_section_of_another_version(tmp_path: Path) -> None:
    second = bytearray(shb("<"))
    second[12:14] = struct.pack("<H", 3)
    packets, stats = read(write(tmp_path, "x.pcapng", epb_file((7, b"pkt")) + bytes(second)))
    assert packets == [(7000, 1, b"pkt")]
    assert "pcapng version 3.0 is not supported" in str(stats.error)
