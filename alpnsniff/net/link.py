"""Link layers: from the start of a frame to the ethertype of what it carries.

Every decoder here maps ``data`` (and an offset) to ``(ethertype, offset)``: the EtherType of
the payload (IPv4 ``0x0800``, IPv6 ``0x86dd``, or anything else, which the caller counts as
not IP) and where that payload starts. Link types that carry no EtherType (raw IP, BSD
loopback, PPP) are mapped onto one, so the rest of the decoder sees a single vocabulary.

:func:`resolve` then peels the shim layers that sit between an EtherType and IP: 802.1Q /
802.1ad / QinQ tags, PPPoE sessions (PPP inside), MPLS label stacks, transparent Ethernet
bridging (an Ethernet frame inside GRE or GENEVE), and the tags mirror ports and fabrics
add: Cisco MetaData (TrustSec SGT), VN-Tag, 802.1BR E-tag, NSH (RFC 8300) and 802.1ah PBB
(MAC-in-MAC). :func:`ieee80211_data` reads an 802.11 data frame's header and LLC/SNAP (for
CAPWAP and TZSP, which carry wireless frames).

Pure functions of bytes; they raise :class:`~alpnsniff.errors.Truncated` or
:class:`~alpnsniff.errors.Malformed` (layer ``"link"``) and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import Malformed, Truncated, Unsupported

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_TEB = 0x6558  # Transparent Ethernet Bridging: an Ethernet frame follows (GRE, GENEVE)
ETH_VLAN = 0x8100  # 802.1Q
ETH_QINQ = 0x88A8  # 802.1ad service tag
ETH_QINQ_OLD = 0x9100  # pre-standard QinQ outer tag (also 0x9200)
ETH_QINQ_OLD2 = 0x9200
ETH_PPPOE_SESSION = 0x8864
ETH_MPLS = 0x8847
ETH_MPLS_MCAST = 0x8848
ETH_PPP = 0x880B  # PPP inside (enhanced) GRE, as in PPTP
ETH_CISCO_METADATA = 0x8909  # Cisco MetaData (CMD): TrustSec security group tag (SGT)
ETH_VNTAG = 0x8926  # Cisco VN-Tag (802.1Qbh pre-standard): 4-byte tag
ETH_ETAG = 0x893F  # IEEE 802.1BR E-tag (port extender): 6-byte tag
ETH_NSH = 0x894F  # Network Service Header (RFC 8300)
ETH_PBB = 0x88E7  # IEEE 802.1ah I-TAG (provider backbone bridging): customer frame follows
NOT_IP = 0  # "no EtherType": a link header that names no network protocol we know

VLAN_TYPES = frozenset({ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD, ETH_QINQ_OLD2})

# Shim headers (VLAN tags, PPPoE, MPLS labels, bridged Ethernet) peeled in one frame. Real
# stacks have one to three (QinQ plus an MPLS pair); each is a few bytes, so a crafted frame
# could stack hundreds. Beyond this the frame is reported malformed instead of looping on.
MAX_SHIM_HEADERS = 16

# NSH (RFC 8300 section 2.2) and VXLAN-GPE next protocol numbers -> EtherType. The two
# registries agree on 1-5 (IANA "NSH Next Protocol", "VXLAN-GPE Next Protocol").
NEXT_PROTOCOL_TO_ETHERTYPE = {1: ETH_IPV4, 2: ETH_IPV6, 3: ETH_TEB, 4: ETH_NSH, 5: ETH_MPLS}

# PPP protocol numbers (RFC 1661 and the IANA PPP registry) -> EtherType.
PPP_TO_ETHERTYPE = {0x0021: ETH_IPV4, 0x0057: ETH_IPV6, 0x0281: ETH_MPLS, 0x0283: ETH_MPLS_MCAST}

# Address family values in the 4-byte header of LINKTYPE_NULL / LINKTYPE_LOOP. AF_INET is 2
# everywhere; AF_INET6 is 10 on Linux, 24 on NetBSD/OpenBSD/BSD/OS, 28 on FreeBSD and
# DragonFly, 30 on macOS/Darwin (see the tcpdump.org link-layer header types page).
AF_TO_ETHERTYPE = {2: ETH_IPV4, 10: ETH_IPV6, 24: ETH_IPV6, 28: ETH_IPV6, 30: ETH_IPV6}

# Linux cooked capture ARPHRD_ types whose protocol field is not an EtherType.
ARPHRD_NETLINK = 824
LAYER = "link"


def _short(what: str, off: int) -> Truncated:
    return Truncated(f"{what} header cut short", layer=LAYER, offset=off)


def by_version(data: bytes, off: int) -> tuple[int, int]:
    """Raw IP: the EtherType is read from the version nibble."""
    if off >= len(data):
        raise _short("raw IP", off)
    version = data[off] >> 4
    if version == 4:
        return ETH_IPV4, off
    if version == 6:
        return ETH_IPV6, off
    return NOT_IP, off


def raw(data: bytes) -> tuple[int, int]:
    """LINKTYPE_RAW (101) and the BSD raw types 12 and 14."""
    return by_version(data, 0)


def raw_ipv4(data: bytes) -> tuple[int, int]:
    """LINKTYPE_IPV4 (228): always IPv4."""
    return ETH_IPV4, 0


def raw_ipv6(data: bytes) -> tuple[int, int]:
    """LINKTYPE_IPV6 (229): always IPv6."""
    return ETH_IPV6, 0


def ethernet(data: bytes, off: int = 0) -> tuple[int, int]:
    """An Ethernet II or 802.3 (LLC/SNAP) header at ``off``; VLAN and other shims follow."""
    if len(data) < off + 14:
        raise _short("Ethernet", off)
    etype = data[off + 12] << 8 | data[off + 13]
    off += 14
    if etype < 0x0600:  # an 802.3 length: LLC follows, and SNAP may name an EtherType
        if len(data) >= off + 8 and data[off : off + 3] == b"\xaa\xaa\x03":
            return data[off + 6] << 8 | data[off + 7], off + 8
        return NOT_IP, off
    return etype, off


def linux_sll(data: bytes) -> tuple[int, int]:
    """LINKTYPE_LINUX_SLL (113): 16-byte cooked header, protocol at offset 14."""
    if len(data) < 16:
        raise _short("Linux SLL", 0)
    hatype = data[2] << 8 | data[3]
    protocol = data[14] << 8 | data[15]
    return _sll_protocol(hatype, protocol), 16


def linux_sll2(data: bytes) -> tuple[int, int]:
    """LINKTYPE_LINUX_SLL2 (276): 20-byte cooked header, protocol at offset 0."""
    if len(data) < 20:
        raise _short("Linux SLL2", 0)
    hatype = data[8] << 8 | data[9]
    protocol = data[0] << 8 | data[1]
    return _sll_protocol(hatype, protocol), 20


def _sll_protocol(hatype: int, protocol: int) -> int:
    # Netlink messages carry a netlink family here, and values below 0x0600 are Linux
    # ETH_P_802_3 / ETH_P_802_2 style pseudo-protocols: neither is IP.
    if hatype == ARPHRD_NETLINK or protocol < 0x0600:
        return NOT_IP
    return protocol


def null_loop(data: bytes) -> tuple[int, int]:
    """LINKTYPE_NULL (0) and LINKTYPE_LOOP (108): a 4-byte address family, either order.

    NULL writes it in the capturing host's order, LOOP in network order, and files travel
    between hosts; the family values are all below 256, so the order is evident.
    """
    if len(data) < 4:
        raise _short("loopback", 0)
    family = int.from_bytes(data[:4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(data[:4], "big")
    return AF_TO_ETHERTYPE.get(family, NOT_IP), 4


def ppp_protocol(data: bytes, off: int) -> tuple[int, int]:
    """A PPP protocol field at ``off`` (1 byte when compressed, RFC 1661 section 6.5)."""
    if off >= len(data):
        raise _short("PPP", off)
    if data[off] & 1:  # protocol field compression: odd first byte is the whole field
        proto = data[off]
        off += 1
    else:
        if off + 2 > len(data):
            raise _short("PPP", off)
        proto = data[off] << 8 | data[off + 1]
        off += 2
    return PPP_TO_ETHERTYPE.get(proto, NOT_IP), off


def ppp(data: bytes, off: int = 0) -> tuple[int, int]:
    """PPP with optional HDLC address/control bytes 0xff 0x03 (LINKTYPE_PPP 9, PPP_HDLC 50)."""
    if len(data) >= off + 2 and data[off] == 0xFF and data[off + 1] == 0x03:
        off += 2
    return ppp_protocol(data, off)


def ppp_hdlc(data: bytes) -> tuple[int, int]:
    """LINKTYPE_PPP_HDLC (50): PPP in HDLC framing, or Cisco HDLC on some captures."""
    if data[:1] in (b"\x0f", b"\x8f"):
        return cisco_hdlc(data)
    return ppp(data, 0)


def cisco_hdlc(data: bytes) -> tuple[int, int]:
    """LINKTYPE_C_HDLC (104): address, control, then an EtherType."""
    if len(data) < 4:
        raise _short("Cisco HDLC", 0)
    return data[2] << 8 | data[3], 4


def resolve(etype: int, data: bytes, off: int, seen: dict[str, int]) -> tuple[int, int]:
    """Peel VLAN tags, PPPoE, MPLS and bridged Ethernet until an EtherType names no shim.

    ``seen`` counts each shim kind met (the decoder's statistics).
    """
    for _ in range(MAX_SHIM_HEADERS):
        if etype in VLAN_TYPES:
            if len(data) < off + 4:
                raise _short("VLAN", off)
            kind = "qinq" if etype != ETH_VLAN else "vlan"
            seen[kind] = seen.get(kind, 0) + 1
            etype = data[off + 2] << 8 | data[off + 3]
            off += 4
        elif etype == ETH_PPPOE_SESSION:
            if len(data) < off + 6:
                raise _short("PPPoE", off)
            if data[off] != 0x11 or data[off + 1] != 0x00:  # version 1, type 1; code 0 (session)
                raise Malformed("PPPoE session header is not version 1 type 1", layer=LAYER)
            seen["pppoe"] = seen.get("pppoe", 0) + 1
            etype, off = ppp_protocol(data, off + 6)
        elif etype in (ETH_MPLS, ETH_MPLS_MCAST):
            seen["mpls"] = seen.get("mpls", 0) + 1
            etype, off = _mpls(data, off)
        elif etype == ETH_TEB:
            seen["bridged-ethernet"] = seen.get("bridged-ethernet", 0) + 1
            etype, off = ethernet(data, off)
        elif etype == ETH_PPP:
            etype, off = ppp(data, off)
        elif etype == ETH_NSH:
            seen["nsh"] = seen.get("nsh", 0) + 1
            etype, off = nsh(data, off)
        elif etype == ETH_PBB:
            if len(data) < off + 18:  # I-TAG 4, then the customer's DA, SA and EtherType
                raise Truncated("802.1ah I-TAG cut short", layer="pbb", offset=off)
            seen["pbb"] = seen.get("pbb", 0) + 1
            etype, off = ethernet(data, off + 4)
        elif etype in (ETH_VNTAG, ETH_ETAG):
            size = 4 if etype == ETH_VNTAG else 6  # the tag, then the next EtherType
            kind = "vn-tag" if etype == ETH_VNTAG else "e-tag"
            if len(data) < off + size + 2:
                raise Truncated(f"{kind} cut short", layer=kind, offset=off)
            seen[kind] = seen.get(kind, 0) + 1
            etype = data[off + size] << 8 | data[off + size + 1]
            off += size + 2
        elif etype == ETH_CISCO_METADATA:
            seen["cisco-metadata"] = seen.get("cisco-metadata", 0) + 1
            etype, off = cisco_metadata(data, off)
        else:
            return etype, off
    raise Malformed(f"more than {MAX_SHIM_HEADERS} VLAN/PPPoE/MPLS headers", layer=LAYER)


def cisco_metadata(data: bytes, off: int) -> tuple[int, int]:
    """Cisco MetaData after EtherType 0x8909: version 1, a length in 8-byte units counting
    the whole header (version to the next EtherType), 4-byte options (the SGT is type 1),
    then the EtherType of the frame. One SGT option is the only form seen: length 1."""
    layer = "cisco-metadata"
    if len(data) < off + 8:
        raise Truncated("Cisco MetaData header cut short", layer=layer, offset=off)
    if data[off] != 1:
        raise Unsupported(f"Cisco MetaData version {data[off]}", layer=layer, offset=off)
    size = data[off + 1] << 3
    if size == 0:
        raise Malformed("Cisco MetaData length 0", layer=layer, offset=off)
    if len(data) < off + size:
        raise Truncated("Cisco MetaData options cut short", layer=layer, offset=off)
    return data[off + size - 2] << 8 | data[off + size - 1], off + size


def nsh(data: bytes, off: int) -> tuple[int, int]:
    """A Network Service Header (RFC 8300): base and service path headers, context
    headers to the length given (4-byte words, all of them), then the next protocol."""
    layer = "nsh"
    if len(data) < off + 8:
        raise Truncated("NSH header cut short", layer=layer, offset=off)
    if data[off] >> 6:
        raise Unsupported(f"NSH version {data[off] >> 6}", layer=layer, offset=off)
    size = (data[off + 1] & 0x3F) << 2
    md_type = data[off + 2] & 0x0F
    if size < 8 or (md_type == 1 and size != 24):  # MD type 1: always 4 context words
        raise Malformed(f"NSH length {size} for MD type {md_type}", layer=layer, offset=off)
    if len(data) < off + size:
        raise Truncated("NSH context headers cut short", layer=layer, offset=off)
    etype = NEXT_PROTOCOL_TO_ETHERTYPE.get(data[off + 3], NOT_IP)
    if etype == NOT_IP:
        raise Unsupported(f"NSH next protocol {data[off + 3]}", layer=layer, offset=off)
    return etype, off + size


def ieee80211_data(data: bytes, off: int, swapped: bool = False) -> tuple[int, int]:
    """An IEEE 802.11 data frame at ``off`` (as CAPWAP and TZSP carry it, no radiotap and
    no FCS) and its LLC/SNAP header: the EtherType of the payload and where it starts.
    ``swapped``: the two frame control bytes come flags first (Cisco access points in
    CAPWAP; Wireshark's ``capwap.swap_fc``).

    Management, control and null-data frames carry no packet (``NOT_IP``); a protected
    (encrypted) frame or an A-MSDU is not decoded.
    """
    layer = "wlan"
    if len(data) < off + 24:
        raise Truncated("802.11 header cut short", layer=layer, offset=off)
    fc0 = data[off + 1] if swapped else data[off]
    fc1 = data[off] if swapped else data[off + 1]
    if fc0 & 3:
        raise Unsupported(f"802.11 protocol version {fc0 & 3}", layer=layer, offset=off)
    subtype = fc0 >> 4
    if (fc0 >> 2) & 3 != 2 or subtype & 4:  # not a data frame, or one without data
        return NOT_IP, off
    if fc1 & 0x40:
        raise Unsupported("802.11 protected frame (encrypted)", layer=layer, offset=off)
    size = 30 if fc1 & 3 == 3 else 24  # to and from the DS: a fourth address
    if subtype & 8:  # QoS data: QoS control, and an HT control field when +HTC/Order is set
        if len(data) < off + size + 2:
            raise Truncated("802.11 QoS control cut short", layer=layer, offset=off)
        if data[off + size] & 0x80:
            raise Unsupported("802.11 A-MSDU", layer=layer, offset=off)
        size += 6 if fc1 & 0x80 else 2
    off += size
    if len(data) < off + 8:
        raise Truncated("802.11 LLC/SNAP header cut short", layer=layer, offset=off)
    if data[off : off + 3] != b"\xaa\xaa\x03":
        return NOT_IP, off
    return data[off + 6] << 8 | data[off + 7], off + 8


def _mpls(data: bytes, off: int) -> tuple[int, int]:
    """An MPLS label stack (RFC 3032), then IP told apart by its version nibble."""
    for _ in range(MAX_SHIM_HEADERS):
        if len(data) < off + 4:
            raise _short("MPLS", off)
        bottom = data[off + 2] & 1
        off += 4
        if bottom:
            etype, off = by_version(data, off)
            if etype == NOT_IP:  # a pseudowire control word or Ethernet: not decoded
                raise Unsupported("MPLS payload is not IP", layer="mpls", offset=off)
            return etype, off
    raise Malformed(f"MPLS label stack deeper than {MAX_SHIM_HEADERS}", layer="mpls")


LinkDecoder = Callable[[bytes], tuple[int, int]]

# LINKTYPE_ numbers (https://www.tcpdump.org/linktypes.html) -> decoder.
LINK_DECODERS: dict[int, LinkDecoder] = {
    0: null_loop,  # NULL (BSD loopback, host byte order)
    1: ethernet,  # ETHERNET
    9: ppp,  # PPP
    12: raw,  # RAW as written by OpenBSD (DLT_RAW 14 elsewhere maps here too)
    14: raw,  # RAW on BSD/OS
    50: ppp_hdlc,  # PPP_HDLC
    101: raw,  # RAW
    104: cisco_hdlc,  # C_HDLC
    108: null_loop,  # LOOP (OpenBSD loopback, network byte order)
    113: linux_sll,  # LINUX_SLL
    228: raw_ipv4,  # IPV4
    229: raw_ipv6,  # IPV6
    276: linux_sll2,  # LINUX_SLL2
}
