"""From a captured frame to its innermost TCP segment or UDP datagram.

:meth:`PacketDecoder.decode` returns a :class:`~.segment.Segment` or a short reason string
the caller counts. It never raises for wire bytes and never loops unbounded. Reasons:

``linktype-unsupported:N``
    no decoder for LINKTYPE ``N``.
``non-ip``
    the frame carries something other than IPv4/IPv6 (ARP, LLC, PPP control, ...).
``not-tcp-udp``
    IP, but the (innermost) protocol is neither TCP nor UDP: ICMP (including the ICMP
    errors that quote a TCP/UDP header, which are not traffic of that flow), IGMP, ...
``esp``
    IPsec ESP: encrypted, nothing to decode.
``fragment-held`` / ``fragment-dropped``
    an IP fragment kept for reassembly / refused (see the ``frag-*`` counters).
``tunnel-depth``
    an IP-level tunnel nested deeper than :data:`MAX_TUNNEL_DEPTH`.
``<truncated|malformed|unsupported>-<layer>``
    a header that is cut short, contradicts itself, or is a variant not handled, e.g.
    ``truncated-ip``, ``malformed-tcp``, ``unsupported-gre``, ``truncated-link``.

``stats`` counts what is not a per-packet outcome: tunnels and shims met (``vlan``,
``qinq``, ``pppoe``, ``mpls``, ``cisco-metadata``, ``vn-tag``, ``e-tag``, ``nsh``, ``pbb``,
``tunnel:gre``, ``tunnel:vxlan``, ``tunnel:vxlan-gpe``, ``tunnel:capwap``, ``tunnel:tzsp``,
...), UDP tunnel ports whose payload did not parse and were returned as plain UDP
(``tunnel-fallback:<kind>``, and ``tunnel-fallback:<kind>:<reason>`` naming what did not
parse, e.g. ``tunnel-fallback:capwap:unsupported-capwap`` for DTLS-protected data), captures
cut short (``payload-truncated``), and fragment reassembly (``frag-*``).

Speed: the common frames (Ethernet, one 802.1Q tag, Linux SLL/SLL2 or raw IP, carrying IPv4
without options or IPv6 without extension headers, unfragmented, TCP or UDP off the tunnel
ports) take a fast path of one ``struct`` unpack, one slice and one ``Segment``; everything
else takes the general path, layer by layer. Both give the same answer for any input (the
fuzz tests check it).
"""

from __future__ import annotations

import struct

from ..errors import DissectError
from .fragments import DROPPED, FragmentReassembler
from .ip import (
    PROTO_AH,
    PROTO_ESP,
    PROTO_GRE,
    PROTO_IPIP,
    PROTO_IPV6,
    PROTO_TCP,
    PROTO_UDP,
    ipv4,
    ipv6,
    ipv6_ext,
    tcp,
    udp,
)
from .link import ETH_IPV4, ETH_IPV6, LINK_DECODERS, resolve
from .segment import Segment
from .tunnels import TUNNEL_UDP_PORTS, UDP_TUNNELS, TunnelDecoder, gre

# Tunnels unwrapped inside one another (GRE in IP in VXLAN ...). Real deployments nest two
# or three (an overlay over a provider tunnel); every level re-runs the IP decoder, and a
# crafted packet can nest IP-in-IP a thousand times in 64 KiB. Deeper nesting is refused
# ("tunnel-depth"), or for a UDP tunnel port handed on as the plain UDP datagram it is.
MAX_TUNNEL_DEPTH = 4

# The fast path: Ethernet II + IPv4 without options + the first 14 bytes of TCP (or UDP, whose
# length and checksum then sit where the sequence number is), in one unpack.
_ETH_IPV4_L4 = struct.Struct("!12xHBxH2xHxB2x4s4sHHIIBB")
# The same from the IP header on, for IP at a fixed offset (other link types, one VLAN tag).
_IPV4_L4 = struct.Struct("!BxH2xHxB2x4s4sHHIIBB")
_IPV6_L4 = struct.Struct("!B3xHBx16s16sHHIIBB")
_ETHERTYPE_OF_VERSION = (b"", b"", b"", b"", b"\x08\x00", b"", b"\x86\xdd")
# LINKTYPE -> (offset of the IP header, offset of its 2-byte EtherType field or -1 when the
# link type is raw IP), for the link types with a fixed-size header.
_FIXED_IP = {113: (16, 14), 276: (20, 0), 101: (0, -1), 12: (0, -1), 14: (0, -1)}
_IP_TUNNELS = {
    (4, PROTO_IPIP): "ipip",
    (4, PROTO_IPV6): "6in4",
    (6, PROTO_IPIP): "4in6",
    (6, PROTO_IPV6): "6in6",
}


class PacketDecoder:
    """Decodes frames to segments; owns the (bounded) IP fragment reassembler."""

    __slots__ = ("_frags", "stats")

    def __init__(self) -> None:
        self.stats: dict[str, int] = {}
        self._frags = FragmentReassembler(self.stats)

    def decode(self, linktype: int, data: bytes, ts_ns: int) -> Segment | str:
        """The innermost TCP/UDP segment of one frame, or the reason there is none."""
        if linktype == 1:
            # Fast path: Ethernet, IPv4 without options, not a fragment, TCP or plain UDP.
            try:
                (et, vihl, total, frag, proto, src, dst, sport, dport, seq, ack, doff, flags) = (
                    _ETH_IPV4_L4.unpack_from(data)
                )
            except struct.error:
                return self._decode(linktype, data, ts_ns)
            if et == 0x0800 and vihl == 0x45 and not frag & 0x3FFF:
                end = 14 + total
                if proto == 6:
                    start = 34 + ((doff >> 2) & 0x3C)
                    if 54 <= start <= end <= len(data):
                        return Segment(
                            6, 4, src, dst, sport, dport, seq, ack, flags, data[start:end]
                        )
                elif (
                    proto == 17
                    and seq >> 16 == total - 20
                    and 42 <= end <= len(data)
                    and dport not in TUNNEL_UDP_PORTS
                    and sport not in TUNNEL_UDP_PORTS
                ):
                    return Segment(17, 4, src, dst, sport, dport, 0, 0, 0, data[42:end])
            elif et == 0x86DD and vihl >> 4 == 6:
                return self._ip_fast(1, data, 14, ts_ns)
            elif et == 0x8100 and data[16:18] == _ETHERTYPE_OF_VERSION[data[18] >> 4 & 6]:
                return self._ip_fast(1, data, 18, ts_ns)
            return self._decode(linktype, data, ts_ns)
        fixed = _FIXED_IP.get(linktype)
        if fixed is not None:
            off, etype_at = fixed
            if len(data) > off and (
                etype_at < 0
                or data[etype_at : etype_at + 2] == _ETHERTYPE_OF_VERSION[data[off] >> 4 & 6]
            ):
                return self._ip_fast(linktype, data, off, ts_ns)
        return self._decode(linktype, data, ts_ns)

    def _ip_fast(self, linktype: int, data: bytes, off: int, ts_ns: int) -> Segment | str:
        """Second fast path: IP at ``off``, no options or extension headers, TCP or plain UDP."""
        try:
            if data[off] >> 4 == 4:
                (vihl, total, frag, proto, src, dst, sport, dport, seq, ack, doff, flags) = (
                    _IPV4_L4.unpack_from(data, off)
                )
                if vihl == 0x45 and not frag & 0x3FFF:
                    end = off + total
                    if proto == 6:
                        start = off + 20 + ((doff >> 2) & 0x3C)
                        if off + 40 <= start <= end <= len(data):
                            return Segment(
                                6, 4, src, dst, sport, dport, seq, ack, flags, data[start:end]
                            )
                    elif (
                        proto == 17
                        and seq >> 16 == total - 20
                        and off + 28 <= end <= len(data)
                        and dport not in TUNNEL_UDP_PORTS
                        and sport not in TUNNEL_UDP_PORTS
                    ):
                        return Segment(17, 4, src, dst, sport, dport, 0, 0, 0, data[off + 28 : end])
            else:
                (vtc, plen, nh, src, dst, sport, dport, seq, ack, doff, flags) = (
                    _IPV6_L4.unpack_from(data, off)
                )
                end = off + 40 + plen
                if vtc >> 4 == 6 and end <= len(data):
                    if nh == 6:
                        start = off + 40 + ((doff >> 2) & 0x3C)
                        if off + 60 <= start <= end:
                            return Segment(
                                6, 6, src, dst, sport, dport, seq, ack, flags, data[start:end]
                            )
                    elif (
                        nh == 17
                        and seq >> 16 == plen
                        and plen >= 8
                        and dport not in TUNNEL_UDP_PORTS
                        and sport not in TUNNEL_UDP_PORTS
                    ):
                        return Segment(17, 6, src, dst, sport, dport, 0, 0, 0, data[off + 48 : end])
        except struct.error:
            pass
        return self._decode(linktype, data, ts_ns)

    # ------------------------------------------------------------------ general path
    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def _decode(self, linktype: int, data: bytes, ts_ns: int) -> Segment | str:
        link = LINK_DECODERS.get(linktype)
        if link is None:
            return f"linktype-unsupported:{linktype}"
        try:
            etype, off = link(data)
            return self._network(etype, data, off, len(data), ts_ns, 0)
        except DissectError as err:
            return f"{err.reason}-{err.layer or 'link'}"

    def _network(
        self, etype: int, data: bytes, off: int, end: int, ts_ns: int, depth: int
    ) -> Segment | str:
        """From an EtherType at ``off`` (shims still to peel) to the transport layer."""
        if etype != ETH_IPV4 and etype != ETH_IPV6:
            etype, off = resolve(etype, data[:end], off, self.stats)
        if etype == ETH_IPV4:
            version = 4
            proto, src, dst, poff, pend, frag, truncated = ipv4(data, off, end)
        elif etype == ETH_IPV6:
            version = 6
            proto, src, dst, poff, pend, frag, truncated = ipv6(data, off, end)
        else:
            return "non-ip"
        if frag is not None:
            ident, foff, more = frag
            if version == 6 and foff == 0 and not more:  # atomic fragment (RFC 6946)
                proto, poff, frag = ipv6_ext(proto, data, poff, pend)
                if frag is not None:
                    self._count("frag-nested-header")
                    return DROPPED
            else:
                if truncated:  # a fragment cut by the snap length can never be completed
                    self._count("frag-truncated")
                    return DROPPED
                if version == 4:
                    key = src + dst + bytes((proto,)) + ident.to_bytes(2, "big")
                else:
                    key = src + dst + ident.to_bytes(4, "big")
                got = self._frags.add(key, foff, more, data[poff:pend], proto, ts_ns, version == 6)
                if isinstance(got, str):
                    return got
                proto, data = got
                poff, pend = 0, len(data)
                if version == 6:
                    proto, poff, frag = ipv6_ext(proto, data, 0, pend)
                    if frag is not None:
                        self._count("frag-nested-header")
                        return DROPPED
        return self._transport(version, proto, src, dst, data, poff, pend, truncated, ts_ns, depth)

    def _transport(
        self,
        version: int,
        proto: int,
        src: bytes,
        dst: bytes,
        data: bytes,
        off: int,
        end: int,
        truncated: bool,
        ts_ns: int,
        depth: int,
    ) -> Segment | str:
        if version == 4 and proto == PROTO_AH:
            proto, off, frag = ipv6_ext(proto, data, off, end)
            if frag is not None:
                return "not-tcp-udp"
        if truncated:
            self._count("payload-truncated")
        if proto == PROTO_TCP:
            sport, dport, seq, ack, flags, start = tcp(data, off, end)
            return Segment(
                6, version, src, dst, sport, dport, seq, ack, flags, data[start:end], truncated
            )
        if proto == PROTO_UDP:
            sport, dport, uend, overlong = udp(data, off, end)
            if overlong and not truncated:
                self._count("udp-length-exceeds-ip")
            seg = Segment(
                17, version, src, dst, sport, dport, 0, 0, 0, data[off + 8 : uend], truncated
            )
            tunnel = UDP_TUNNELS.get(dport) or UDP_TUNNELS.get(sport)
            if tunnel is None:
                return seg
            return self._udp_tunnel(tunnel, seg, data, off + 8, uend, ts_ns, depth)
        kind = _IP_TUNNELS.get((version, proto))
        if kind is not None or proto == PROTO_GRE:
            if depth >= MAX_TUNNEL_DEPTH:
                self._count("tunnel-depth")
                return "tunnel-depth"
            if kind is not None:
                etype = ETH_IPV4 if proto == PROTO_IPIP else ETH_IPV6
            else:
                kind, etype, off = gre(data, off, end)
            self._count("tunnel:" + kind)
            return self._network(etype, data, off, end, ts_ns, depth + 1)
        if proto == PROTO_ESP:
            return "esp"
        return "not-tcp-udp"

    def _udp_tunnel(
        self,
        tunnel: tuple[str, TunnelDecoder],
        outer: Segment,
        data: bytes,
        off: int,
        end: int,
        ts_ns: int,
        depth: int,
    ) -> Segment | str:
        """The inner packet of a UDP tunnel port, or the outer datagram when it is not one."""
        kind, decoder = tunnel
        if depth >= MAX_TUNNEL_DEPTH:
            self._count("tunnel-depth")
            return outer
        try:
            etype, off = decoder(data, off, end)
            inner = self._network(etype, data, off, end, ts_ns, depth + 1)
        except DissectError as err:
            self._count(f"tunnel-fallback:{kind}:{err.reason}-{err.layer or 'link'}")
            inner = "non-ip"
        if inner == "non-ip":
            self._count("tunnel-fallback:" + kind)
            return outer
        self._count("tunnel:" + kind)
        return inner
