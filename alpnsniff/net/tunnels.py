"""Tunnel headers: GRE (with ERSPAN and PPTP's enhanced GRE), VXLAN, GENEVE, GTP-U, Teredo.

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
from .link import ETH_IPV6, ETH_PPP, ETH_TEB, NOT_IP, by_version, ppp

GRE_ERSPAN_2 = 0x88BE  # ERSPAN type II (type I when the GRE sequence bit is clear)
GRE_ERSPAN_3 = 0x22EB

VXLAN_PORT = 4789  # RFC 7348
GENEVE_PORT = 6081  # RFC 8926
GTPU_PORT = 2152  # 3GPP TS 29.281
TEREDO_PORT = 3544  # RFC 4380

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


TunnelDecoder = Callable[[bytes, int, int], tuple[int, int]]

# UDP port -> (kind, decoder). Matched on the destination port, then the source port, as the
# port dissector tables of Wireshark do.
UDP_TUNNELS: dict[int, tuple[str, TunnelDecoder]] = {
    VXLAN_PORT: ("vxlan", vxlan),
    GENEVE_PORT: ("geneve", geneve),
    GTPU_PORT: ("gtp", gtpu),
    TEREDO_PORT: ("teredo", teredo),
}
UDP_TUNNEL_PORTS = frozenset(UDP_TUNNELS)
