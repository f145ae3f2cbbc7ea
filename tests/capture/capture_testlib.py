"""Helpers for the capture tests: where the real captures are, tshark's view of a file, and
transforms of real captures (byte order, timestamp resolution, block types) that tshark can
read too, so that every transformed file is still checked against tshark."""

from __future__ import annotations

import functools
import hashlib
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
REALCAP = SHARED / "realcap"
CORPUS = SHARED / "corpus" / "pcaps"

needs_shared = pytest.mark.skipif(not REALCAP.is_dir(), reason="../shared (real captures) absent")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not on PATH")


def tool(*args: str | Path) -> None:
    """Run a Wireshark command-line tool (editcap, mergecap), failing the test on error."""
    name = str(args[0])
    if shutil.which(name) is None:
        pytest.skip(f"{name} not on PATH")
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def tshark_prefetch(paths: list[Path]) -> None:
    """Run tshark on many files at once (a few at a time) to fill the cache."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(tshark_frames, paths))


@functools.cache
def tshark_frames(path: Path | str) -> list[tuple[int | None, int, str]]:
    """tshark's (ts_ns, caplen, md5 of the captured bytes) for each frame of ``path``
    (cached: the real captures are read only)."""
    out = subprocess.run(
        [
            "tshark",
            "-n",
            "-o",
            "frame.generate_md5_hash:TRUE",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.md5_hash",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in out.stdout.splitlines():
        ts, caplen, md5 = line.split("\t")
        # a frame without a timestamp (from a Simple Packet Block) has an empty field
        rows.append((int(Decimal(ts) * 1_000_000_000) if ts else None, int(caplen), md5))
    return rows


def ours(path: Path | str) -> list[tuple[int, int, str]]:
    """Our reader's (ts_ns, caplen, md5) for each packet, in the same shape as tshark's."""
    from alpnsniff.capture import open_capture

    with open_capture(path) as src:
        return [(ts, len(d), hashlib.md5(d).hexdigest()) for ts, _lt, d in src.packets()]


# ---- pcap transforms ----


def pcap_records(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(sec, frac, orig_len, captured bytes) of each record of a little-endian pcap."""
    assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    recs = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, orig = struct.unpack_from("<IIII", data, pos)
        recs.append((sec, frac, orig, data[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return recs


def pcap_to_big_endian(data: bytes) -> bytes:
    """The same little-endian pcap with its file and record headers in big-endian order."""
    magic = data[:4][::-1]
    fields = struct.unpack_from("<HHiIII", data, 4)
    out = [magic, struct.pack(">HHiIII", *fields)]
    for sec, frac, orig, pkt in pcap_records(data):
        out.append(struct.pack(">IIII", sec, frac, len(pkt), orig) + pkt)
    return b"".join(out)


# ---- pcapng transforms ----


def pcapng_blocks(data: bytes) -> list[tuple[str, int, bytes]]:
    """(byte order, block type, body) of each block of a pcapng file, any byte order."""
    blocks = []
    pos = 0
    order = "<"
    while pos + 12 <= len(data):
        (btype,) = struct.unpack_from("<I", data, pos)
        if btype == 0x0A0D0D0A:
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        (blen,) = struct.unpack_from(order + "I", data, pos + 4)
        (btype,) = struct.unpack_from(order + "I", data, pos)
        blocks.append((order, btype, data[pos + 8 : pos + blen - 4]))
        pos += blen
    return blocks


def block(order: str, btype: int, body: bytes) -> bytes:
    """One pcapng block: body padded to 4 bytes, lengths at both ends."""
    body += b"\0" * (-len(body) % 4)
    blen = len(body) + 12
    return struct.pack(order + "II", btype, blen) + body + struct.pack(order + "I", blen)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb_options(order: str, body: bytes) -> dict[int, bytes]:
    opts = {}
    pos = 8
    while pos + 4 <= len(body):
        code, olen = struct.unpack_from(order + "HH", body, pos)
        if code == 0:
            break
        opts[code] = body[pos + 4 : pos + 4 + olen]
        pos += 4 + olen + (-olen % 4)
    return opts


def units(tsresol: int) -> int:
    return 1 << (tsresol & 0x7F) if tsresol & 0x80 else int(10**tsresol)


def rewrite_pcapng(
    data: bytes,
    order: str = "<",
    tsresol: int | None = None,
    tsoffset: int | None = None,
    packet_block: int = 6,
) -> bytes:
    """Rewrite a real pcapng: blocks in ``order``, every interface given ``tsresol`` (and
    ``tsoffset`` seconds) with its packets' timestamps re-expressed in it (floored), and the
    packets written as EPBs (6), obsolete Packet Blocks (2) or Simple Packet Blocks (3).
    Options other than the timestamp ones are dropped, and blocks other than SHB, IDB,
    packets and DSBs too; tshark reads the result like any file."""
    out = []
    in_units: list[int] = []
    out_units: list[tuple[int, int]] = []
    for border, btype, body in pcapng_blocks(data):
        if btype == 0x0A0D0D0A:
            out.append(shb(order))
            in_units, out_units = [], []
        elif btype == 1:
            linktype, snaplen = struct.unpack_from(border + "H2xI", body, 0)
            opts = idb_options(border, body)
            in_units.append(units(opts[9][0]) if 9 in opts else 10**6)
            res = tsresol if tsresol is not None else (opts[9][0] if 9 in opts else 6)
            off = tsoffset or 0
            out_units.append((units(res), off))
            options = option(order, 9, bytes([res]))
            if tsoffset is not None:
                options += option(order, 14, struct.pack(order + "q", tsoffset))
            options += option(order, 0, b"")
            out.append(block(order, 1, struct.pack(order + "H2xI", linktype, snaplen) + options))
        elif btype == 6:
            ifid, tsh, tsl, caplen, orig = struct.unpack_from(border + "IIIII", body, 0)
            pkt = body[20 : 20 + caplen]
            ns = ((tsh << 32) | tsl) * 10**9 // in_units[ifid]
            u, off = out_units[ifid]
            ts = (ns - off * 10**9) * u // 10**9
            if packet_block == 6:
                fixed = struct.pack(order + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, caplen, orig)
            elif packet_block == 2:
                fixed = struct.pack(
                    order + "HHIIII", ifid, 0, ts >> 32, ts & 0xFFFFFFFF, caplen, orig
                )
            else:
                fixed = struct.pack(order + "I", orig)
            out.append(block(order, packet_block, fixed + pkt))
        elif btype == 0x0A:
            stype, slen = struct.unpack_from(border + "II", body, 0)
            out.append(block(order, 0x0A, struct.pack(order + "II", stype, slen) + body[8:]))
    return b"".join(out)
