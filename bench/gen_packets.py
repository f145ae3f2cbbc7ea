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
    """One host pair and its link: MACs and the IP header builder for either direction."""

    __slots__ = ("cip", "cmac", "ipv6", "sip", "smac")

    def __init__(self, cip: bytes, sip: bytes, cmac: bytes, smac: bytes) -> None:
        self.cip, self.sip, self.cmac, self.smac = cip, sip, cmac, smac
        self.ipv6 = len(cip) == 16

    def frame(self, to_server: bool, proto: int, l4: bytes, ident: int) -> bytes:
        """Ethernet + IP around an L4 segment whose checksum field is already filled in."""
        if to_server:
            src, dst, smac, dmac = self.cip, self.sip, self.cmac, self.smac
        else:
            src, dst, smac, dmac = self.sip, self.cip, self.smac, self.cmac
        if self.ipv6:
            ip = _IP6.pack(0x60000000, len(l4), proto, 64, src, dst)
            return dmac + smac + ETH_IPV6 + ip + l4
        ttl = 64 if to_server else 57
        hdr = _IP4.pack(0x45, 0, 20 + len(l4), ident & 0xFFFF, 0x4000, ttl, proto, 0, src, dst)
        csum = inet_checksum(hdr)
        hdr = hdr[:10] + struct.pack("!H", csum) + hdr[12:]
        return dmac + smac + ETH_IPV4 + hdr + l4

    def pseudo(self, to_server: bool, proto: int, length: int) -> bytes:
        src, dst = (self.cip, self.sip) if to_server else (self.sip, self.cip)
        if self.ipv6:
            return src + dst + struct.pack("!IxxxB", length, proto)
        return src + dst + struct.pack("!xBH", proto, length)


def tcp_segment(
    ep: Endpoint,
    to_server: bool,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes,
    options: bytes,
    window: int,
    ident: int,
) -> bytes:
    """A whole Ethernet frame carrying one TCP segment with a correct checksum."""
    hlen = 20 + len(options)
    hdr = (
        _TCP.pack(
            sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (hlen // 4) << 4, flags, window, 0, 0
        )
        + options
    )
    seg_len = hlen + len(payload)
    csum = inet_checksum(ep.pseudo(to_server, PROTO_TCP, seg_len) + hdr + payload)
    l4 = hdr[:16] + struct.pack("!H", csum) + hdr[18:] + payload
    return ep.frame(to_server, PROTO_TCP, l4, ident)


def udp_datagram(
    ep: Endpoint, to_server: bool, sport: int, dport: int, payload: bytes, ident: int
) -> bytes:
    """A whole Ethernet frame carrying one UDP datagram with a correct checksum."""
    length = 8 + len(payload)
    hdr = _UDP.pack(sport, dport, length, 0)
    csum = inet_checksum(ep.pseudo(to_server, PROTO_UDP, length) + hdr + payload)
    if csum == 0:
        csum = 0xFFFF
    return ep.frame(to_server, PROTO_UDP, hdr[:6] + struct.pack("!H", csum) + payload, ident)


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
