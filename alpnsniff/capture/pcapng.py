"""The pcapng format: the block loop.

Blocks used: Section Header (SHB, sets the byte order and starts a new list of interfaces),
Interface Description (IDB: linktype, ``if_tsresol``, ``if_tsoffset``), Enhanced Packet
(EPB), Simple Packet (SPB), the obsolete Packet Block (OPB, type 2) and Decryption Secrets
(DSB, collected). Every other block (name resolution, statistics, custom, unknown) is skipped
and counted. Each block's length is checked (at least 12, a multiple of 4, the same at both
ends, at most MAX_BLOCK_LEN); a bad one stops the reading, counted, as tshark stops.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Generator

from ..errors import CaptureError
from .batch import MAX_BATCH_PACKETS, PacketBatch, fresh_batch
from .stats import (
    MAX_BLOCK_LEN,
    MAX_CAPLEN,
    MAX_INTERFACES,
    MAX_SECRETS_BYTES,
    CaptureStats,
    Refill,
)

SHB = 0x0A0D0D0A
IDB = 1
OPB = 2
SPB = 3
EPB = 6
DSB = 0x0000000A

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"
SHB_MIN_LEN = 28
_OPT_TSRESOL = 9
_OPT_TSOFFSET = 14
_NS_PER_S = 1_000_000_000
_DEFAULT_TSRESOL = 6  # microseconds, when an IDB has no if_tsresol


class _Structs:
    """The structs for one byte order."""

    __slots__ = ("head28", "idb", "opb", "opt", "tsoffset", "u32", "u32x2")

    def __init__(self, order: str) -> None:
        self.u32 = struct.Struct(order + "I")
        self.u32x2 = struct.Struct(order + "II")
        # type, length, and (for an EPB) interface id, ts high, ts low, caplen
        self.head28 = struct.Struct(order + "IIIIII4x")
        self.idb = struct.Struct(order + "H2xI")
        self.opb = struct.Struct(order + "H2xIII")
        self.opt = struct.Struct(order + "HH")
        self.tsoffset = struct.Struct(order + "q")


_STRUCTS = {"<": _Structs("<"), ">": _Structs(">")}


def shb_byte_order(name: str, head: bytes) -> str:
    """Check the first Section Header Block's fixed part; return its byte order."""
    if len(head) < SHB_MIN_LEN:
        raise CaptureError(
            f"{name}: pcapng section header cut short ({len(head)} of {SHB_MIN_LEN} bytes)"
        )
    bom = head[8:12]
    if bom == _BOM_LE:
        order = "<"
    elif bom == _BOM_BE:
        order = ">"
    else:
        raise CaptureError(
            f"{name}: not a pcapng file (bad byte-order magic {bom.hex(' ')} in the section header)"
        )
    blen, _bom, major, minor = struct.unpack_from(order + "IIHH", head, 4)
    if major != 1:
        raise CaptureError(f"{name}: pcapng version {major}.{minor} is not supported")
    if blen < SHB_MIN_LEN or blen % 4 or blen > MAX_BLOCK_LEN:
        raise CaptureError(f"{name}: pcapng section header has a bad block length {blen}")
    return order


def _units_per_second(tsresol: int) -> int:
    """``if_tsresol``: high bit clear -> 10**-value seconds per unit, set -> 2**-value."""
    if tsresol & 0x80:
        return 1 << (tsresol & 0x7F)
    units: int = 10**tsresol
    return units


def _interface(
    buf: bytes, pos: int, nxt: int, st: _Structs
) -> tuple[tuple[int, int, int, int, int], int] | str:
    """Parse an IDB: ((linktype, ts mul, ts div, ts offset ns, snaplen), units per second),
    or the reason it is bad."""
    linktype, snaplen = st.idb.unpack_from(buf, pos + 8)
    tsresol = _DEFAULT_TSRESOL
    tsoffset = 0
    opt = pos + 16
    stop = nxt - 4
    opt_unpack = st.opt.unpack_from
    while opt + 4 <= stop:
        code, olen = opt_unpack(buf, opt)
        if code == 0:
            break
        value = opt + 4
        if value + olen > stop:
            return f"interface option {code} of {olen} bytes runs past the block"
        if code == _OPT_TSRESOL and olen >= 1:
            tsresol = buf[value]
        elif code == _OPT_TSOFFSET and olen >= 8:
            tsoffset = st.tsoffset.unpack_from(buf, value)[0]
        opt = value + ((olen + 3) & ~3)
    units = _units_per_second(tsresol)
    g = math.gcd(_NS_PER_S, units)
    mul, div = _NS_PER_S // g, units // g
    return (linktype, mul, div, tsoffset * _NS_PER_S, snaplen), units


def pcapng_batches(
    more: Refill,
    buf: bytes,
    order: str,
    stats: CaptureStats,
    secrets: list[tuple[int, bytes]],
    name: str,
) -> Generator[PacketBatch, None, None]:
    """Yield a :class:`PacketBatch` per chunk: the packet blocks, from the file's first SHB on.

    ``buf`` holds the first bytes of the file; ``more`` gives the rest. An EPB, the common
    block, takes the fast path: one unpack of its first 28 bytes, one of its trailing length,
    three comparisons, the timestamp arithmetic and four list appends (no slice). The packets
    before a Decryption Secrets Block are handed on in a batch of their own first, so that a
    consumer has the secrets exactly from the packets after the block on.
    A timestamp is ``ts * mul // div + offset``: exact (floor) nanoseconds for any
    ``if_tsresol`` (``mul``/``div`` is 10**9 / units per second, reduced). When ``div`` is 1
    (any resolution of 1 ns or coarser) the high word's part is computed once per interface
    and high word, leaving one multiplication and one addition per packet.
    """
    st = _STRUCTS[order]
    little = order == "<"
    head28 = st.head28.unpack_from
    u32 = st.u32.unpack_from
    ifaces: list[tuple[int, int, int, int, int]] = []
    nif = 0
    n_described = len(stats.interfaces)
    secrets_bytes = sum(len(s) for _t, s in secrets)
    max_caplen = MAX_CAPLEN
    max_block_len = MAX_BLOCK_LEN
    last_ts = 0
    # the interface and timestamp high word of the last EPB, and what they give
    cur_if = cur_tsh = -1
    linktype = mul = div = off = hi = 0
    # interfaces are numbered over the whole file (each section's ids from its first one's)
    section_base = n_described
    cur_index = 0  # the file-wide index of cur_if
    packets = stats.packets
    nbytes = stats.bytes
    base = 0  # file offset of buf[0]
    pos = 0

    try:
        while True:
            end = len(buf)
            need = 12
            batch, starts, lengths, stamps, linktypes = fresh_batch(buf)
            why = ""  # set when a block cannot be right: reading stops there
            while pos + 12 <= end:
                if pos + 28 <= end:
                    # the six 32-bit fields byte by byte: native integer operations once
                    # compiled, where head28 builds a tuple of six objects (kept for the rest)
                    if little:
                        btype = (
                            buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16 | buf[pos + 3] << 24
                        )
                        blen = (
                            buf[pos + 4]
                            | buf[pos + 5] << 8
                            | buf[pos + 6] << 16
                            | buf[pos + 7] << 24
                        )
                        ifid = (
                            buf[pos + 8]
                            | buf[pos + 9] << 8
                            | buf[pos + 10] << 16
                            | buf[pos + 11] << 24
                        )
                        tsh = (
                            buf[pos + 12]
                            | buf[pos + 13] << 8
                            | buf[pos + 14] << 16
                            | buf[pos + 15] << 24
                        )
                        tsl = (
                            buf[pos + 16]
                            | buf[pos + 17] << 8
                            | buf[pos + 18] << 16
                            | buf[pos + 19] << 24
                        )
                        caplen = (
                            buf[pos + 20]
                            | buf[pos + 21] << 8
                            | buf[pos + 22] << 16
                            | buf[pos + 23] << 24
                        )
                    else:
                        btype, blen, ifid, tsh, tsl, caplen = head28(buf, pos)
                else:  # only a short block can still be complete here; fields unused then
                    btype, blen = st.u32x2.unpack_from(buf, pos)
                    ifid = tsh = tsl = caplen = 0
                if btype == SHB:
                    bom = buf[pos + 8 : pos + 12]
                    if bom != _BOM_LE and bom != _BOM_BE:
                        why = f"bad byte-order magic {bom.hex(' ')}"
                        break
                    little = bom == _BOM_LE
                    st = _STRUCTS["<" if little else ">"]
                    head28 = st.head28.unpack_from
                    u32 = st.u32.unpack_from
                    blen = u32(buf, pos + 4)[0]
                if blen & 3 or blen < 12:
                    why = f"bad block length {blen}"
                    break
                nxt = pos + blen
                if nxt > end:
                    if blen > max_block_len:
                        why = f"block length {blen} > {max_block_len}"
                        break
                    need = blen
                    break
                t = nxt - 4
                if little:
                    trailing = buf[t] | buf[t + 1] << 8 | buf[t + 2] << 16 | buf[t + 3] << 24
                else:
                    trailing = buf[t] << 24 | buf[t + 1] << 16 | buf[t + 2] << 8 | buf[t + 3]
                if trailing != blen:
                    why = f"trailing block length {trailing} != {blen}"
                    break
                if btype == EPB:
                    if caplen > blen - 32 or caplen > max_caplen:
                        why = f"captured length {caplen} does not fit"
                        break
                    if ifid != cur_if or tsh != cur_tsh:
                        if ifid >= nif:
                            why = f"interface {ifid} not described (have {nif})"
                            break
                        linktype, mul, div, off, _snap = ifaces[ifid]
                        cur_if = ifid
                        cur_index = section_base + ifid
                        cur_tsh = tsh
                        # for div == 1: ts = hi + tsl * mul, the high word's part computed once
                        hi = (tsh << 32) * mul + off
                    if div == 1:
                        last_ts = hi + tsl * mul
                    else:
                        last_ts = ((tsh << 32) | tsl) * mul // div + off
                    packets += 1
                    nbytes += caplen
                    pos = nxt
                    starts.append(nxt - blen + 28)
                    lengths.append(caplen)
                    stamps.append(last_ts)
                    linktypes.append(linktype)
                    if cur_index:
                        batch.interfaces[len(starts) - 1] = cur_index
                    if len(starts) >= MAX_BATCH_PACKETS:
                        yield batch
                        batch, starts, lengths, stamps, linktypes = fresh_batch(buf)
                    continue
                # ---- everything but EPBs: rare, so clarity over speed ----
                if btype == SHB:
                    if blen < SHB_MIN_LEN:
                        why = f"section header of length {blen}"
                        break
                    major, minor = st.opt.unpack_from(buf, pos + 12)
                    if major != 1:
                        why = f"pcapng version {major}.{minor} is not supported"
                        break
                    ifaces = []
                    nif = 0
                    cur_if = -1
                    section_base = n_described
                elif btype == IDB:
                    if blen < 20:
                        why = f"interface description of length {blen}"
                        break
                    parsed = _interface(buf, pos, nxt, st)
                    if isinstance(parsed, str):
                        why = parsed
                        break
                    if n_described >= MAX_INTERFACES:
                        why = f"more than {MAX_INTERFACES} interfaces"
                        break
                    iface, units = parsed
                    ifaces.append(iface)
                    nif += 1
                    n_described += 1
                    stats.interfaces.append((iface[0], units))
                elif btype in (SPB, OPB):
                    if btype == SPB:
                        if blen < 16:
                            why = f"simple packet block of length {blen}"
                            break
                        ifid = 0
                        orig_len = u32(buf, pos + 8)[0]
                        start = pos + 12
                        caplen = min(orig_len, blen - 16)
                        if nif and ifaces[0][4]:
                            caplen = min(caplen, ifaces[0][4])
                    else:
                        if blen < 32:
                            why = f"packet block of length {blen}"
                            break
                        ifid, tsh, tsl, caplen = st.opb.unpack_from(buf, pos + 8)
                        start = pos + 28
                    if ifid >= nif:
                        why = f"interface {ifid} not described (have {nif})"
                        break
                    if caplen > nxt - 4 - start or caplen > max_caplen:
                        why = f"captured length {caplen} does not fit"
                        break
                    o_linktype, o_mul, o_div, o_off, _snap = ifaces[ifid]
                    if btype == OPB:
                        last_ts = ((tsh << 32) | tsl) * o_mul // o_div + o_off
                    packets += 1
                    nbytes += caplen
                    pos = nxt
                    starts.append(start)
                    lengths.append(caplen)
                    stamps.append(last_ts)
                    linktypes.append(o_linktype)
                    if section_base + ifid:
                        batch.interfaces[len(starts) - 1] = section_base + ifid
                    if len(starts) >= MAX_BATCH_PACKETS:
                        yield batch
                        batch, starts, lengths, stamps, linktypes = fresh_batch(buf)
                    continue
                elif btype == DSB:
                    if blen < 20:
                        why = f"decryption secrets block of length {blen}"
                        break
                    stype, slen = st.u32x2.unpack_from(buf, pos + 8)
                    if slen > blen - 20:
                        why = f"secrets length {slen} does not fit"
                        break
                    if secrets_bytes + slen > MAX_SECRETS_BYTES:
                        stats.skipped_blocks += 1
                    else:
                        if starts:  # the packets before the secrets go first, without them
                            stats.packets = packets
                            stats.bytes = nbytes
                            yield batch
                            batch, starts, lengths, stamps, linktypes = fresh_batch(buf)
                        secrets.append((stype, buf[pos + 16 : pos + 16 + slen]))
                        secrets_bytes += slen
                else:
                    stats.skipped_blocks += 1
                pos = nxt
            if why:  # the packets before that block, then the end
                stats.corrupt_records += 1
                stats.error = (
                    f"{name}: block at offset {base + pos} (type 0x{btype:08x}): {why};"
                    " stopped there"
                )
                if starts:
                    yield batch
                return
            stats.packets = packets
            stats.bytes = nbytes
            if starts:
                yield batch
            tail = buf[pos:]
            base += pos
            pos = 0
            buf = more(tail, need)
            if buf is tail:  # end of the stream
                if tail:
                    stats.truncated_records += 1
                    if stats.error is None:
                        stats.error = (
                            f"{name}: last block (at offset {base}) cut short by the end of"
                            f" the file: {len(tail)} of {need} bytes"
                        )
                return
    finally:
        stats.packets = packets
        stats.bytes = nbytes
