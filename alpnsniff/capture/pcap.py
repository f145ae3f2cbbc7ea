"""The classic pcap format: file header and the record loop.

Byte order and timestamp unit come from the magic number, in either byte order:

=========  =================  ======================================================
magic      record header      timestamp fraction
=========  =================  ======================================================
a1b2c3d4   16 bytes           microseconds
a1b23c4d   16 bytes           nanoseconds
a1b2cd34   24 bytes           microseconds (Kuznetzov's patched libpcap, "modpcap")
=========  =================  ======================================================

A few old patched libpcaps wrote longer record headers without a magic of their own
(RedHat 6.1: 24 bytes, Nokia: 20, SuSE 6.3: 28 with the modified magic). Like Wireshark, when
the first records do not make sense with the usual header length, the other lengths are
tried on them, and the first that makes them all plausible is used. The linktype is the low 16 bits of the header's ``network`` field
(the upper bits carry the FCS length flags, which are ignored).
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from dataclasses import dataclass

from ..errors import CaptureError
from .batch import MAX_BATCH_PACKETS, PacketBatch, fresh_batch
from .stats import MAX_CAPLEN, CaptureStats, Refill

FILE_HEADER_LEN = 24

# magic as it appears in the file -> (struct byte order, ns per fraction unit, record header len)
PCAP_MAGICS: dict[bytes, tuple[str, int, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1, 16),
    b"\x34\xcd\xb2\xa1": ("<", 1000, 24),
    b"\xa1\xb2\xcd\x34": (">", 1000, 24),
}

# record header lengths to try, in order, for the standard and the modified magic
_STANDARD_HEADER_LENS = (16, 24, 20)
_MODIFIED_HEADER_LENS = (24, 28)
# how many of the first records must look right for a record header length to be chosen
_PROBE_RECORDS = 3

_NS_PER_S = 1_000_000_000


def _plausible(head: bytes, order: str, hlen: int, frac_limit: int) -> bool:
    """Do the first records in ``head`` look right with record headers of ``hlen`` bytes?"""
    unpack_from = struct.Struct(order + "IIII").unpack_from
    pos = FILE_HEADER_LEN
    for _ in range(_PROBE_RECORDS):
        if pos + hlen > len(head):
            return True
        _sec, frac, caplen, orig_len = unpack_from(head, pos)
        if caplen > MAX_CAPLEN or caplen > orig_len or frac >= frac_limit:
            return False
        pos += hlen + caplen
    return True


@dataclass(frozen=True, slots=True)
class PcapHeader:
    """What a pcap file header says."""

    byte_order: str  # "<" or ">"
    frac_ns: int  # nanoseconds per unit of the record's fraction field: 1000 or 1
    record_header_len: int  # 16; 24 for the modified format; 20, 24 or 28 for old variants
    version: tuple[int, int]
    snaplen: int
    linktype: int


def parse_pcap_header(name: str, head: bytes) -> PcapHeader:
    """Parse the 24-byte file header at the start of ``head`` (whose magic is a pcap one)."""
    order, frac_ns, rec_len = PCAP_MAGICS[head[:4]]
    if len(head) < FILE_HEADER_LEN:
        raise CaptureError(
            f"{name}: pcap file header cut short ({len(head)} of {FILE_HEADER_LEN} bytes)"
        )
    major, minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", head, 4)
    frac_limit = _NS_PER_S // frac_ns
    candidates = _STANDARD_HEADER_LENS if rec_len == 16 else _MODIFIED_HEADER_LENS
    for hlen in candidates:
        if _plausible(head, order, hlen, frac_limit):
            rec_len = hlen
            break
    return PcapHeader(
        byte_order=order,
        frac_ns=frac_ns,
        record_header_len=rec_len,
        version=(major, minor),
        snaplen=snaplen,
        linktype=network & 0xFFFF,
    )


def pcap_batches(
    more: Refill, buf: bytes, header: PcapHeader, stats: CaptureStats, name: str
) -> Generator[PacketBatch, None, None]:
    """Yield a :class:`PacketBatch` per chunk of the file: the records after the file header.

    ``buf`` holds the first bytes of the file (the header included); ``more`` gives the rest.
    This is the reading half of the hot loop, so it is written for what mypyc compiles well:
    the record header's fields are read byte by byte (native integer operations once
    compiled, where a ``struct`` call would build a tuple of three objects), nothing is
    sliced, and the counters are kept in locals and stored once a chunk.
    """
    hlen = header.record_header_len
    little = header.byte_order == "<"
    frac_ns = header.frac_ns
    linktype = header.linktype
    ns_per_s = _NS_PER_S
    max_caplen = MAX_CAPLEN
    # seconds -> nanoseconds once per second of capture, not once per packet
    last_sec = -1
    sec_ns = 0
    packets = stats.packets
    base = 0  # file offset of buf[0]
    pos = FILE_HEADER_LEN
    # stats.bytes is derived at each flush: record bytes consumed minus their headers
    flushed_pos = pos
    flushed_packets = packets
    try:
        while True:
            end = len(buf)
            last = end - hlen  # a record header fits at pos while pos <= last
            need = hlen
            batch, starts, lengths, stamps, linktypes = fresh_batch(buf)
            while pos <= last:
                if little:
                    sec = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16 | buf[pos + 3] << 24
                    frac = (
                        buf[pos + 4] | buf[pos + 5] << 8 | buf[pos + 6] << 16 | buf[pos + 7] << 24
                    )
                    caplen = (
                        buf[pos + 8] | buf[pos + 9] << 8 | buf[pos + 10] << 16 | buf[pos + 11] << 24
                    )
                else:
                    sec = buf[pos] << 24 | buf[pos + 1] << 16 | buf[pos + 2] << 8 | buf[pos + 3]
                    frac = (
                        buf[pos + 4] << 24 | buf[pos + 5] << 16 | buf[pos + 6] << 8 | buf[pos + 7]
                    )
                    caplen = (
                        buf[pos + 8] << 24 | buf[pos + 9] << 16 | buf[pos + 10] << 8 | buf[pos + 11]
                    )
                if caplen > max_caplen:
                    stats.corrupt_records += 1
                    stats.error = (
                        f"{name}: record {packets + 1} at offset {base + pos}: captured length"
                        f" {caplen} > {max_caplen}, the record header is corrupt; stopped there"
                    )
                    if starts:
                        yield batch
                    return
                start = pos + hlen
                nxt = start + caplen
                if nxt > end:
                    need = hlen + caplen
                    break
                packets += 1
                pos = nxt
                if sec != last_sec:
                    last_sec = sec
                    sec_ns = sec * ns_per_s
                starts.append(start)
                lengths.append(caplen)
                stamps.append(sec_ns + frac * frac_ns)
                linktypes.append(linktype)
                if len(starts) >= MAX_BATCH_PACKETS:
                    yield batch
                    batch, starts, lengths, stamps, linktypes = fresh_batch(buf)
            stats.bytes += pos - flushed_pos - hlen * (packets - flushed_packets)
            stats.packets = flushed_packets = packets
            flushed_pos = pos
            if starts:
                yield batch
            tail = buf[pos:]
            base += pos
            pos = flushed_pos = 0
            buf = more(tail, need)
            if buf is tail:  # end of the stream
                if tail:
                    stats.truncated_records += 1
                    if stats.error is None:
                        stats.error = (
                            f"{name}: last record (at offset {base}) cut short by the end of"
                            f" the file: {len(tail)} of {need} bytes"
                        )
                return
    finally:
        stats.bytes += pos - flushed_pos - hlen * (packets - flushed_packets)
        stats.packets = packets
