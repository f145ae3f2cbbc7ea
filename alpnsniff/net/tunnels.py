"""Tunnel headers: GRE (with ERSPAN and PPTP's enhanced GRE), VXLAN, VXLAN-GPE, GENEVE,
GTP-U, Teredo, CAPWAP data (wireless controllers) and TZSP (remote packet capture).

Each function reads one tunnel header at ``off`` (the tunnel's bytes end at ``end``) and
returns ``(ethertype, offset)`` of what it carries, in the vocabulary of :mod:`.link`
(``ETH_TEB`` for an Ethernet frame, ``ETH_IPV4``/``ETH_IPV6`` for IP). IP-in-IP (4) and
IPv6-in-IP (41) need no header of their own and are handled by the decoder.

They raise :class:`~alpnsniff.errors.Truncated`, :class:`~alpnsniff.errors.Malformed` or
:class:`~alpnsniff.errors.Unsupported` with the tunnel's name as layer, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import Malformed, Truncated, Unsupported
from .link import (
    ETH_IPV6,
    ETH_PPP,
    ETH_TEB,
    NEXT_PROTOCOL_TO_ETHERTYPE,
    NOT_IP,
    by_version,
    ieee80211_data,
    ppp,
)

GRE_ERSPAN_2 = 0x88BE  # ERSPAN type II (type I when the GRE sequence bit is clear)
GRE_ERSPAN_3 = 0x22EB

VXLAN_PORT = 4789  # RFC 7348
GENEVE_PORT = 6081  # RFC 8926
GTPU_PORT = 2152  # 3GPP TS 29.281
TEREDO_PORT = 3544  # RFC 4380
VXLAN_GPE_PORT = 4790  # draft-ietf-nvo3-vxlan-gpe (IANA)
CAPWAP_DATA_PORT = 5247  # RFC 5415 (5246, the control channel, carries no user packets)
# TaZmen Sniffer Protocol (MikroTik, ...). 37008 lies in Linux's ephemeral port range, so
# other UDP traffic may use it: such a datagram fails TZSP's header check (QUIC's first byte
# has the 0x40 bit set, TZSP's is its version, 1) and is handed on as plain UDP.
TZSP_PORT = 37008

CAPWAP_WBID_IEEE80211 = 1  # RFC 5416
TZSP_ENCAP_ETHERNET = 1
TZSP_ENCAP_IEEE80211 = 18

# TZSP tagged fields before the END tag. A sensor sends a handful (RSSI, SNR, data rate,
# timestamp, channel, sensor MAC...) and a few 1-byte padding tags; a crafted header could
# chain thousands of padding bytes. Beyond this the header is malformed.
MAX_TZSP_TAGS = 32

# GTP-U extension headers chained in one packet. 3GPP defines a handful of types (PDU session
# container, UDP port, PDCP number...), real packets carry one or two; a crafted chain of
# 4-byte headers could run on for the whole packet. Beyond this it is malformed.
MAX_GTP_EXT_HEADERS = 8


def _need(data: bytes, off: int, n: int, end: int, layer: str) -> None:
    if off + n > end or off + n > len(data):
        raise Truncated(f"{layer} header cut short", layer=layer, offset=off)


def gre(data: bytes, off: int, end: int) -> tuple[str, int, int]:
    """A GRE header (RFC 2784/2890, RFC 2637 version 1): ``(kind, ethertype, offset)``.

    ``kind`` is ``"gre"``, ``"erspan"`` or ``"pptp"``, for the decoder's statistics.
    """
    _need(data, off, 4, end, "gre")
    flags = data[off]
    version = data[off + 1] & 7
    proto = data[off + 2] << 8 | data[off + 3]
    start = off
    off += 4
    if version == 0:
        if flags & 0x40:  # routing present (RFC 1701 source routes): long deprecated
            raise Unsupported("GRE with source routing", layer="gre", offset=start)
        if flags & 0x80:  # checksum + reserved1
            off += 4
        if flags & 0x20:  # key
            off += 4
        seq = bool(flags & 0x10)
        if seq:
            off += 4
        _need(data, off, 0, end, "gre")
        if proto == GRE_ERSPAN_2:
            if not seq:  # ERSPAN type I: the mirrored Ethernet frame follows directly
                return "erspan", ETH_TEB, off
            _need(data, off, 8, end, "erspan")
            if data[off] >> 4 != 1:
                raise Malformed("ERSPAN type II header version is not 1", layer="erspan")
            return "erspan", ETH_TEB, off + 8
        if proto == GRE_ERSPAN_3:
            return "erspan", *_erspan3(data, off, end)
        return "gre", proto, off
    if version == 1:  # PPTP enhanced GRE: key (payload length, call id) always present
        if proto != ETH_PPP or flags & 0xC0 or not flags & 0x20:
            raise Malformed("enhanced GRE header is not PPTP's", layer="gre", offset=start)
        off += 4
        if flags & 0x10:  # sequence number
            off += 4
        if data[start + 1] & 0x80:  # acknowledgment number
            off += 4
        _need(data, off, 0, end, "gre")
        if off == end:  # an acknowledgment alone, no PPP frame
            return "pptp", NOT_IP, off
        etype, off = ppp(data[:end], off)
        return "pptp", etype, off
    raise Unsupported(f"GRE version {version}", layer="gre", offset=start)


def _erspan3(data: bytes, off: int, end: int) -> tuple[int, int]:
    """ERSPAN type III: 12-byte header, optional 8-byte platform sub-header, frame type."""
    _need(data, off, 12, end, "erspan")
    if data[off] >> 4 != 2:
        raise Malformed("ERSPAN type III header version is not 2", layer="erspan")
    frame_type = (data[off + 10] >> 2) & 0x1F
    optional = data[off + 11] & 1
    off += 20 if optional else 12
    _need(data, off, 0, end, "erspan")
    if frame_type == 0:
        return ETH_TEB, off
    if frame_type == 2:
        return by_version(data, off)
    raise Unsupported(f"ERSPAN frame type {frame_type}", layer="erspan")


def vxlan(data: bytes, off: int, end: int) -> tuple[int, int]:
    """VXLAN (RFC 7348): 8-byte header whose I flag says a valid VNI; Ethernet follows."""
    _need(data, off, 8, end, "vxlan")
    if not data[off] & 0x08:
        raise Malformed("VXLAN I flag not set", layer="vxlan", offset=off)
    return ETH_TEB, off + 8


def geneve(data: bytes, off: int, end: int) -> tuple[int, int]:
    """GENEVE (RFC 8926): 8-byte header plus options; its protocol type is an EtherType."""
    _need(data, off, 8, end, "geneve")
    if data[off] >> 6 != 0:
        raise Unsupported(f"GENEVE version {data[off] >> 6}", layer="geneve", offset=off)
    options = (data[off] & 0x3F) << 2
    proto = data[off + 2] << 8 | data[off + 3]
    off += 8 + options
    _need(data, off, 0, end, "geneve")
    return proto, off


def gtpu(data: bytes, off: int, end: int) -> tuple[int, int]:
    """GTPv1-U (3GPP TS 29.281) T-PDU: header, optional fields and extensions, then IP."""
    _need(data, off, 8, end, "gtp")
    flags = data[off]
    if flags >> 5 != 1 or not flags & 0x10:
        raise Unsupported("not GTPv1 (GTP')", layer="gtp", offset=off)
    if data[off + 1] != 0xFF:  # echo, error indication, end marker: no user data
        raise Unsupported(f"GTP-U message type {data[off + 1]}", layer="gtp", offset=off)
    length = data[off + 2] << 8 | data[off + 3]
    end = min(end, off + 8 + length)
    off += 8
    if flags & 0x07:  # any of E, S, PN: sequence, N-PDU number, next extension type follow
        _need(data, off, 4, end, "gtp")
        next_ext = data[off + 3]
        off += 4
        count = 0
        while flags & 0x04 and next_ext:
            count += 1
            if count > MAX_GTP_EXT_HEADERS:
                raise Malformed(f"more than {MAX_GTP_EXT_HEADERS} GTP extensions", layer="gtp")
            _need(data, off, 1, end, "gtp")
            size = data[off] << 2
            if size == 0:
                raise Malformed("GTP extension header of length 0", layer="gtp", offset=off)
            _need(data, off, size, end, "gtp")
            next_ext = data[off + size - 1]
            off += size
    etype, off = by_version(data[:end], off)
    if etype == NOT_IP:
        raise Unsupported("GTP-U payload is not IP", layer="gtp", offset=off)
    return etype, off


def teredo(data: bytes, off: int, end: int) -> tuple[int, int]:
    """Teredo (RFC 4380): optional authentication / origin indications, then IPv6."""
    for _ in range(2):  # at most one authentication and one origin indication
        _need(data, off, 2, end, "teredo")
        if data[off] != 0 or data[off + 1] not in (0, 1):
            break
        if data[off + 1] == 1:  # authentication: id and auth lengths, nonce 8, confirmation 1
            _need(data, off, 4, end, "teredo")
            off += 4 + data[off + 2] + data[off + 3] + 9
        else:  # origin indication: port and address, 8 bytes
            off += 8
    _need(data, off, 40, end, "teredo")
    # Bubbles (payload length 0, next header 59) may carry trailing bytes; Wireshark takes them.
    if data[off] >> 4 != 6 or off + 40 + (data[off + 4] << 8 | data[off + 5]) > end:
        raise Malformed("Teredo payload is not an IPv6 packet", layer="teredo", offset=off)
    return ETH_IPV6, off


def vxlan_gpe(data: bytes, off: int, end: int) -> tuple[int, int]:
    """VXLAN-GPE: VXLAN's 8 bytes with a version and a next protocol (IPv4, IPv6, Ethernet,
    NSH, MPLS) when the P flag is set; without it the payload is Ethernet, as in VXLAN."""
    _need(data, off, 8, end, "vxlan-gpe")
    flags = data[off]
    if flags & 0x30:
        raise Unsupported(f"VXLAN-GPE version {flags >> 4 & 3}", layer="vxlan-gpe", offset=off)
    if not flags & 0x04:
        return ETH_TEB, off + 8
    etype = NEXT_PROTOCOL_TO_ETHERTYPE.get(data[off + 3], NOT_IP)
    if etype == NOT_IP:
        raise Unsupported(f"VXLAN-GPE next protocol {data[off + 3]}", layer="vxlan-gpe", offset=off)
    return etype, off + 8


def capwap(data: bytes, off: int, end: int) -> tuple[int, int]:
    """A CAPWAP data channel packet (RFC 5415 section 4.3): the header, HLEN 4-byte words
    long (radio MAC and wireless information included), then an IEEE 802.3 frame (T clear)
    or the binding's native frame (T set; an 802.11 data frame for WBID 1).

    Cisco access points send the 802.11 frame control bytes swapped (flags first; Wireshark
    assumes so by default, ``capwap.swap_fc``), others in the RFC's order. The order is told
    by the protocol version bits, which are 0 in every frame a CAPWAP data channel carries:
    a data frame goes to or from the distribution system, so its flags byte has To DS or
    From DS set, i.e. non-zero "version" bits when read first.

    DTLS-protected data, fragments (not reassembled) and other bindings are not decoded;
    a keep-alive carries no packet.
    """
    _need(data, off, 8, end, "capwap")
    preamble = data[off]
    if preamble >> 4:
        raise Unsupported(f"CAPWAP version {preamble >> 4}", layer="capwap", offset=off)
    if preamble & 0x0F == 1:
        raise Unsupported("CAPWAP DTLS-protected data", layer="capwap", offset=off)
    if preamble & 0x0F:
        raise Malformed(f"CAPWAP preamble type {preamble & 0x0F}", layer="capwap", offset=off)
    word = data[off + 1] << 16 | data[off + 2] << 8 | data[off + 3]
    size = (word >> 19) << 2  # HLEN
    wbid = (word >> 9) & 0x1F
    native = word & 0x100  # T
    if size < 8:
        raise Malformed(f"CAPWAP header length {size}", layer="capwap", offset=off)
    if word & 0x80:  # F
        raise Unsupported("CAPWAP fragment (not reassembled)", layer="capwap", offset=off)
    start = off
    off += size
    _need(data, off, 0, end, "capwap")
    if word & 0x08:  # K: a data channel keep-alive, message elements and no packet
        return NOT_IP, off
    if not native:
        return ETH_TEB, off
    if wbid != CAPWAP_WBID_IEEE80211:
        raise Unsupported(f"CAPWAP wireless binding {wbid}", layer="capwap", offset=start)
    _need(data, off, 2, end, "capwap")
    swapped = bool(data[off] & 3) and not data[off + 1] & 3
    return ieee80211_data(data[:end], off, swapped)


def tzsp(data: bytes, off: int, end: int) -> tuple[int, int]:
    """TZSP: version 1, type, encapsulated protocol, tagged fields up to the END tag (1;
    the padding tag 0 has no length), then the packet: Ethernet or an 802.11 frame."""
    _need(data, off, 4, end, "tzsp")
    if data[off] != 1:
        raise Unsupported(f"TZSP version {data[off]}", layer="tzsp", offset=off)
    if data[off + 1] > 1:  # 0 received, 1 for transmit; config / keep-alive / port opener
        raise Unsupported(f"TZSP type {data[off + 1]}", layer="tzsp", offset=off)
    encap = data[off + 2] << 8 | data[off + 3]
    off += 4
    for _ in range(MAX_TZSP_TAGS):
        _need(data, off, 1, end, "tzsp")
        tag = data[off]
        if tag == 1:  # END
            off += 1
            break
        if tag == 0:  # padding
            off += 1
            continue
        _need(data, off, 2, end, "tzsp")
        off += 2 + data[off + 1]
    else:
        raise Malformed(f"more than {MAX_TZSP_TAGS} TZSP tags", layer="tzsp", offset=off)
    _need(data, off, 0, end, "tzsp")
    if encap == TZSP_ENCAP_ETHERNET:
        return ETH_TEB, off
    if encap == TZSP_ENCAP_IEEE80211:
        return ieee80211_data(data[:end], off)
    raise Unsupported(f"TZSP encapsulation {encap}", layer="tzsp", offset=off)


TunnelDecoder = Callable[[bytes, int, int], tuple[int, int]]

# UDP port -> (kind, decoder). Matched on the destination port, then the source port, as the
# port dissector tables of Wireshark do.
UDP_TUNNELS: dict[int, tuple[str, TunnelDecoder]] = {
    VXLAN_PORT: ("vxlan", vxlan),
    GENEVE_PORT: ("geneve", geneve),
    GTPU_PORT: ("gtp", gtpu),
    TEREDO_PORT: ("teredo", teredo),
    VXLAN_GPE_PORT: ("vxlan-gpe", vxlan_gpe),
    CAPWAP_DATA_PORT: ("capwap", capwap),
    TZSP_PORT: ("tzsp", tzsp),
}
# The UDP ports whose datagrams the decoder unwraps: the packet hot loop (pipeline.py) sends
# these to the full decoder instead of peeking at them as plain UDP.
TUNNEL_UDP_PORTS = frozenset(UDP_TUNNELS)
