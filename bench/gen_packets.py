"""Frame building and streaming pcap output for the benchmark generator.

Ethernet II + IPv4 (with header checksum) or IPv6 + TCP/UDP with correct checksums, written
as classic pcap (magic 0xa1b2c3d4, microsecond timestamps, LINKTYPE_ETHERNET) through a
buffered writer that never holds more than ``FLUSH_BYTES`` of packets in memory.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

PCAP_MAGIC_US = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
# The writer hands its buffer to the file once it holds this much (bounded memory).
FLUSH_BYTES = 1 << 20

ETH_IPV4 = b"\x08\x00"
ETH_IPV6 = b"\x86\xdd"
PROTO_TCP = 6
PROTO_UDP = 17

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

_REC = struct.Struct("<IIII")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")


def inet_checksum(data: bytes) -> int:
    """RFC 1071 ones-complement checksum, computed as a big integer modulo 0xFFFF
    (2**16 is 1 modulo 0xFFFF, so the folded word sum is the number modulo 0xFFFF)."""
    if len(data) & 1:
        data += b"\x00"
    n = int.from_bytes(data, "big")
    if n == 0:
        return 0xFFFF
    s = n % 0xFFFF or 0xFFFF
    return ~s & 0xFFFF


class Endpoint:
    """One host pair: the client's and server's addresses and MACs."""

    __slots__ = ("cip", "cmac", "ipv6", "sip", "smac")

    def __init__(self, cip: bytes, sip: bytes, cmac: bytes, smac: bytes) -> None:
        self.cip, self.sip, self.cmac, self.smac = cip, sip, cmac, smac
        self.ipv6 = len(cip) == 16


def _fold(total: int) -> int:
    """Checksum field from a word sum taken modulo 0xFFFF (never all-zero input here)."""
    return 0xFFFF - (total % 0xFFFF or 0xFFFF)


class Link:
    """Frame builder for one connection (host pair and ports), both directions.

    The constant parts of each direction (Ethernet header, addresses, their checksum
    contribution) are computed once. Checksums use the fact that 2**16 is 1 modulo 0xFFFF:
    the ones-complement word sum of even-length pieces is the sum of each piece's value
    modulo 0xFFFF, so the pseudo-header, header and payload never need concatenating.
    """

    __slots__ = ("_dirs", "ipv6")

    def __init__(self, ep: Endpoint, cport: int, sport: int) -> None:
        self.ipv6 = ep.ipv6
        ethertype = ETH_IPV6 if ep.ipv6 else ETH_IPV4
        self._dirs = {}
        for to_server in (True, False):
            if to_server:
                src, dst, smac, dmac, ports = ep.cip, ep.sip, ep.cmac, ep.smac, (cport, sport)
            else:
                src, dst, smac, dmac, ports = ep.sip, ep.cip, ep.smac, ep.cmac, (sport, cport)
            addr_sum = int.from_bytes(src + dst, "big") % 0xFFFF
            ttl = 64 if to_server else 57
            self._dirs[to_server] = (dmac + smac + ethertype, src, dst, ports, addr_sum, ttl)

    def _ip(self, to_server: bool, proto: int, l4_len: int, ident: int) -> bytes:
        eth, src, dst, _, addr_sum, ttl = self._dirs[to_server]
        if self.ipv6:
            return eth + _IP6.pack(0x60000000, l4_len, proto, 64, src, dst)
        total = 20 + l4_len
        ident &= 0xFFFF
        csum = _fold(0x4500 + total + ident + 0x4000 + (ttl << 8 | proto) + addr_sum)
        return eth + _IP4.pack(0x45, 0, total, ident, 0x4000, ttl, proto, csum, src, dst)

    def tcp(
        self,
        to_server: bool,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes,
        options: bytes,
        window: int,
        ident: int,
    ) -> bytes:
        """A whole Ethernet frame carrying one TCP segment with correct checksums."""
        sport, dport = self._dirs[to_server][3]
        hlen = 20 + len(options)
        seq &= 0xFFFFFFFF
        ack &= 0xFFFFFFFF
        off = (hlen // 4) << 4
        seg_len = hlen + len(payload)
        pay = int.from_bytes(payload, "big")
        if len(payload) & 1:
            pay <<= 8
        total = (
            self._dirs[to_server][4]
            + PROTO_TCP
            + seg_len
            + int.from_bytes(_TCP.pack(sport, dport, seq, ack, off, flags, window, 0, 0), "big")
            + int.from_bytes(options, "big")
            + pay
        )
        hdr = _TCP.pack(sport, dport, seq, ack, off, flags, window, _fold(total), 0)
        return b"".join((self._ip(to_server, PROTO_TCP, seg_len, ident), hdr, options, payload))

    def udp(self, to_server: bool, payload: bytes, ident: int) -> bytes:
        """A whole Ethernet frame carrying one UDP datagram with correct checksums."""
        sport, dport = self._dirs[to_server][3]
        length = 8 + len(payload)
        pay = int.from_bytes(payload, "big")
        if len(payload) & 1:
            pay <<= 8
        total = self._dirs[to_server][4] + PROTO_UDP + length * 2 + (sport << 16 | dport) + pay
        csum = _fold(total) or 0xFFFF  # 0 means "no checksum" in UDP: send its equivalent
        hdr = _UDP.pack(sport, dport, length, csum)
        return b"".join((self._ip(to_server, PROTO_UDP, length, ident), hdr, payload))


class PcapWriter:
    """Streams frames to a classic pcap file through a bounded buffer."""

    __slots__ = ("_buf", "_fh", "bytes", "packets")

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._buf = bytearray(
            struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
        )
        self.packets = 0
        self.bytes = len(self._buf)

    def write(self, ts_us: int, frame: bytes) -> None:
        n = len(frame)
        self._buf += _REC.pack(ts_us // 1_000_000, ts_us % 1_000_000, n, n)
        self._buf += frame
        self.packets += 1
        self.bytes += 16 + n
        if len(self._buf) >= FLUSH_BYTES:
            self._fh.write(self._buf)
            self._buf.clear()

    def close(self) -> None:
        self._fh.write(self._buf)
        self._buf.clear()
        self._fh.flush()
