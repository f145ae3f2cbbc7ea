"""Every supported link type: real frames that carry it, and real packets re-framed in it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from netframes import compare_with_tshark, read_frames, shared, write_pcap
from wrapped import ETHERNET, LINKS, RAW_BY_VERSION, SOURCES, Inner, load_inner

from alpnsniff.net.decode import PacketDecoder
from alpnsniff.net.link import LINK_DECODERS
from alpnsniff.net.segment import Segment, flow_key

pytestmark = pytest.mark.shared


def _decode_frame(capture: str, number: int) -> Segment | str:
    frames = read_frames(shared("corpus", "pcaps", capture))
    decoder = PacketDecoder()
    got: Segment | str = "unread"
    for linktype, frame in frames[:number]:  # in order: fragments and state as in the file
        got = decoder.decode(linktype, frame, 0)
    return got


def _ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


# (capture, frame, linktype, proto, src, dst, sport, dport, seq, ack, flags, payload length,
#  payload start) -- values as tshark shows them for that frame.
# fmt: off
REAL_FRAMES = [
    ("illustrated-quic__capture.pcap", 1, 0, 17, "127.0.0.1", "127.0.0.1", 60220, 8400,
     0, 0, 0, 1200, "cd0000000108"),
    ("illustrated-tls13__archive_capture.pcap", 5, 0, 6, "127.0.0.1", "127.0.0.1", 51258,
     8400, 1620705376, 671387169, 0x18, 207, "16030100ca01"),
    ("suricata-verify__tls_tls-store-02_tls-client-auth.pcap", 5, 0, 6, "::1", "::1", 58606,
     8081, 1528953548, 2278927393, 0x18, 517, "160301020001"),
    ("mercury__sll_tls.pcap", 1, 113, 6, "172.31.84.252", "54.186.175.150", 49818, 443,
     2852785352, 2466111325, 0x18, 517, "160301020001"),
    ("nDPI__quic-v2.pcapng", 1, 113, 17, "::1", "::1", 42086, 4443, 0, 0, 0, 1232,
     "d66b3343cf08"),
    ("nDPI__bets.pcap", 4, 101, 6, "192.168.10.2", "13.224.103.22", 60099, 443, 65990935,
     2093106096, 0x18, 328, "160301014301"),
    ("suricata-verify__quic-ack3.pcap", 1, 101, 17, "10.84.1.49", "17.253.53.65", 60015,
     443, 0, 0, 0, 1350, "c00000000108"),
    ("zeek__ppp_quic-interop-retry.pcap", 5, 9, 17, "193.167.0.100", "193.167.100.100",
     42834, 443, 0, 0, 0, 1252, "cd0000000108"),
    ("arkime__mysql-tls.pcap", 4, 1, 6, "10.10.10.11", "10.10.10.10", 3306, 41324,
     2108254122, 2871374688, 0x18, 78, "4a0000000a35"),  # 802.1Q
    ("arkime__quicietf.pcap", 1, 1, 17, "2001:4998:ef5e:2b::12a0", "2607:f8b0:4004:835::2003",
     57349, 443, 0, 0, 0, 1330, "c70000000108"),  # 802.1Q, IPv6
]
# fmt: on


@pytest.mark.parametrize("row", REAL_FRAMES, ids=lambda r: f"{r[0]}#{r[1]}")
def test_real_frame_of_each_link_type(row: tuple[object, ...]) -> None:
    capture, number, linktype, proto, src, dst, sport, dport, seq, ack, flags, size, head = row
    assert isinstance(capture, str) and isinstance(number, int)
    assert read_frames(shared("corpus", "pcaps", capture))[0][0] == linktype
    seg = _decode_frame(capture, number)
    assert isinstance(seg, Segment)
    assert (seg.proto, seg.src, seg.dst, seg.sport, seg.dport) == (
        proto,
        _ip(str(src)),
        _ip(str(dst)),
        sport,
        dport,
    )
    assert (seg.seq, seg.ack, seg.flags, len(seg.payload)) == (seq, ack, flags, size)
    assert seg.payload.startswith(bytes.fromhex(str(head)))
    assert seg.ip_version == (6 if ":" in str(src) else 4)
    assert not seg.truncated


def test_raw_ipv4_linktype_228_fuzzed_fragment_is_held() -> None:
    """nDPI's fuzz regression: one first fragment (MF set) over LINKTYPE_IPV4, never completed."""
    frames = read_frames(shared("corpus", "pcaps", "nDPI__quic-fuzz-overflow.pcapng"))
    assert [lt for lt, _ in frames] == [228]
    decoder = PacketDecoder()
    assert decoder.decode(228, frames[0][1], 0) == "fragment-held"
    assert decoder.stats["frag-seen"] == 1


@pytest.fixture(scope="module")
def inners() -> dict[str, Inner]:
    return {name: load_inner(name) for name in SOURCES}


@pytest.mark.parametrize("key", list(LINKS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_real_packets_reframed_in_link_type(key: tuple[int, str], inners: dict[str, Inner]) -> None:
    linktype, _ = key
    decoder = PacketDecoder()
    for inner in inners.values():
        assert decoder.decode(linktype, LINKS[key](inner), 0) == inner.expected


@pytest.mark.parametrize("version", [4, 6])
def test_raw_ipv4_and_ipv6_link_types(version: int, inners: dict[str, Inner]) -> None:
    linktype = RAW_BY_VERSION[version]
    decoder = PacketDecoder()
    for inner in inners.values():
        got = decoder.decode(linktype, inner.ip, 0)
        if inner.expected.ip_version == version:
            assert got == inner.expected
        else:
            assert got == "malformed-ip"  # an IPv6 packet on LINKTYPE_IPV4 and vice versa


@pytest.mark.parametrize("name", list(ETHERNET))
def test_ethernet_shims_and_tunnels(name: str, inners: dict[str, Inner]) -> None:
    decoder = PacketDecoder()
    for inner in inners.values():
        assert decoder.decode(1, ETHERNET[name](inner), 0) == inner.expected


@pytest.mark.tshark
def test_tshark_agrees_on_every_reframed_packet(tmp_path: Path, inners: dict[str, Inner]) -> None:
    """tshark decodes the same frames to the same innermost fields (it is the referee)."""
    frames = [build(inner) for build in ETHERNET.values() for inner in inners.values()]
    verdict, problems = compare_with_tshark(write_pcap(tmp_path / "eth.pcap", 1, frames))
    assert problems == []
    assert verdict.agreed == len(frames)
    per_link: dict[int, list[bytes]] = {}
    for (linktype, name), build in LINKS.items():
        if name != "null-le-linux":
            per_link.setdefault(linktype, []).extend(build(i) for i in inners.values())
    for version, linktype in RAW_BY_VERSION.items():
        per_link[linktype] = [i.ip for i in inners.values() if i.expected.ip_version == version]
    for linktype, frames in per_link.items():
        path = write_pcap(tmp_path / f"{linktype}.pcap", linktype, frames)
        verdict, problems = compare_with_tshark(path)
        assert (problems, verdict.agreed) == ([], len(frames)), linktype


@pytest.mark.tshark
def test_null_with_linux_af_inet6_is_a_named_difference(
    tmp_path: Path, inners: dict[str, Inner]
) -> None:
    """AF_INET6 = 10 (Linux) in a NULL header: tshark knows only the BSD values 24/28/30 and
    shows data; the decoder accepts 10 too, since the family value says IPv6 on Linux."""
    frames = [LINKS[(0, "null-le-linux")](inners["tcp6"])]
    _, problems = compare_with_tshark(write_pcap(tmp_path / "null.pcap", 0, frames))
    assert problems == ["frame 1: segment, but tshark has ['null', 'data']"]


def test_unknown_linktype_is_named() -> None:
    assert PacketDecoder().decode(147, b"\x45" + bytes(40), 0) == "linktype-unsupported:147"
    assert 147 not in LINK_DECODERS


def test_non_ip_frames_are_named() -> None:
    decoder = PacketDecoder()
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert decoder.decode(1, arp, 0) == "non-ip"
    llc_stp = bytes(12) + b"\x00\x26" + b"\x42\x42\x03" + bytes(35)
    assert decoder.decode(1, llc_stp, 0) == "non-ip"
    netlink = bytes(2) + (824).to_bytes(2, "big") + bytes(10) + b"\x08\x00" + bytes(20)
    assert decoder.decode(113, netlink, 0) == "non-ip"
    assert decoder.decode(0, (17).to_bytes(4, "little") + bytes(20), 0) == "non-ip"
    assert decoder.decode(9, b"\xc0\x21" + bytes(20), 0) == "non-ip"  # LCP
    assert decoder.decode(1, bytes(10), 0) == "truncated-link"
    assert decoder.decode(113, bytes(15), 0) == "truncated-link"


def test_llc_snap_names_an_ethertype(inners: dict[str, Inner]) -> None:
    inner = inners["tcp4"]
    body = b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + inner.ip
    frame = bytes(12) + len(body).to_bytes(2, "big") + body
    assert PacketDecoder().decode(1, frame, 0) == inner.expected


def test_flow_key_layout() -> None:
    key = flow_key(_ip("10.0.0.1"), _ip("10.0.0.2"), 443, 51000)
    assert key == bytes([10, 0, 0, 1, 10, 0, 0, 2, 0x01, 0xBB, 0xC7, 0x38])
    assert len(flow_key(_ip("::1"), _ip("::2"), 1, 2)) == 36
