"""The encapsulations mirror ports and fabrics add: each decodes to the unwrapped frame's segment.

Cisco MetaData (SGT), VN-Tag, 802.1BR E-tag, 802.1ah PBB, NSH (RFC 8300), VXLAN-GPE, CAPWAP
data (RFC 5415; 802.3 and 802.11 payloads) and TZSP. The inner frames are real (a TLS
ClientHello and a QUIC Initial over IPv4 and IPv6, from captures/); the outer headers come
from captures/tools/span_wrap.py (the device's encapsulation, scapy where it has the layer)
or are built here from the specification. Malformed and truncated headers give a counted
reason (or, on a UDP tunnel port, the outer datagram and a counted fallback with the reason),
never an exception.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netframes import read_frames
from scapy.contrib.nsh import NSH
from scapy.contrib.tzsp import TZSP, TZSPTagEnd, TZSPTagRawRSSIByte, TZSPTagSNRByte
from scapy.layers.dot11 import Dot11, Dot11QoS
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import LLC, SNAP, Dot1AD, Dot1AH, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from alpnsniff.net.decode import MAX_TUNNEL_DEPTH, PacketDecoder
from alpnsniff.net.link import MAX_SHIM_HEADERS
from alpnsniff.net.segment import Segment
from alpnsniff.net.tunnels import MAX_TZSP_TAGS, TUNNEL_UDP_PORTS

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
# name -> (capture, frame number): real Ethernet frames
REAL = {
    "tcp4": ("openssl_tls12_h2.pcap", 4),  # TLS 1.2 ClientHello over 127.0.0.1
    "udp4": ("aioquic_h3_v1.pcap", 1),  # QUIC v1 Initial
    "tcp6": ("openssl_aioquic_ipv6.pcap", 4),  # ClientHello over ::1
    "udp6": ("openssl_aioquic_ipv6.pcap", 22),  # QUIC Initial over ::1
}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load_span_wrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("span_wrap", CAPTURES / "tools" / "span_wrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["span_wrap"] = module
    spec.loader.exec_module(module)
    return module


SPAN = _load_span_wrap()
FRAMES = {name: read_frames(CAPTURES / cap)[n - 1][1] for name, (cap, n) in REAL.items()}


def _plain(name: str) -> Segment:
    got = PacketDecoder().decode(1, FRAMES[name], 0)
    assert isinstance(got, Segment)
    return got


def _decode(frame: bytes) -> tuple[Segment | str, dict[str, int]]:
    decoder = PacketDecoder()
    got = decoder.decode(1, frame, 0)
    assert got == PacketDecoder()._decode(1, frame, 0)  # the fast path agrees with the general
    return got, decoder.stats


# Every Ether() names both addresses: scapy would otherwise ARP for the IP destination.
MAC_A, MAC_B = "02:00:00:00:0b:01", "02:00:00:00:0b:02"


def _eth(etype: int, payload: Packet | bytes) -> bytes:
    return bytes(Ether(src=MAC_A, dst=MAC_B, type=etype) / payload)


def _udp(dport: int, payload: Packet | bytes) -> bytes:
    return _eth(0x0800, IP(src="192.0.2.10", dst="192.0.2.1") / UDP(sport=32769, dport=dport)
                / payload)  # fmt: skip


def _ip(name: str) -> bytes:
    return FRAMES[name][14:]


def _version_proto(name: str) -> int:
    return 1 if FRAMES[name][12:14] == b"\x08\x00" else 2  # NSH / GPE next protocol


# --- each encapsulation, as the device makes it (span_wrap), gives the inner segment --------

COUNTS = {  # the encapsulation -> what the decoder counts for it
    "cisco-metadata": {"cisco-metadata": 1},
    "vntag": {"vn-tag": 1},
    "etag": {"e-tag": 1},
    "pbb": {"qinq": 1, "pbb": 1},
    "nsh": {"nsh": 1, "bridged-ethernet": 1},
    "vxlan-gpe": {"tunnel:vxlan-gpe": 1},
    "vxlan-gpe-nsh": {"tunnel:vxlan-gpe": 1, "nsh": 1, "bridged-ethernet": 1},
    "capwap": {"tunnel:capwap": 1, "bridged-ethernet": 1},
    "capwap-80211": {"tunnel:capwap": 1},
    "capwap-80211-rfc": {"tunnel:capwap": 1},
    "tzsp": {"tunnel:tzsp": 1, "bridged-ethernet": 1},
}


def test_every_encapsulation_is_tested() -> None:
    assert set(COUNTS) == set(SPAN.WRAPS)
    assert {4790, 5247, 37008} <= TUNNEL_UDP_PORTS
    assert {4789, 6081, 2152, 3544} <= TUNNEL_UDP_PORTS


@pytest.mark.parametrize("name", sorted(REAL))
@pytest.mark.parametrize("encap", sorted(COUNTS))
def test_wrapped_frame_decodes_to_the_inner_segment(encap: str, name: str) -> None:
    for up in (True, False):
        frame = SPAN.WRAPS[encap](FRAMES[name], up)
        got, stats = _decode(frame)
        assert got == _plain(name), (encap, up)
        assert stats == COUNTS[encap]


# --- variants the captures do not show --------------------------------------------------------


def _variants(name: str) -> dict[str, bytes]:
    frame, ip = FRAMES[name], _ip(name)
    etype = frame[12:14]
    np = _version_proto(name)
    tag = b"\x01\x01\x00\x01\x00\x0a"  # Cisco MetaData, SGT 10
    dot11 = SPAN.to_80211(frame, True)
    wds = bytes(
        Dot11(type=2, subtype=0, FCfield=0x03, addr1="02:00:00:00:0a:01",
              addr2="02:00:00:00:0a:02", addr3=frame[0:6].hex(":"), addr4=frame[6:12].hex(":"))
        / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(code=int.from_bytes(etype, "big")) / Raw(ip)
    )  # fmt: skip
    qos_htc = bytes(
        Dot11(type=2, subtype=8, FCfield=0x81, addr1="02:00:00:00:0a:01",
              addr2=frame[6:12].hex(":"), addr3=frame[0:6].hex(":"))
        / Dot11QoS(TID=5) / Raw(b"\x00\x00\x00\x00")  # HT control
        / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(code=int.from_bytes(etype, "big")) / Raw(ip)
    )  # fmt: skip
    # CAPWAP with a radio MAC address (M: length 6, padded to 8) and wireless info (W: 4 bytes)
    mw = (5 << 19 | 1 << 14 | 1 << 9 | 0x100 | 0x20 | 0x10).to_bytes(3, "big")
    capwap_mw = b"\x00" + mw + bytes(4) + b"\x06" + bytes(6) + b"\x00" + b"\x03\x01\x02\x03"
    return {
        "vlan then cisco-metadata": frame[:12] + b"\x81\x00\x00\x0a\x89\x09" + tag + frame[12:],
        "cisco-metadata then vlan": frame[:12]
        + b"\x89\x09"
        + tag
        + b"\x81\x00\x00\x0a"
        + frame[12:],
        "vn-tag then vlan": frame[:12] + b"\x89\x26\x80\x05\x00\x00\x81\x00\x00\x14" + frame[12:],
        "e-tag then qinq": frame[:12]
        + b"\x89\x3f"
        + bytes(6)
        + b"\x88\xa8\x00\x64\x81\x00\x00\x14"
        + frame[12:],
        "pbb without b-tag": _eth(0x88E7, Dot1AH(isid=7) / Raw(frame)),
        "pbb, customer vlan": bytes(
            Ether(src=MAC_A, dst=MAC_B, type=0x88A8)
            / Dot1AD(vlan=1, type=0x88E7)
            / Dot1AH(isid=7)
            / Raw(frame[:12] + b"\x81\x00\x00\x0a" + frame[12:])
        ),
        "nsh md1 ip": _eth(0x894F, NSH(mdtype=1, nextproto=np, context_header=bytes(16)) / Raw(ip)),
        "nsh md2 no metadata ip": _eth(0x894F, NSH(mdtype=2, nextproto=np) / Raw(ip)),
        "nsh in nsh": _eth(
            0x894F, NSH(mdtype=2, nextproto=4) / NSH(mdtype=2, nextproto=3) / Raw(frame)
        ),
        "vxlan-gpe ethernet": _udp(4790, VXLAN(flags=0x0C, NextProtocol=3, vni=1) / Raw(frame)),
        "vxlan-gpe without P (ethernet)": _udp(4790, VXLAN(flags=0x08, vni=1) / Raw(frame)),
        "vxlan-gpe nsh ip": _udp(
            4790, VXLAN(flags=0x0C, NextProtocol=4) / NSH(mdtype=2, nextproto=np) / Raw(ip)
        ),
        "vxlan-gpe mpls": _udp(4790, b"\x0c\x00\x00\x05\x00\x00\x01\x00\x00\x01\x01\x40" + ip),
        "vxlan-gpe on the source port": bytes(
            Ether(src=MAC_A, dst=MAC_B)
            / IP(src="192.0.2.1", dst="192.0.2.10")
            / UDP(sport=4790, dport=40000)
            / VXLAN(flags=0x0C, NextProtocol=3)
            / Raw(frame)
        ),
        "capwap radio mac + wireless info, 802.11": _udp(5247, capwap_mw + dot11),
        "capwap 802.11 wds (4 addresses, no qos)": _udp(5247, SPAN._capwap_header(True) + wds),
        "capwap 802.11 qos +htc": _udp(5247, SPAN._capwap_header(True) + qos_htc),
        "tzsp tags then ethernet": _udp(
            37008,
            TZSP()
            / TZSPTagRawRSSIByte(raw_rssi=200)
            / TZSPTagSNRByte(snr=30)
            / TZSPTagEnd()
            / Raw(frame),
        ),
        "tzsp 802.11": _udp(37008, b"\x01\x00\x00\x12\x00\x01" + dot11),
        "tzsp for transmit": _udp(37008, b"\x01\x01\x00\x01\x01" + frame),
    }


@pytest.mark.parametrize("name", sorted(REAL))
def test_variants_decode_to_the_inner_segment(name: str) -> None:
    for variant, frame in _variants(name).items():
        got, _ = _decode(frame)
        assert got == _plain(name), variant


# --- malformed and truncated headers: a counted reason, never an exception ------------------


def _l2_cases() -> dict[str, tuple[bytes, str]]:
    frame = FRAMES["tcp4"]
    ip = _ip("tcp4")
    return {
        "cmd version 2": (frame[:12] + b"\x89\x09\x02\x01\x00\x01\x00\x0a" + frame[12:],
                          "unsupported-cisco-metadata"),
        "cmd length 0": (frame[:12] + b"\x89\x09\x01\x00\x00\x01\x00\x0a" + frame[12:],
                         "malformed-cisco-metadata"),
        "cmd length past the frame": (frame[:12] + b"\x89\x09\x01\xff" + bytes(6),
                                      "truncated-cisco-metadata"),
        "cmd cut": (frame[:12] + b"\x89\x09\x01\x01\x00", "truncated-cisco-metadata"),
        "vn-tag cut": (frame[:12] + b"\x89\x26\x00\x00\x00", "truncated-vn-tag"),
        "e-tag cut": (frame[:12] + b"\x89\x3f" + bytes(7), "truncated-e-tag"),
        "pbb cut": (_eth(0x88E7, b"\x00\x00\x00\x07" + frame[:10]), "truncated-pbb"),
        "nsh version 1": (_eth(0x894F, b"\x40" + bytes(NSH(mdtype=2, nextproto=1))[1:] + ip),
                          "unsupported-nsh"),
        "nsh md1 of length 2": (_eth(0x894F, b"\x0f\xc2\x01\x01\x00\x00\x01\xff" + ip),
                                "malformed-nsh"),
        "nsh length 1": (_eth(0x894F, b"\x0f\xc1\x02\x01\x00\x00\x01\xff" + ip), "malformed-nsh"),
        "nsh next protocol 0x42": (_eth(0x894F, bytes(NSH(mdtype=2, nextproto=0x42)) + ip),
                                   "unsupported-nsh"),
        "nsh context past the frame": (_eth(0x894F, b"\x0f\xff\x02\x01\x00\x00\x01\xff" + ip[:20]),
                                       "truncated-nsh"),
        "nsh cut": (_eth(0x894F, b"\x0f\xc6\x01"), "truncated-nsh"),
        "nsh mpls, not ip": (_eth(0x894F, bytes(NSH(mdtype=2, nextproto=5))
                                  + b"\x00\x01\x01\x40" + bytes(40)), "unsupported-mpls"),
        "nsh chain": (_eth(0x894F, bytes(NSH(mdtype=2, nextproto=4)) * (MAX_SHIM_HEADERS + 1)
                           + ip), "malformed-link"),
        "nsh ethernet carrying arp": (_eth(0x894F, bytes(NSH(mdtype=2, nextproto=3))
                                           + frame[:12] + b"\x08\x06" + bytes(28)), "non-ip"),
    }  # fmt: skip


def test_malformed_shims_give_their_reason() -> None:
    for case, (frame, reason) in _l2_cases().items():
        got, _ = _decode(frame)
        assert got == reason, case


def _udp_cases() -> dict[str, tuple[bytes, str]]:
    frame = FRAMES["tcp4"]
    ip = _ip("tcp4")
    cw = SPAN._capwap_header
    dot11 = SPAN.to_80211(frame, True)
    protected = dot11[:1] + bytes((dot11[1] | 0x40,)) + dot11[2:]
    amsdu = dot11[:24] + b"\x80\x00" + dot11[26:]
    beacon = bytes(Dot11(type=0, subtype=8)) + bytes(40)
    null = bytes(Dot11(type=2, subtype=4, FCfield=0x01))
    no_snap = dot11[:26] + b"\xe0\xe0\x03" + dot11[29:]
    return {  # what fell back -> the reason counted beside "tunnel-fallback:<kind>"
        "gpe version 1": (_udp(4790, b"\x1c\x00\x00\x01" + bytes(4) + ip), "unsupported-vxlan-gpe"),
        "gpe next protocol 9": (_udp(4790, b"\x0c\x00\x00\x09" + bytes(4) + ip),
                                "unsupported-vxlan-gpe"),
        "gpe cut": (_udp(4790, b"\x0c\x00\x00\x01\x00"), "truncated-vxlan-gpe"),
        "gpe nsh cut": (_udp(4790, b"\x0c\x00\x00\x04" + bytes(4) + b"\x0f\xc2"), "truncated-nsh"),
        "gpe inner ip cut": (_udp(4790, b"\x0c\x00\x00\x01" + bytes(4) + ip[:30]), "truncated-tcp"),
        "capwap dtls": (_udp(5247, b"\x01" + bytes(40)), "unsupported-capwap"),
        "capwap version 1": (_udp(5247, b"\x10" + cw(False)[1:] + frame), "unsupported-capwap"),
        "capwap preamble type 2": (_udp(5247, b"\x02" + cw(False)[1:] + frame),
                                   "malformed-capwap"),
        "capwap hlen 1": (_udp(5247, b"\x00\x08\x00\x00" + bytes(4) + frame), "malformed-capwap"),
        "capwap hlen past the datagram": (_udp(5247, b"\x00\xf8\x00\x00" + bytes(8)),
                                          "truncated-capwap"),
        "capwap fragment": (_udp(5247, b"\x00\x10\x00\x80" + bytes(4) + frame),
                            "unsupported-capwap"),
        "capwap binding 3": (_udp(5247, b"\x00\x10\x07\x00" + bytes(4) + frame),
                             "unsupported-capwap"),
        "capwap cut": (_udp(5247, b"\x00\x10\x00"), "truncated-capwap"),
        "capwap 802.11 protected": (_udp(5247, cw(True) + protected), "unsupported-wlan"),
        "capwap 802.11 a-msdu": (_udp(5247, cw(True) + amsdu), "unsupported-wlan"),
        "capwap 802.11 cut": (_udp(5247, cw(True) + dot11[:20]), "truncated-wlan"),
        "capwap 802.11 llc cut": (_udp(5247, cw(True) + dot11[:29]), "truncated-wlan"),
        "capwap 802.11 version 2": (_udp(5247, cw(True) + b"\x8a\x8a" + dot11[2:]),
                                    "unsupported-wlan"),
        "tzsp version 2": (_udp(37008, b"\x02\x00\x00\x01\x01" + frame), "unsupported-tzsp"),
        "tzsp keep-alive": (_udp(37008, b"\x01\x04\x00\x01\x01"), "unsupported-tzsp"),
        "tzsp prism": (_udp(37008, b"\x01\x00\x00\x77\x01" + bytes(144)), "unsupported-tzsp"),
        "tzsp no end tag": (_udp(37008, b"\x01\x00\x00\x01\x00\x00"), "truncated-tzsp"),
        "tzsp tag past the datagram": (_udp(37008, b"\x01\x00\x00\x01\x0a\xff\x00"),
                                       "truncated-tzsp"),
        "tzsp padding run": (_udp(37008, b"\x01\x00\x00\x01" + bytes(MAX_TZSP_TAGS) + b"\x01"
                                  + frame), "malformed-tzsp"),
    } | {  # fell back without an error: the payload is a frame, but not an IP one
        "capwap keep-alive": (_udp(5247, b"\x00\x10\x00\x08" + bytes(4) + b"\x00\x02"), ""),
        "capwap 802.11 beacon": (_udp(5247, cw(True) + beacon), ""),
        "capwap 802.11 null data": (_udp(5247, cw(True) + null), ""),
        "capwap 802.11 without snap": (_udp(5247, cw(True) + no_snap), ""),
        "tzsp arp": (_udp(37008, b"\x01\x00\x00\x01\x01" + frame[:12] + b"\x08\x06" + bytes(28)),
                     ""),
    }  # fmt: skip


KIND = {4790: "vxlan-gpe", 5247: "capwap", 37008: "tzsp"}


def test_malformed_udp_tunnels_are_the_outer_datagram_and_counted() -> None:
    for case, (frame, reason) in _udp_cases().items():
        got, stats = _decode(frame)
        assert isinstance(got, Segment), case
        kind = KIND[got.dport]
        assert (got.proto, got.sport, got.payload) == (17, 32769, frame[42:]), case
        want = {f"tunnel-fallback:{kind}": 1}
        if reason:
            want[f"tunnel-fallback:{kind}:{reason}"] = 1
        assert {k: v for k, v in stats.items() if k.startswith("tunnel")} == want, case


def test_capwap_frame_control_order_is_told_apart() -> None:
    """Both orders (RFC, and Cisco's swapped bytes) of the same 802.11 frame, both directions."""
    for up in (True, False):
        rfc = SPAN.WRAPS["capwap-80211-rfc"](FRAMES["tcp4"], up)
        cisco = SPAN.WRAPS["capwap-80211"](FRAMES["tcp4"], up)
        assert rfc != cisco and rfc[50:52] == cisco[51:49:-1]
        assert _decode(rfc)[0] == _decode(cisco)[0] == _plain("tcp4")


def test_nested_vxlan_gpe_is_bounded() -> None:
    packet = _ip("tcp4")
    for level in range(MAX_TUNNEL_DEPTH + 1):
        packet = bytes(IP(src="192.0.2.1", dst=f"192.0.2.{level + 2}") / UDP(sport=40000, dport=4790)
                       / VXLAN(flags=0x0C, NextProtocol=1) / Raw(packet))  # fmt: skip
    got, stats = _decode(_eth(0x0800, packet))
    assert isinstance(got, Segment) and got.dport == 4790 and got.payload[:4] == b"\x0c\x00\x00\x01"
    assert stats["tunnel-depth"] == 1 and stats["tunnel:vxlan-gpe"] == MAX_TUNNEL_DEPTH


def test_every_cut_of_every_encapsulation_is_a_reason_or_a_segment() -> None:
    """Each wrapped frame cut at every length: the same answer from the fast and general
    paths, a reason string or a segment (flagged truncated once the cut reaches the payload),
    never an exception."""
    for encap, wrap in SPAN.WRAPS.items():
        frame = wrap(FRAMES["tcp4"], True)
        for cut in range(len(frame)):
            got, _ = _decode(frame[:cut])
            assert isinstance(got, (str, Segment)), (encap, cut)
            if isinstance(got, str):
                assert got and len(got) < 64


HEADS = [
    FRAMES["tcp4"][:12] + b"\x89\x09",
    FRAMES["tcp4"][:12] + b"\x89\x26",
    FRAMES["tcp4"][:12] + b"\x89\x3f",
    FRAMES["tcp4"][:12] + b"\x88\xe7",
    FRAMES["tcp4"][:12] + b"\x89\x4f",
    _udp(4790, b"")[:42],
    _udp(5247, b"")[:42],
    _udp(37008, b"")[:42],
]


@FUZZ
@given(st.sampled_from(HEADS), st.binary(max_size=200))
def test_random_bytes_after_each_encapsulation_never_raise(head: bytes, tail: bytes) -> None:
    frame = head + tail
    if len(head) == 42:  # a valid UDP length over the random tail
        n = 8 + len(tail)
        frame = (
            head[:16]
            + (20 + n).to_bytes(2, "big")
            + head[18:38]
            + n.to_bytes(2, "big")
            + (head[40:] + tail)
        )
    got, _ = _decode(frame)
    assert isinstance(got, (str, Segment))
