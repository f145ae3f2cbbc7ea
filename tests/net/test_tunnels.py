"""Tunnels: the real ones in the corpus, the limits, and UDP tunnel ports that carry no tunnel."""

from __future__ import annotations

import ipaddress

import pytest
from netframes import read_frames, shared
from scapy.contrib.gtp import GTP_U_Header
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from wrapped import MAC_A, MAC_B, SOURCES, Inner, load_inner

from alpnsniff.net.decode import MAX_TUNNEL_DEPTH, PacketDecoder
from alpnsniff.net.link import MAX_SHIM_HEADERS
from alpnsniff.net.segment import Segment
from alpnsniff.net.tunnels import MAX_GTP_EXT_HEADERS

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def inners() -> dict[str, Inner]:
    return {name: load_inner(name) for name in SOURCES}


def _eth(payload: object, etype: int = 0x0800) -> bytes:
    return bytes(Ether(src=MAC_A, dst=MAC_B, type=etype) / payload)


def _udp(dport: int, payload: object, sport: int = 40000) -> bytes:
    return _eth(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=sport, dport=dport) / payload)


def test_real_gtp_u_in_qinq() -> None:
    """nDPI__tls_invalid_reads: TCP inside GTP-U inside two 802.1Q tags (frames 10-12)."""
    frames = read_frames(shared("corpus", "pcaps", "nDPI__tls_invalid_reads.pcapng"))
    decoder = PacketDecoder()
    got = [decoder.decode(lt, frame, 0) for lt, frame in frames]
    syn, synack, hello = got[9], got[10], got[11]
    assert isinstance(syn, Segment) and isinstance(synack, Segment) and isinstance(hello, Segment)
    client = ipaddress.ip_address("10.191.139.17").packed
    server = ipaddress.ip_address("54.221.224.45").packed
    assert (syn.src, syn.dst, syn.sport, syn.dport, syn.seq, syn.flags) == (
        client,
        server,
        58552,
        443,
        4178934942,
        0x02,
    )
    assert (synack.seq, synack.ack, synack.flags) == (442124315, 4178934943, 0x12)
    assert (hello.seq, len(hello.payload), hello.payload[:3]) == (4178934943, 183, b"\x16\x03\x01")
    assert decoder.stats["tunnel:gtp"] == 3
    assert decoder.stats["vlan"] == 6


def test_real_pptp_gre_and_teredo() -> None:
    """mercury__dns_packet.capture2: PPTP (enhanced GRE, PPP) and Teredo, none with TCP/UDP."""
    frames = read_frames(shared("corpus", "pcaps", "mercury__dns_packet.capture2.pcap"))
    decoder = PacketDecoder()
    got = {n: decoder.decode(*frames[n - 1], 0) for n in (3364, 3370, 3372, 3378, 3379, 3524)}
    assert got == {
        3364: "non-ip",  # PPP LCP
        3370: "non-ip",  # PPP PAP
        3372: "non-ip",  # PPP IPCP
        3378: "non-ip",  # GRE acknowledgment without a PPP frame
        3379: "not-tcp-udp",  # IPv4 ICMP inside PPP inside GRE
        3524: "not-tcp-udp",  # ICMPv6 over Teredo
    }
    bubble = decoder.decode(*frames[4660 - 1], 0)  # Teredo bubble with trailing bytes
    assert bubble == "not-tcp-udp"
    assert decoder.stats["tunnel:pptp"] == 5
    assert decoder.stats["tunnel:teredo"] == 2


def _nest_ipip(inner: Inner, depth: int) -> bytes:
    packet = inner.ip
    for level in range(depth):
        outer = IP(src=f"192.0.2.{level + 1}", dst="192.0.2.200", proto=4)
        packet = bytes(outer / Raw(packet))
    return _eth(Raw(packet))


def test_tunnel_depth_limit(inners: dict[str, Inner]) -> None:
    inner = inners["tcp4"]
    decoder = PacketDecoder()
    assert decoder.decode(1, _nest_ipip(inner, MAX_TUNNEL_DEPTH), 0) == inner.expected
    assert decoder.decode(1, _nest_ipip(inner, MAX_TUNNEL_DEPTH + 1), 0) == "tunnel-depth"
    assert decoder.decode(1, _nest_ipip(inner, 200), 0) == "tunnel-depth"
    assert decoder.stats["tunnel-depth"] == 2


def test_udp_tunnel_past_depth_limit_is_the_outer_datagram(inners: dict[str, Inner]) -> None:
    inner = inners["tcp4"]
    packet = inner.ip
    for _ in range(MAX_TUNNEL_DEPTH):
        packet = bytes(IP(src="192.0.2.1", dst="192.0.2.2", proto=4) / Raw(packet))
    frame = _eth(
        IP(src="198.51.100.1", dst="198.51.100.2")
        / UDP(sport=40000, dport=4789)
        / VXLAN(flags=0x08)
        / Ether(type=0x0800)
        / Raw(packet)
    )
    decoder = PacketDecoder()
    assert decoder.decode(1, frame, 0) == "tunnel-depth"  # VXLAN, then 4 x IP-in-IP: 5 levels
    nested = inner.ip
    for _ in range(MAX_TUNNEL_DEPTH + 1):
        nested = bytes(
            IP(src="192.0.2.1", dst="192.0.2.2")
            / UDP(sport=40000, dport=4789)
            / VXLAN(flags=0x08)
            / Ether(type=0x0800)
            / Raw(nested)
        )
    got = decoder.decode(1, _eth(Raw(nested)), 0)
    assert isinstance(got, Segment)
    assert (got.dport, got.payload[:1]) == (4789, b"\x08")  # the deepest VXLAN, not unwrapped
    assert decoder.stats["tunnel-depth"] == 2


def test_udp_tunnel_port_without_a_tunnel_is_plain_udp(inners: dict[str, Inner]) -> None:
    """QUIC on port 4789, a GTP echo, a GENEVE version 3 header, ARP in VXLAN: outer UDP."""
    quic = inners["udp4"].expected.payload
    decoder = PacketDecoder()
    cases = {
        "vxlan": _udp(4789, Raw(quic)),  # first byte 0xc0: VXLAN I flag (0x08) clear
        "gtp": _udp(2152, GTP_U_Header(gtp_type=1, teid=0) / Raw(b"\x00" * 4), sport=2152),
        "geneve": _udp(6081, Raw(b"\xc0\x00\x65\x58" + bytes(60))),
        "teredo": _udp(3544, Raw(quic)),
    }
    for kind, frame in cases.items():
        got = decoder.decode(1, frame, 0)
        assert isinstance(got, Segment), kind
        assert got.proto == 17 and got.ip_version == 4
        assert got.src == ipaddress.ip_address("192.0.2.1").packed
        assert got.payload == frame[42:], kind
        assert decoder.stats[f"tunnel-fallback:{kind}"] == 1
    arp = _udp(4789, VXLAN(flags=0x08) / Ether(src=MAC_A, dst=MAC_B) / ARP())
    got = decoder.decode(1, arp, 0)
    assert isinstance(got, Segment) and got.dport == 4789
    assert decoder.stats["tunnel-fallback:vxlan"] == 2


def test_vxlan_with_cut_inner_packet_is_the_outer_datagram(inners: dict[str, Inner]) -> None:
    inner = inners["tcp4"]
    frame = _udp(4789, VXLAN(flags=0x08) / Ether(type=0x0800) / Raw(inner.ip[:30]))
    got = PacketDecoder().decode(1, frame, 0)
    assert isinstance(got, Segment) and got.dport == 4789 and got.sport == 40000


def test_gtp_extension_chain_is_bounded(inners: dict[str, Inner]) -> None:
    """Extension headers of 4 bytes each, each naming another: the chain limit bites."""
    ext = b"\x01\x00\x00\x85" * (MAX_GTP_EXT_HEADERS + 1)
    gtp = b"\x34\xff" + (4 + len(ext) + len(inners["udp4"].ip)).to_bytes(2, "big") + bytes(4)
    gtp += b"\x00\x00\x00\x85" + ext + inners["udp4"].ip
    decoder = PacketDecoder()
    got = decoder.decode(1, _udp(2152, Raw(gtp), sport=2152), 0)
    assert isinstance(got, Segment) and got.dport == 2152  # not unwrapped
    short = b"\x01\x00\x00\x85" * MAX_GTP_EXT_HEADERS
    gtp = b"\x34\xff" + (4 + len(short) + len(inners["udp4"].ip)).to_bytes(2, "big")
    gtp += bytes(4) + b"\x00\x00\x00\x85" + short[:-1] + b"\x00" + inners["udp4"].ip
    assert decoder.decode(1, _udp(2152, Raw(gtp), sport=2152), 0) == inners["udp4"].expected


def test_unsupported_and_malformed_tunnels_are_named(inners: dict[str, Inner]) -> None:
    inner = inners["tcp4"]
    decoder = PacketDecoder()
    outer = IP(src="192.0.2.1", dst="192.0.2.2", proto=47)
    routed = _eth(outer / Raw(b"\x40\x00\x08\x00" + bytes(4) + inner.ip))
    assert decoder.decode(1, routed, 0) == "unsupported-gre"
    version2 = _eth(outer / Raw(b"\x00\x02\x08\x00" + inner.ip))
    assert decoder.decode(1, version2, 0) == "unsupported-gre"
    assert decoder.decode(1, _eth(outer / Raw(b"\x00\x00")), 0) == "truncated-gre"
    erspan_bad = _eth(outer / GRE(seqnum_present=1, proto=0x88BE) / Raw(b"\x50" + bytes(7)))
    assert decoder.decode(1, erspan_bad, 0) == "malformed-erspan"
    mpls_eth = _eth(MPLS(s=1) / Raw(b"\x00\x00\x00\x00" + bytes(60)), etype=0x8847)
    assert decoder.decode(1, mpls_eth, 0) == "unsupported-mpls"  # pseudowire, not IP
    deep_mpls = _eth(Raw(b"\x00\x01\x00\x40" * (MAX_SHIM_HEADERS + 1)), etype=0x8847)
    assert decoder.decode(1, deep_mpls, 0) == "malformed-mpls"
    tags = Dot1Q(vlan=1, type=0x8100)
    for _ in range(MAX_SHIM_HEADERS):
        tags = tags / Dot1Q(vlan=1, type=0x8100)
    assert decoder.decode(1, _eth(tags, etype=0x8100), 0) == "malformed-link"
    esp = _eth(IP(src="192.0.2.1", dst="192.0.2.2", proto=50) / Raw(bytes(40)))
    assert decoder.decode(1, esp, 0) == "esp"
    pppoe_bad = _eth(Raw(b"\x21\x00\x00\x01\x00\x10\x00\x21" + inner.ip), etype=0x8864)
    assert decoder.decode(1, pppoe_bad, 0) == "malformed-link"
    assert decoder.decode(1, _eth(Raw(bytes(20)), etype=0x8863), 0) == "non-ip"  # discovery


def test_ipv4_ah_is_skipped(inners: dict[str, Inner]) -> None:
    inner = inners["tcp4"]
    ip_header = bytearray(inner.ip[:20])
    ah = bytes([6, 4, 0, 0]) + bytes(20)  # next header TCP, (4 + 2) * 4 = 24 bytes
    body = ah + inner.ip[20:]
    ip_header[9] = 51
    ip_header[2:4] = (20 + len(body)).to_bytes(2, "big")
    got = PacketDecoder().decode(101, bytes(ip_header) + body, 0)
    assert got == inner.expected
