"""Real IP packets, re-framed in every link layer and tunnel the decoder handles.

The inner packets are real (a TLS ClientHello and a QUIC Initial, over IPv4 and IPv6, from
../shared/realcap); scapy, an independent encoder, builds the encapsulations that the corpus
does not contain, and the tests check the result both against the inner packet's own fields
(parsed by scapy) and against tshark's view of the same frames.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from netframes import read_frames, shared
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from alpnsniff.net.segment import Segment

MAC_A = "02:00:00:00:00:01"
MAC_B = "02:00:00:00:00:02"
# Source of each inner packet: capture, frame number (1-based). All are Ethernet frames.
SOURCES = {
    "tcp4": ("openssl_tls12_alpn_h2.pcap", 4),  # TLS 1.2 ClientHello, 127.0.0.1
    "udp4": ("aioquic_h3_v1.pcap", 1),  # QUIC v1 Initial, 1200-byte datagram
    "tcp6": ("ipv6_openssl_tls12_and_aioquic_h3.pcap", 4),  # ClientHello over ::1
    "udp6": ("ipv6_openssl_tls12_and_aioquic_h3.pcap", 17),  # QUIC Initial over ::1
}


@dataclass(frozen=True)
class Inner:
    """A real IP packet and the segment it must decode to (fields read by scapy)."""

    name: str
    ip: bytes
    expected: Segment

    @property
    def ethertype(self) -> int:
        return 0x0800 if self.expected.ip_version == 4 else 0x86DD


def load_inner(name: str) -> Inner:
    capture, number = SOURCES[name]
    frame = read_frames(shared("realcap", capture))[number - 1][1]
    ip = frame[14:]
    pkt: Packet = IP(ip) if ip[0] >> 4 == 4 else IPv6(ip)
    family = socket.AF_INET if ip[0] >> 4 == 4 else socket.AF_INET6
    l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
    tcp = isinstance(l4, TCP)
    expected = Segment(
        6 if tcp else 17,
        ip[0] >> 4,
        socket.inet_pton(family, pkt.src),
        socket.inet_pton(family, pkt.dst),
        l4.sport,
        l4.dport,
        l4.seq if tcp else 0,
        l4.ack if tcp else 0,
        int(l4.flags) if tcp else 0,
        bytes(l4.payload),
    )
    return Inner(name, ip, expected)


def _eth(etype: int, payload: Packet | bytes) -> bytes:
    return bytes(Ether(src=MAC_A, dst=MAC_B, type=etype) / payload)


def _ip_outer(inner: Inner, proto: int, payload: Packet | bytes, v6: bool = False) -> bytes:
    if v6:
        return _eth(0x86DD, IPv6(src="2001:db8::1", dst="2001:db8::2", nh=proto) / payload)
    return _eth(0x0800, IP(src="192.0.2.1", dst="192.0.2.2", proto=proto) / payload)


def _udp_outer(dport: int, payload: Packet | bytes, sport: int = 49152) -> bytes:
    return _eth(
        0x0800, IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=sport, dport=dport) / payload
    )


def _inner_eth(inner: Inner) -> Packet:
    return Ether(src=MAC_A, dst=MAC_B, type=inner.ethertype) / Raw(inner.ip)


def _ppp_proto(inner: Inner) -> int:
    return 0x0021 if inner.expected.ip_version == 4 else 0x0057


Builder = Callable[[Inner], bytes]

# Ethernet (LINKTYPE 1) frames: name -> builder of the frame around one inner packet.
ETHERNET: dict[str, Builder] = {
    "plain": lambda i: _eth(i.ethertype, Raw(i.ip)),
    "vlan": lambda i: _eth(0x8100, Dot1Q(vlan=100, type=i.ethertype) / Raw(i.ip)),
    "qinq-88a8": lambda i: _eth(
        0x88A8, Dot1AD(vlan=10, type=0x8100) / Dot1Q(vlan=20, type=i.ethertype) / Raw(i.ip)
    ),
    "qinq-9100": lambda i: _eth(
        0x9100, Dot1Q(vlan=10, type=0x8100) / Dot1Q(vlan=20, type=i.ethertype) / Raw(i.ip)
    ),
    "pppoe": lambda i: _eth(0x8864, PPPoE(sessionid=0x1234) / PPP(proto=_ppp_proto(i)) / Raw(i.ip)),
    "mpls": lambda i: _eth(0x8847, MPLS(label=16, s=0) / MPLS(label=17, s=1) / Raw(i.ip)),
    "vlan-mpls": lambda i: _eth(
        0x8100, Dot1Q(vlan=7, type=0x8847) / MPLS(label=99, s=1) / Raw(i.ip)
    ),
    "gre": lambda i: _ip_outer(i, 47, GRE(proto=i.ethertype) / Raw(i.ip)),
    "gre-key-seq-csum": lambda i: _ip_outer(
        i,
        47,
        GRE(
            chksum_present=1,
            key_present=1,
            seqnum_present=1,
            key=7,
            sequence_number=9,
            proto=i.ethertype,
        )
        / Raw(i.ip),
    ),
    "gre-over-ipv6": lambda i: _ip_outer(i, 47, GRE(proto=i.ethertype) / Raw(i.ip), v6=True),
    "gre-teb": lambda i: _ip_outer(i, 47, GRE(proto=0x6558) / _inner_eth(i)),
    "erspan-1": lambda i: _ip_outer(i, 47, GRE(proto=0x88BE) / _inner_eth(i)),
    "erspan-2": lambda i: _ip_outer(
        i, 47, GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_II(session_id=5) / _inner_eth(i)
    ),
    "erspan-3": lambda i: _ip_outer(
        i, 47, GRE(seqnum_present=1, proto=0x22EB) / ERSPAN_III(session_id=5) / _inner_eth(i)
    ),
    "erspan-3-platform": lambda i: _ip_outer(
        i,
        47,
        GRE(seqnum_present=1, proto=0x22EB)
        / ERSPAN_III(session_id=5, o=1)
        / ERSPAN_PlatformSpecific(platf_id=3)
        / _inner_eth(i),
    ),
    "ip-in-ipv4": lambda i: _ip_outer(i, 4 if i.expected.ip_version == 4 else 41, Raw(i.ip)),
    "ip-in-ipv6": lambda i: _ip_outer(
        i, 4 if i.expected.ip_version == 4 else 41, Raw(i.ip), v6=True
    ),
    "vxlan": lambda i: _udp_outer(4789, VXLAN(vni=42, flags=0x08) / _inner_eth(i)),
    "geneve-ethernet": lambda i: _udp_outer(
        6081, GENEVE(vni=5, proto=0x6558, options=b"\x01\x02\x03\x04" * 2) / _inner_eth(i)
    ),
    "geneve-ip": lambda i: _udp_outer(6081, GENEVE(vni=5, proto=i.ethertype) / Raw(i.ip)),
    "gtp-u": lambda i: _udp_outer(2152, GTP_U_Header(teid=1, gtp_type=255) / Raw(i.ip), 2152),
    "gtp-u-seq-ext": lambda i: _udp_outer(
        2152,
        GTP_U_Header(teid=1, gtp_type=255, E=1, S=1, seq=77, next_ex=0x85)
        / GTPPDUSessionContainer(type=1, QFI=9)
        / Raw(i.ip),
        2152,
    ),
    "vlan-gre-vxlan": lambda i: _eth(
        0x8100,
        Dot1Q(vlan=3, type=0x0800)
        / IP(src="192.0.2.1", dst="192.0.2.2", proto=47)
        / GRE(proto=0x0800)
        / IP(src="198.51.100.1", dst="198.51.100.2")
        / UDP(sport=50000, dport=4789)
        / VXLAN(vni=1, flags=0x08)
        / _inner_eth(i),
    ),
}


def _v6_ext_chain(inner: Inner) -> bytes:
    """The inner IPv6 packet with hop-by-hop, routing and destination options inserted."""
    fixed, rest = inner.ip[:40], inner.ip[40:]
    nh = fixed[6]
    chain = bytes(
        IPv6ExtHdrHopByHop(nh=43)
        / IPv6ExtHdrRouting(nh=51, type=0, addresses=[])
        / AH(nh=60, spi=1, seq=1, icv=b"\x00" * 12)
        / IPv6ExtHdrDestOpt(nh=nh)
    )
    plen = len(chain) + len(rest)
    head = fixed[:4] + struct.pack("!HB", plen, 0) + fixed[7:]
    return head + chain + rest


def ipv6_with_extensions(inner: Inner) -> bytes:
    return _eth(0x86DD, Raw(_v6_ext_chain(inner)))


def _sll(inner: Inner) -> bytes:
    return bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=inner.ethertype)) + (
        inner.ip
    )


def _sll2(inner: Inner) -> bytes:
    return bytes(CookedLinuxV2(proto=inner.ethertype, ifindex=2, lladdrtype=1, lladdrlen=6)) + (
        inner.ip
    )


def _null(family_v6: int, order: str) -> Builder:
    def build(inner: Inner) -> bytes:
        family = 2 if inner.expected.ip_version == 4 else family_v6
        return family.to_bytes(4, order) + inner.ip  # type: ignore[arg-type]

    return build


def _ppp(header: bytes) -> Builder:
    def build(inner: Inner) -> bytes:
        return header + _ppp_proto(inner).to_bytes(2, "big") + inner.ip

    return build


def _ppp_compressed(inner: Inner) -> bytes:
    return bytes((_ppp_proto(inner),)) + inner.ip  # protocol field compression (1 byte)


# Other link types: (LINKTYPE, name) -> builder. 228/229 take only their own IP version.
LINKS: dict[tuple[int, str], Builder] = {
    (0, "null-le-linux"): _null(10, "little"),
    (0, "null-le-freebsd"): _null(28, "little"),
    (0, "null-be-openbsd"): _null(24, "big"),
    (108, "loop-darwin"): _null(30, "big"),
    (9, "ppp"): _ppp(b""),
    (9, "ppp-ff03"): _ppp(b"\xff\x03"),
    (9, "ppp-compressed"): _ppp_compressed,
    (50, "ppp-hdlc"): _ppp(b"\xff\x03"),
    (104, "cisco-hdlc"): lambda i: b"\x0f\x00" + i.ethertype.to_bytes(2, "big") + i.ip,
    (101, "raw"): lambda i: i.ip,
    (12, "raw-openbsd"): lambda i: i.ip,
    (14, "raw-bsdos"): lambda i: i.ip,
    (113, "linux-sll"): _sll,
    (276, "linux-sll2"): _sll2,
}
RAW_BY_VERSION = {4: 228, 6: 229}
