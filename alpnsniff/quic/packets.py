"""Split one UDP datagram into its QUIC packets (RFC 9000 §12.2, §17.2), still protected.

A datagram holds one or more coalesced long-header packets, each with its own Length,
optionally followed by one short-header packet (which runs to the end: it has no length)
or by zero bytes (aioquic pads its first datagram with zeros after the packet). Version
Negotiation and Retry packets have no Length either and end the datagram.

Nothing here decrypts: see :mod:`alpnsniff.quic.initial` for that.
"""

from __future__ import annotations

from dataclasses import dataclass

from alpnsniff.errors import DissectError, Malformed, Truncated, Unsupported
from alpnsniff.quic.versions import (
    MAX_CID_LENGTH,
    VERSION_NEGOTIATION,
    LongPacketType,
    RetryFormat,
    version_info,
)
from alpnsniff.quic.wire import LAYER, read_bytes, read_varint

#: RFC 9001 §5.8: the Retry Integrity Tag is 128 bits.
RETRY_INTEGRITY_TAG_LENGTH = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class LongHeaderPacket:
    """An Initial, 0-RTT or Handshake packet, header protection and AEAD still on."""

    #: Logical packet type (INITIAL, ZERO_RTT or HANDSHAKE), already mapped for v2.
    packet_type: LongPacketType
    #: The version field.
    version: int
    #: Destination and Source Connection IDs.
    dcid: bytes
    scid: bytes
    #: The Initial's Token (empty for other types and for Initials without one).
    token: bytes
    #: The whole packet, first byte to the end of its Length: the AEAD input.
    data: bytes
    #: Where the protected Packet Number starts in ``data`` (the Length field's end).
    pn_offset: int
    #: Where the packet starts in the datagram.
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPacket:
    """A Retry (RFC 9000 §17.2.5): a new SCID and a token for the client's next Initial."""

    version: int
    dcid: bytes
    scid: bytes
    token: bytes
    #: The Retry Integrity Tag (16 bytes); empty for drafts ≤ 24, which had none.
    integrity_tag: bytes
    #: Drafts ≤ 24 carried the Original DCID in clear; empty otherwise.
    odcid: bytes
    #: The whole Retry packet (the tag's AAD is built from it).
    data: bytes
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionNegotiationPacket:
    """A Version Negotiation packet (RFC 9000 §17.2.1): the versions the server speaks."""

    dcid: bytes
    scid: bytes
    versions: tuple[int, ...]
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ShortHeaderMarker:
    """A short-header (1-RTT) packet: it runs to the end of the datagram; not parsed."""

    offset: int
    length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Padding:
    """Zero bytes after the last packet (datagram padding, e.g. aioquic's)."""

    offset: int
    length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Junk:
    """Bytes after a good packet that do not parse as one (RFC 9000 §12.2: ignored).

    Reported rather than dropped so that the caller can count it; ``reason`` is the
    ``DissectError.reason`` and ``detail`` its message.
    """

    offset: int
    length: int
    reason: str
    detail: str


Packet = (
    LongHeaderPacket | RetryPacket | VersionNegotiationPacket | ShortHeaderMarker | Padding | Junk
)


def split_datagram(datagram: bytes) -> list[Packet]:
    """The packets of one UDP payload, in order.

    Raises a :class:`DissectError` when the first packet cannot be parsed; a later packet
    that cannot be parsed becomes a :class:`Junk` item and ends the walk.
    """
    packets: list[Packet] = []
    n = len(datagram)
    pos = 0
    while pos < n:
        if datagram[pos] == 0 and datagram.count(0, pos) == n - pos:
            if pos == 0:
                raise Malformed("datagram of zero bytes only", layer=LAYER, offset=0)
            packets.append(Padding(offset=pos, length=n - pos))
            break
        if not datagram[pos] & 0x80:
            packets.append(ShortHeaderMarker(offset=pos, length=n - pos))
            break
        try:
            packet = _parse_long_header(datagram, pos)
        except DissectError as err:
            if pos == 0:
                raise
            packets.append(Junk(offset=pos, length=n - pos, reason=err.reason, detail=str(err)))
            break
        packets.append(packet)
        if not isinstance(packet, LongHeaderPacket):
            break  # Retry and Version Negotiation have no Length: they fill the datagram
        pos += len(packet.data)
    return packets


def _parse_long_header(datagram: bytes, start: int) -> Packet:
    n = len(datagram)
    if start + 7 > n:
        raise Truncated("long header: shorter than 7 bytes", layer=LAYER, offset=start)
    first = datagram[start]
    version = int.from_bytes(datagram[start + 1 : start + 5], "big")
    if version == VERSION_NEGOTIATION:
        return _parse_version_negotiation(datagram, start)
    info = version_info(version)
    if info is None:
        raise Unsupported(f"QUIC version 0x{version:08x}", layer=LAYER, offset=start + 1)
    dcid_len = datagram[start + 5]
    if dcid_len > MAX_CID_LENGTH:
        raise Malformed(f"DCID length {dcid_len} > {MAX_CID_LENGTH}", layer=LAYER, offset=start + 5)
    dcid, pos = read_bytes(datagram, start + 6, dcid_len, "DCID")
    if pos >= n:
        raise Truncated("long header: no SCID length", layer=LAYER, offset=pos)
    scid_len = datagram[pos]
    if scid_len > MAX_CID_LENGTH:
        raise Malformed(f"SCID length {scid_len} > {MAX_CID_LENGTH}", layer=LAYER, offset=pos)
    scid, pos = read_bytes(datagram, pos + 1, scid_len, "SCID")
    packet_type = info.packet_types[(first & 0x30) >> 4]

    if packet_type is LongPacketType.RETRY:
        if info.retry_format is RetryFormat.ODCID:
            if pos >= n:
                raise Truncated("Retry: no ODCID length", layer=LAYER, offset=pos)
            odcid, pos = read_bytes(datagram, pos + 1, datagram[pos], "Retry ODCID")
            token, tag = datagram[pos:], b""
        else:
            if n - pos < RETRY_INTEGRITY_TAG_LENGTH:
                raise Truncated("Retry: no room for the integrity tag", layer=LAYER, offset=pos)
            odcid = b""
            token = datagram[pos : n - RETRY_INTEGRITY_TAG_LENGTH]
            tag = datagram[n - RETRY_INTEGRITY_TAG_LENGTH :]
        return RetryPacket(
            version=version,
            dcid=dcid,
            scid=scid,
            token=token,
            integrity_tag=tag,
            odcid=odcid,
            data=datagram[start:],
            offset=start,
        )

    token = b""
    if packet_type is LongPacketType.INITIAL:
        token_len, pos = read_varint(datagram, pos)
        token, pos = read_bytes(datagram, pos, token_len, "Initial token")
    length, pos = read_varint(datagram, pos)
    end = pos + length
    if end > n:
        raise Truncated(
            f"long header: Length {length} but {n - pos} bytes left", layer=LAYER, offset=pos
        )
    return LongHeaderPacket(
        packet_type=packet_type,
        version=version,
        dcid=dcid,
        scid=scid,
        token=token,
        data=datagram[start:end],
        pn_offset=pos - start,
        offset=start,
    )


def _parse_version_negotiation(datagram: bytes, start: int) -> VersionNegotiationPacket:
    # RFC 8999 §6: in a VN the CID lengths are 8-bit, up to 255 bytes.
    dcid, pos = read_bytes(datagram, start + 6, datagram[start + 5], "VN DCID")
    if pos >= len(datagram):
        raise Truncated("Version Negotiation: no SCID length", layer=LAYER, offset=pos)
    scid, pos = read_bytes(datagram, pos + 1, datagram[pos], "VN SCID")
    rest = len(datagram) - pos
    if rest == 0 or rest % 4:
        raise Malformed(
            f"Version Negotiation: {rest} bytes of versions, not a non-zero multiple of 4",
            layer=LAYER,
            offset=pos,
        )
    versions = tuple(
        int.from_bytes(datagram[i : i + 4], "big") for i in range(pos, len(datagram), 4)
    )
    return VersionNegotiationPacket(dcid=dcid, scid=scid, versions=versions, offset=start)
