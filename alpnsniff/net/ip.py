"""IPv4 and IPv6 headers, IPv6 extension headers, and the TCP/UDP headers above them.

Pure functions over ``data[off:end]``; they return plain tuples (this is the per-packet path)
and raise :class:`~alpnsniff.errors.Truncated` / :class:`~alpnsniff.errors.Malformed` with
layer ``"ip"``, ``"ipv6-ext"``, ``"tcp"`` or ``"udp"``.

Lengths follow Wireshark: the IP total (payload) length bounds the packet, Ethernet padding
after it is dropped, and a capture cut short by its snap length keeps what it has with
``truncated`` set. A total length of 0 is the "TSO" case (the NIC fills it in after the
capture point) and means "as captured", as in Wireshark's default ``ip.tso_support``.
"""

from __future__ import annotations

import struct

from ..errors import Malformed, Truncated

PROTO_HOPOPTS = 0
PROTO_IPIP = 4
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_IPV6 = 41
PROTO_ROUTING = 43
PROTO_FRAGMENT = 44
PROTO_GRE = 47
PROTO_ESP = 50
PROTO_AH = 51
PROTO_NONE = 59
PROTO_DSTOPTS = 60
PROTO_MOBILITY = 135
PROTO_HIP = 139
PROTO_SHIM6 = 140

# Extension headers with the generic "next header, length in 8-octet units minus one" layout
# (RFC 8200 section 4, RFC 7045): skipped by their length.
GENERIC_EXT = frozenset(
    {PROTO_HOPOPTS, PROTO_ROUTING, PROTO_DSTOPTS, PROTO_MOBILITY, PROTO_HIP, PROTO_SHIM6}
)

# IPv6 extension headers walked in one packet. RFC 8200 allows each kind once (destination
# options twice); a dozen covers every legal chain, while a crafted packet could chain
# thousands of 8-byte headers. Beyond this the packet is malformed, not looped over.
MAX_IPV6_EXT_HEADERS = 12

_V4 = struct.Struct("!BxHHHxB2x4s4s")
_V6 = struct.Struct("!B3xHBx16s16s")
_TCP = struct.Struct("!HHIIBB")
_UDP = struct.Struct("!HHH")

# (proto, src, dst, payload start, payload end, fragment, truncated)
# fragment: None, or (identification, offset in bytes, more fragments)
Fragment = tuple[int, int, bool]
IpHeader = tuple[int, bytes, bytes, int, int, Fragment | None, bool]


def ipv4(data: bytes, off: int, end: int) -> IpHeader:
    """An IPv4 header at ``off`` (the packet's bytes end at ``end``)."""
    if end - off < 20:
        raise Truncated("IPv4 header cut short", layer="ip", offset=off)
    vihl, total, ident, frag, proto, src, dst = _V4.unpack_from(data, off)
    if vihl >> 4 != 4:
        raise Malformed(f"IP version {vihl >> 4} in an IPv4 header", layer="ip", offset=off)
    hlen = (vihl & 15) << 2
    if hlen < 20:
        raise Malformed(f"IPv4 header length {hlen} < 20", layer="ip", offset=off)
    if off + hlen > end:
        raise Truncated("IPv4 options cut short", layer="ip", offset=off)
    truncated = False
    if total == 0:  # TSO: length filled in after the capture point
        pend = end
    else:
        if total < hlen:
            raise Malformed(f"IPv4 total length {total} < header {hlen}", layer="ip", offset=off)
        pend = off + total
        if pend > end:
            pend = end
            truncated = True
    fragment: Fragment | None = None
    if frag & 0x3FFF:  # MF set or a non-zero offset
        fragment = (ident, (frag & 0x1FFF) << 3, bool(frag & 0x2000))
    return proto, src, dst, off + hlen, pend, fragment, truncated


def ipv6(data: bytes, off: int, end: int) -> IpHeader:
    """An IPv6 header at ``off`` and its extension headers up to the upper layer (or ESP)."""
    if end - off < 40:
        raise Truncated("IPv6 header cut short", layer="ip", offset=off)
    vtc, plen, nh, src, dst = _V6.unpack_from(data, off)
    if vtc >> 4 != 6:
        raise Malformed(f"IP version {vtc >> 4} in an IPv6 header", layer="ip", offset=off)
    truncated = False
    pend = off + 40 + plen
    if plen == 0:  # a jumbogram (RFC 2675) or TSO: as captured
        pend = end
    elif pend > end:
        pend = end
        truncated = True
    nh, poff, fragment = ipv6_ext(nh, data, off + 40, pend)
    return nh, src, dst, poff, pend, fragment, truncated


def ipv6_ext(nh: int, data: bytes, off: int, end: int) -> tuple[int, int, Fragment | None]:
    """Skip extension headers from ``nh`` at ``off``; stop at the upper layer or a fragment.

    Returns ``(next header, offset, fragment)``; after a Fragment header the rest is fragment
    data, to be walked again (from the first fragment's next header) once reassembled.
    """
    for _ in range(MAX_IPV6_EXT_HEADERS):
        if nh in GENERIC_EXT:
            if off + 2 > end:
                raise Truncated("IPv6 extension header cut short", layer="ipv6-ext", offset=off)
            nh, size = data[off], (data[off + 1] + 1) << 3
        elif nh == PROTO_FRAGMENT:
            if off + 8 > end:
                raise Truncated("IPv6 fragment header cut short", layer="ipv6-ext", offset=off)
            fo = data[off + 2] << 8 | data[off + 3]
            ident = int.from_bytes(data[off + 4 : off + 8], "big")
            return data[off], off + 8, (ident, fo & 0xFFF8, bool(fo & 1))
        elif nh == PROTO_AH:
            nh, size = skip_ah(data, off, end)
        else:
            return nh, off, None
        off += size
        if off > end:
            raise Truncated("IPv6 extension header cut short", layer="ipv6-ext", offset=off)
    raise Malformed(f"more than {MAX_IPV6_EXT_HEADERS} IPv6 extension headers", layer="ipv6-ext")


def skip_ah(data: bytes, off: int, end: int) -> tuple[int, int]:
    """An Authentication Header (RFC 4302): ``(next header, size)``; length in 4-octet units."""
    if off + 2 > end:
        raise Truncated("AH cut short", layer="ipv6-ext", offset=off)
    return data[off], (data[off + 1] + 2) << 2


def tcp(data: bytes, off: int, end: int) -> tuple[int, int, int, int, int, int]:
    """A TCP header: ``(sport, dport, seq, ack, flags, payload offset)``."""
    if end - off < 20:
        raise Truncated("TCP header cut short", layer="tcp", offset=off)
    sport, dport, seq, ack, doff, flags = _TCP.unpack_from(data, off)
    hlen = (doff >> 4) << 2
    if hlen < 20:
        raise Malformed(f"TCP header length {hlen} < 20", layer="tcp", offset=off)
    if off + hlen > end:
        raise Truncated("TCP options cut short", layer="tcp", offset=off)
    return sport, dport, seq, ack, flags, off + hlen


def udp(data: bytes, off: int, end: int) -> tuple[int, int, int, bool]:
    """A UDP header: ``(sport, dport, payload end, overlong)``; the payload starts at off+8.

    The UDP length bounds the payload when it fits inside the IP payload. ``overlong`` says
    it claims more than the IP payload holds (a capture cut short, or a bad length); the
    payload then ends with the IP payload. A length below 8 (0 in IPv6 jumbograms) is
    ignored in favour of the IP length.
    """
    if end - off < 8:
        raise Truncated("UDP header cut short", layer="udp", offset=off)
    sport, dport, ulen = _UDP.unpack_from(data, off)
    if ulen >= 8:
        if off + ulen <= end:
            return sport, dport, off + ulen, False
        return sport, dport, end, True
    return sport, dport, end, False
