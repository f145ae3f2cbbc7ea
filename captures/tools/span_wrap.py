"""Wrap every frame of a real capture in an encapsulation a mirror port or fabric adds.

    python3 captures/tools/span_wrap.py ENCAP IN.pcap OUT.pcap
    python3 captures/tools/span_wrap.py --all [CAPTURES_DIR]    # every captures/span_*.pcap

No kernel here makes these headers (they come from switches, wireless controllers, service
function forwarders and remote sniffers), so this does what the device does to each frame
of real traffic, byte for byte, and nothing else: the inner frame (Ethernet, or the IP
packet inside it for the encapsulations that carry IP) is kept exactly; each record keeps its
timestamp (copied from the input's record header, never through a float); the outer headers
are built by scapy where scapy has the layer (802.1ad/802.1ah, IPv4/UDP with checksums,
VXLAN-GPE, NSH, TZSP, 802.11 + LLC/SNAP) and by hand from the specification where it has
not (Cisco MetaData, VN-Tag, 802.1BR E-tag, CAPWAP).

ENCAP (the frame of traffic from the client, the first frame's source, and back):
  cisco-metadata  Ethernet / 0x8909 CMD (version 1, length 1, SGT option; SGT 10 from the
                  client, 20 from the server) / the original EtherType and payload
  vntag           Ethernet / 0x8926 VN-Tag (source / destination VIF) / original payload
  etag            Ethernet / 0x893F 802.1BR E-tag (E-CID 0x123 / 0x456) / original payload
  pbb             B-DA, B-SA / 0x88A8 B-TAG VID 100 / 0x88E7 I-TAG I-SID 0x012345 / the
                  original frame (C-DA, C-SA, EtherType, payload)
  nsh             Ethernet / 0x894F NSH MD type 1 (SPI 42, SI 255), next protocol 3 / the
                  original Ethernet frame
  vxlan-gpe       Ethernet / IPv4 / UDP 4790 / VXLAN-GPE (VNI 7) next protocol 1 or 2 /
                  the original IP packet
  vxlan-gpe-nsh   Ethernet / IPv4 / UDP 4790 / VXLAN-GPE next protocol 4 / NSH MD type 2
                  (one 4-byte metadata TLV) next protocol 3 / the original Ethernet frame
  capwap          Ethernet / IPv4 / UDP (AP port 5246+ephemeral -> WLC 5247 and back) /
                  CAPWAP data header (HLEN 2, T=0) / the original 802.3 Ethernet frame
  capwap-80211    as capwap, T=1 WBID 1: the frame as an 802.11 QoS data frame (ToDS from
                  the client, FromDS to it; BSSID 02:00:00:00:0a:01), LLC/SNAP, payload;
                  the frame control's two bytes swapped, as Cisco access points send them
  capwap-80211-rfc  the same with the frame control in the standard order (no capture in
                  captures/ is made with it; the differential test makes one)
  tzsp            Ethernet / IPv4 / UDP -> 37008 / TZSP v1 received packet, encapsulation 1
                  (Ethernet), tags: padding, END / the original Ethernet frame
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Callable
from pathlib import Path

from scapy.contrib.nsh import NSH, NSHTLV
from scapy.contrib.tzsp import TZSP, TZSPTagEnd, TZSPTagPadding
from scapy.layers.dot11 import Dot11, Dot11QoS
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import LLC, SNAP, Dot1AD, Dot1AH, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

SWITCH_A = "02:00:00:00:0b:01"  # the fabric / mirror's own MAC addresses
SWITCH_B = "02:00:00:00:0b:02"
BSSID = "02:00:00:00:0a:01"
AP_IP, WLC_IP = "192.0.2.10", "192.0.2.1"  # TEST-NET-1: AP / sensor / VTEP and collector
AP_PORT = 32769  # the AP's (and sensor's) ephemeral source port
PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D

# (name of the capture made, encapsulation, source capture in captures/)
SPAN_CAPTURES: tuple[tuple[str, str, str], ...] = (
    ("span_cisco_metadata.pcap", "cisco-metadata", "openssl_tls12_h2.pcap"),
    ("span_vntag.pcap", "vntag", "openssl_tls12_h2.pcap"),
    ("span_etag.pcap", "etag", "openssl_tls12_h2.pcap"),
    ("span_pbb.pcap", "pbb", "openssl_tls12_h2.pcap"),
    ("span_nsh.pcap", "nsh", "openssl_tls12_h2.pcap"),
    ("span_vxlan_gpe.pcap", "vxlan-gpe", "openssl_tls13_h2.pcap"),
    ("span_vxlan_gpe_nsh.pcap", "vxlan-gpe-nsh", "aioquic_h3_v1.pcap"),
    ("span_capwap.pcap", "capwap", "openssl_tls12_h2.pcap"),
    ("span_capwap_80211.pcap", "capwap-80211", "openssl_tls12_h2.pcap"),
    ("span_tzsp.pcap", "tzsp", "openssl_tls12_h2.pcap"),
)


# --- pcap records, read and written with their header fields as they are -----------------


def read_pcap(path: Path) -> tuple[bytes, list[tuple[bytes, bytes]], str]:
    """(global header, [(record header, frame)], byte order) of a classic pcap file."""
    data = path.read_bytes()
    magic_le = struct.unpack_from("<I", data)[0]
    order = "<" if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    linktype = struct.unpack_from(order + "I", data, 20)[0]
    if linktype != 1:
        raise SystemExit(f"{path}: LINKTYPE {linktype}, want Ethernet (1)")
    records = []
    off = 24
    while off + 16 <= len(data):
        caplen, wirelen = struct.unpack_from(order + "II", data, off + 8)
        if caplen != wirelen:
            raise SystemExit(f"{path}: a record cut by the snap length; wrap whole frames")
        records.append((data[off : off + 8], data[off + 16 : off + 16 + caplen]))
        off += 16 + caplen
    return data[:24], records, order


def write_pcap(path: Path, header: bytes, records: list[tuple[bytes, bytes]], order: str) -> None:
    # the snap length field grows by nothing: 262144 in every input here
    out = [header]
    for stamp, frame in records:
        out.append(stamp + struct.pack(order + "II", len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


# --- the encapsulations ---------------------------------------------------------------------

Wrap = Callable[[bytes, bool], bytes]  # (original Ethernet frame, from the client?) -> frame


def _ip_of(frame: bytes) -> bytes:
    etype = frame[12] << 8 | frame[13]
    if etype not in (0x0800, 0x86DD):
        raise SystemExit(f"EtherType {etype:#06x}: the IP encapsulations need IP frames")
    return frame[14:]


def _insert_tag(frame: bytes, tag: bytes) -> bytes:
    """A tag inserted after the source MAC, as a switch inserts an 802.1Q tag."""
    return frame[:12] + tag + frame[12:]


def cisco_metadata(frame: bytes, up: bool) -> bytes:
    # version 1, length 1 (x 8 bytes, version to next EtherType), option: length 0 type 1 (SGT)
    return _insert_tag(frame, b"\x89\x09\x01\x01\x00\x01" + (10 if up else 20).to_bytes(2, "big"))


def vntag(frame: bytes, up: bool) -> bytes:
    # d (direction: 1 = to the host), p, dvif_id 14 bits | l, r, ver 2 bits, svif_id 12 bits
    word = (0 if up else 1) << 31 | (0 if up else 5) << 16 | (5 if up else 0)
    return _insert_tag(frame, b"\x89\x26" + word.to_bytes(4, "big"))


def etag(frame: bytes, up: bool) -> bytes:
    # E-PCP 3, E-DEI 1, ingress E-CID base 12 | reserved 2, GRP 2, E-CID base 12 | ext 8, ext 8
    ecid = 0x123 if up else 0x456
    tag = struct.pack("!HHBB", ecid if up else 0, ecid, 0, 0)
    return _insert_tag(frame, b"\x89\x3f" + tag)


def pbb(frame: bytes, up: bool) -> bytes:
    src, dst = (SWITCH_A, SWITCH_B) if up else (SWITCH_B, SWITCH_A)
    pkt = Ether(dst=dst, src=src) / Dot1AD(vlan=100) / Dot1AH(isid=0x012345) / Raw(frame)
    return bytes(pkt)


def nsh(frame: bytes, up: bool) -> bytes:
    src, dst = (SWITCH_A, SWITCH_B) if up else (SWITCH_B, SWITCH_A)
    head = Ether(dst=dst, src=src, type=0x894F)
    pkt = head / NSH(mdtype=1, nextproto=3, spi=42, si=255, context_header=bytes(16))
    return bytes(pkt / Raw(frame))


def _udp(payload: Packet, up: bool, port: int) -> bytes:
    ips = (AP_IP, WLC_IP) if up else (WLC_IP, AP_IP)
    ports = (AP_PORT, port) if up else (port, AP_PORT)
    macs = (SWITCH_A, SWITCH_B) if up else (SWITCH_B, SWITCH_A)
    pkt = (
        Ether(src=macs[0], dst=macs[1])
        / IP(src=ips[0], dst=ips[1], ttl=64, flags="DF", id=0)
        / UDP(sport=ports[0], dport=ports[1])
        / payload
    )
    return bytes(pkt)


def vxlan_gpe(frame: bytes, up: bool) -> bytes:
    ip = _ip_of(frame)
    gpe = VXLAN(flags=0x0C, NextProtocol=1 if ip[0] >> 4 == 4 else 2, vni=7)
    return _udp(gpe / Raw(ip), up, 4790)


def vxlan_gpe_nsh(frame: bytes, up: bool) -> bytes:
    gpe = VXLAN(flags=0x0C, NextProtocol=4, vni=7)
    meta = NSHTLV(class_=0x0101, type=1, metadata=[0x0A000001])
    service = NSH(mdtype=2, nextproto=3, spi=42, si=254, vlch=[meta])
    return _udp(gpe / service / Raw(frame), up, 4790)


def _capwap_header(native_80211: bool) -> bytes:
    # preamble version 0 type 0; HLEN 2 (8 bytes), RID 1, WBID 1, T; fragment id/offset 0
    word = 2 << 19 | 1 << 14 | 1 << 9 | (0x100 if native_80211 else 0)
    return b"\x00" + word.to_bytes(3, "big") + bytes(4)


def capwap(frame: bytes, up: bool) -> bytes:
    return _udp(Raw(_capwap_header(False) + frame), up, 5247)


def to_80211(frame: bytes, up: bool) -> bytes:
    """The Ethernet frame as an AP carries it on the air: QoS data, LLC/SNAP, the payload."""
    dst = ":".join(f"{b:02x}" for b in frame[0:6])
    src = ":".join(f"{b:02x}" for b in frame[6:12])
    etype = frame[12] << 8 | frame[13]
    if up:  # station -> AP: To DS; addr1 BSSID, addr2 SA, addr3 DA
        dot11 = Dot11(type=2, subtype=8, FCfield=0x01, addr1=BSSID, addr2=src, addr3=dst)
    else:  # AP -> station: From DS; addr1 DA, addr2 BSSID, addr3 SA
        dot11 = Dot11(type=2, subtype=8, FCfield=0x02, addr1=dst, addr2=BSSID, addr3=src)
    pkt = dot11 / Dot11QoS(TID=0) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(code=etype)
    return bytes(pkt / Raw(frame[14:]))


def capwap_80211(frame: bytes, up: bool) -> bytes:
    """As a Cisco access point sends it: the 802.11 frame control bytes swapped (flags
    first), which is what tshark assumes by default (``capwap.swap_fc: TRUE``)."""
    dot11 = to_80211(frame, up)
    return _udp(Raw(_capwap_header(True) + dot11[1:2] + dot11[0:1] + dot11[2:]), up, 5247)


def capwap_80211_rfc(frame: bytes, up: bool) -> bytes:
    """The frame control in RFC 5416 / 802.11 order (tshark: ``-o capwap.swap_fc:FALSE``)."""
    return _udp(Raw(_capwap_header(True) + to_80211(frame, up)), up, 5247)


def tzsp(frame: bytes, up: bool) -> bytes:
    # a sensor sends what it saw in both directions to the collector: always AP -> WLC
    tags = TZSPTagPadding() / TZSPTagEnd()
    return _udp(TZSP(type=0, encapsulated_protocol=1) / tags / Raw(frame), True, 37008)


WRAPS: dict[str, Wrap] = {
    "cisco-metadata": cisco_metadata,
    "vntag": vntag,
    "etag": etag,
    "pbb": pbb,
    "nsh": nsh,
    "vxlan-gpe": vxlan_gpe,
    "vxlan-gpe-nsh": vxlan_gpe_nsh,
    "capwap": capwap,
    "capwap-80211": capwap_80211,
    "capwap-80211-rfc": capwap_80211_rfc,
    "tzsp": tzsp,
}


def _endpoint(frame: bytes) -> bytes:
    """The frame's source address and TCP/UDP port (on loopback both MACs are zero)."""
    ip = _ip_of(frame)
    if ip[0] >> 4 == 4:
        l4 = (ip[0] & 15) << 2
        return ip[12:16] + ip[l4 : l4 + 2]
    return ip[8:24] + ip[40:42]  # IPv6 without extension headers (as in every input here)


def wrap_file(encap: str, src: Path, dst: Path) -> int:
    header, records, order = read_pcap(src)
    client = _endpoint(records[0][1])  # the first frame is the client's (SYN or Initial)
    out = [(stamp, WRAPS[encap](frame, _endpoint(frame) == client)) for stamp, frame in records]
    write_pcap(dst, header, out, order)
    return len(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--all", action="store_true", help="make every captures/span_*.pcap")
    p.add_argument("args", nargs="*", help="ENCAP IN.pcap OUT.pcap, or with --all: [DIR]")
    a = p.parse_args()
    if a.all:
        folder = Path(a.args[0]) if a.args else Path(__file__).resolve().parents[1]
        for name, encap, source in SPAN_CAPTURES:
            n = wrap_file(encap, folder / source, folder / name)
            size = (folder / name).stat().st_size
            print(f"{name}: {n} frames of {source} in {encap}, {size} bytes")
        return
    if len(a.args) != 3 or a.args[0] not in WRAPS:
        p.error(f"want ENCAP IN OUT, ENCAP one of {', '.join(WRAPS)}")
    wrap_file(a.args[0], Path(a.args[1]), Path(a.args[2]))


if __name__ == "__main__":
    sys.exit(main())
