"""The floor for any Python pcap reader: slice every packet out of the file, nothing more.

    python bench/floor_loop.py FILE.pcap

Reads the file in 1 MiB chunks, unpacks each 16-byte record header and slices the packet out
(the least a reader that hands packets on must do), and prints the packet and byte counts. run_bench.py
times it beside alpnsniff: alpnsniff's target is to stay within 3x of it.
"""

from __future__ import annotations

import struct
import sys

CHUNK = 1 << 20


def count_packets(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
        order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        unpack_from = struct.Struct(order + "IIII").unpack_from
        buf = b""
        packets = 0
        sliced = 0  # bytes sliced out: printed, so that the slicing cannot be skipped
        while True:
            more = f.read(CHUNK)
            if not more:
                return packets, sliced
            buf = buf + more
            pos = 0
            end = len(buf)
            while pos + 16 <= end:
                _sec, _frac, caplen, _orig = unpack_from(buf, pos)
                nxt = pos + 16 + caplen
                if nxt > end:
                    break
                sliced += len(buf[pos + 16 : nxt])
                packets += 1
                pos = nxt
            buf = buf[pos:]


if __name__ == "__main__":
    packets, sliced = count_packets(sys.argv[1])
    print(f"{packets} packets, {sliced} bytes")
