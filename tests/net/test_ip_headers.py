"""IP, TCP and UDP header checks on real frames, and on real frames with one field changed."""

from __future__ import annotations

import pytest
from netframes import read_frames, shared
from wrapped import SOURCES, Inner, load_inner

from alpnsniff.net.decode import PacketDecoder
from alpnsniff.net.ip import MAX_IPV6_EXT_HEADERS
from alpnsniff.net.segment import Segment

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def inners() -> dict[str, Inner]:
    return {name: load_inner(name) for name in SOURCES}


def _frame(name: str) -> bytes:
    capture, number = SOURCES[name]
    return read_frames(shared("realcap", capture))[number - 1][1]


def _patch(frame: bytes, at: int, value: bytes) -> bytes:
    return frame[:at] + value + frame[at + len(value) :]


def test_ethernet_padding_and_trailers_are_not_payload(inners: dict[str, Inner]) -> None:
    decoder = PacketDecoder()
    for name, inner in inners.items():
        frame = _frame(name)
        assert decoder.decode(1, frame + bytes(18), 0) == inner.expected
        assert decoder.decode(1, frame + b"\xde\xad\xbe\xef", 0) == inner.expected  # FCS


def test_real_ack_padded_to_ethernet_minimum() -> None:
    """A 54-byte bare ACK padded to 60 bytes: no payload, whatever the padding holds."""
    capture = read_frames(shared("realcap", "openssl_tls12_alpn_h2.pcap"))
    ack = capture[2][1]  # frame 3: the handshake's final ACK (66 bytes: TCP timestamps)
    ack = _patch(ack, 14 + 2, (20 + 20).to_bytes(2, "big"))  # drop the options from IP's view
    ack = _patch(ack, 14 + 20 + 12, b"\x50")
    seg = PacketDecoder().decode(1, ack[:54] + b"\xff" * 6, 0)
    assert isinstance(seg, Segment)
    assert (seg.payload, seg.flags, seg.truncated) == (b"", 0x10, False)


@pytest.mark.parametrize("name", ["tcp4", "udp4", "tcp6", "udp6"])
def test_snap_length_cut_keeps_the_prefix_and_says_so(name: str, inners: dict[str, Inner]) -> None:
    inner = inners[name]
    frame = _frame(name)
    decoder = PacketDecoder()
    header = len(frame) - len(inner.expected.payload)
    cut = decoder.decode(1, frame[: header + 100], 0)
    assert isinstance(cut, Segment)
    assert cut.truncated
    assert cut.payload == inner.expected.payload[:100]
    assert (cut.sport, cut.dport, cut.seq) == (
        inner.expected.sport,
        inner.expected.dport,
        inner.expected.seq,
    )
    assert decoder.stats["payload-truncated"] == 1


def test_broken_ipv4_headers_are_named() -> None:
    frame = _frame("tcp4")
    decoder = PacketDecoder()
    assert decoder.decode(1, frame[: 14 + 19], 0) == "truncated-ip"
    assert decoder.decode(1, _patch(frame, 14, b"\x44"), 0) == "malformed-ip"  # IHL 4
    assert decoder.decode(1, _patch(frame, 14, b"\x65"), 0) == "malformed-ip"  # version 6
    long_header = _patch(frame, 14, b"\x4f")[: 14 + 40]  # a 60-byte header in 40 bytes
    assert decoder.decode(1, long_header, 0) == "truncated-ip"
    assert decoder.decode(1, _patch(frame, 16, b"\x00\x0a"), 0) == "malformed-ip"  # total 10
    assert decoder.decode(1, _patch(frame, 14 + 9, b"\x01"), 0) == "not-tcp-udp"  # ICMP


def test_ipv4_total_length_zero_is_tso(inners: dict[str, Inner]) -> None:
    """Captured before the NIC filled in the length (TSO): the frame's end bounds it."""
    frame = _patch(_frame("tcp4"), 16, b"\x00\x00")
    assert PacketDecoder().decode(1, frame, 0) == inners["tcp4"].expected


def test_ipv4_options_are_skipped(inners: dict[str, Inner]) -> None:
    inner = inners["tcp4"]
    header = bytearray(inner.ip[:20])
    header[0] = 0x46  # IHL 6: four bytes of options (NOP NOP NOP EOL)
    header[2:4] = (len(inner.ip) + 4).to_bytes(2, "big")
    packet = bytes(header) + b"\x01\x01\x01\x00" + inner.ip[20:]
    assert PacketDecoder().decode(101, packet, 0) == inner.expected


def test_broken_tcp_headers_are_named() -> None:
    frame = _frame("tcp4")
    decoder = PacketDecoder()
    tcp = 14 + 20
    assert decoder.decode(1, _patch(frame, tcp + 12, b"\x40"), 0) == "malformed-tcp"  # offset 4
    short_ip = _patch(frame, 16, (20 + 24).to_bytes(2, "big"))  # IP ends inside TCP options
    assert decoder.decode(1, short_ip, 0) == "truncated-tcp"
    assert decoder.decode(1, frame[: tcp + 10], 0) == "truncated-tcp"


def test_udp_length_bounds_the_payload(inners: dict[str, Inner]) -> None:
    frame = _frame("udp4")
    payload = inners["udp4"].expected.payload
    decoder = PacketDecoder()
    udp = 14 + 20
    shorter = decoder.decode(1, _patch(frame, udp + 4, (8 + 100).to_bytes(2, "big")), 0)
    assert isinstance(shorter, Segment) and shorter.payload == payload[:100]
    longer = decoder.decode(1, _patch(frame, udp + 4, b"\xff\xff"), 0)
    assert isinstance(longer, Segment) and longer.payload == payload and not longer.truncated
    assert decoder.stats["udp-length-exceeds-ip"] == 1
    bogus = decoder.decode(1, _patch(frame, udp + 4, b"\x00\x03"), 0)
    assert isinstance(bogus, Segment) and bogus.payload == payload
    assert decoder.decode(1, frame[: udp + 7], 0) == "truncated-udp"


def _v6_with_chain(inner: Inner, chain: bytes, first: int) -> bytes:
    fixed = bytearray(inner.ip[:40])
    fixed[4:6] = (len(inner.ip) - 40 + len(chain)).to_bytes(2, "big")
    fixed[6] = first
    return bytes(fixed) + chain + inner.ip[40:]


def test_ipv6_extension_headers(inners: dict[str, Inner]) -> None:
    inner = inners["tcp6"]
    decoder = PacketDecoder()
    dest_opts = bytes([6, 0, 1, 4, 0, 0, 0, 0])  # next TCP, PadN
    assert decoder.decode(229, _v6_with_chain(inner, dest_opts, 60), 0) == inner.expected
    hops = b"".join(bytes([0, 0, 1, 4, 0, 0, 0, 0]) for _ in range(MAX_IPV6_EXT_HEADERS))
    too_many = _v6_with_chain(inner, hops + dest_opts, 0)
    assert decoder.decode(229, too_many, 0) == "malformed-ipv6-ext"
    cut = _v6_with_chain(inner, bytes([6, 200]), 60)  # claims 1608 bytes
    assert decoder.decode(229, cut, 0) == "truncated-ipv6-ext"
    esp = _v6_with_chain(inner, b"", 50)
    assert decoder.decode(229, esp, 0) == "esp"
    no_next = _v6_with_chain(inner, b"", 59)
    assert decoder.decode(229, no_next, 0) == "not-tcp-udp"


def test_ipv6_payload_length_zero_and_truncation(inners: dict[str, Inner]) -> None:
    inner = inners["udp6"]
    decoder = PacketDecoder()
    jumbo = inner.ip[:4] + b"\x00\x00" + inner.ip[6:]
    assert decoder.decode(229, jumbo, 0) == inner.expected
    cut = decoder.decode(229, inner.ip[:300], 0)
    assert isinstance(cut, Segment) and cut.truncated
    assert cut.payload == inner.expected.payload[: 300 - 48]
    assert decoder.decode(229, inner.ip[:39], 0) == "truncated-ip"
    assert decoder.decode(229, b"\x45" + inner.ip[1:], 0) == "malformed-ip"
