"""The frames of a decrypted Initial packet (RFC 9000 §19, §17.2.2).

An Initial may carry only PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE (RFC 9000
§17.2.2, Table 3); any other frame type is a protocol violation and makes the whole
packet :class:`Malformed`. CRYPTO frames are returned with their offsets for the
reassembler; CONNECTION_CLOSE is returned whole (its error code says e.g. which TLS alert
ended the handshake); the rest are parsed only far enough to skip them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alpnsniff.errors import Malformed, Truncated
from alpnsniff.quic.wire import LAYER, MAX_VARINT, read_bytes, read_varint

FRAME_PADDING = 0x00
FRAME_PING = 0x01
FRAME_ACK = 0x02
FRAME_ACK_ECN = 0x03
FRAME_CRYPTO = 0x06
FRAME_CONNECTION_CLOSE = 0x1C
FRAME_CONNECTION_CLOSE_APP = 0x1D

#: RFC 9000 §20.1: CRYPTO_ERROR is 0x0100–0x01ff, the low byte being the TLS alert.
CRYPTO_ERROR_BASE = 0x100

#: A run of PADDING frames (zero bytes); a regex match is the fastest skip in CPython.
_ZEROS = re.compile(rb"\x00+")


@dataclass(frozen=True, slots=True, kw_only=True)
class CryptoFrame:
    """One CRYPTO frame: ``data`` sits at ``offset`` of the Initial-space crypto stream."""

    offset: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClose:
    """A CONNECTION_CLOSE frame (RFC 9000 §19.19)."""

    #: The Error Code: a transport error (0x1c) or an application one (0x1d).
    error_code: int
    #: The frame type that triggered the error (0x1c only; None for 0x1d).
    frame_type: int | None
    #: The Reason Phrase bytes as sent (meant to be UTF-8, not guaranteed).
    reason: bytes
    #: True for the application-level form 0x1d, which RFC 9000 §17.2.2 does not allow
    #: in an Initial; kept (not rejected) because the close itself is a fact worth telling.
    application: bool

    @property
    def tls_alert(self) -> int | None:
        """The TLS alert of a CRYPTO_ERROR (0x0100 + alert), e.g. 120 for 0x178."""
        if not self.application and CRYPTO_ERROR_BASE <= self.error_code <= 0x1FF:
            return self.error_code - CRYPTO_ERROR_BASE
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class InitialFrames:
    """What one Initial packet's plaintext carried."""

    crypto: tuple[CryptoFrame, ...]
    close: ConnectionClose | None
    #: Counts of the frames that are only skipped (for statistics and tests).
    ping_count: int
    ack_count: int
    padding_bytes: int


def parse_initial_frames(plaintext: bytes) -> InitialFrames:
    """Parse every frame of a decrypted Initial payload.

    Raises :class:`~alpnsniff.errors.Truncated` when a frame runs past the end and
    :class:`~alpnsniff.errors.Malformed` for a frame type an Initial may not carry or a
    CRYPTO frame past the 2^62 stream limit.
    """
    crypto: list[CryptoFrame] = []
    close: ConnectionClose | None = None
    pings = acks = padding = 0
    n = len(plaintext)
    pos = 0
    while pos < n:
        frame_type = plaintext[pos]
        if frame_type == FRAME_PADDING:
            end = _ZEROS.match(plaintext, pos).end()  # type: ignore[union-attr]  # byte is 0
            padding += end - pos
            pos = end
            continue
        start = pos
        frame_type, pos = read_varint(plaintext, pos)
        if frame_type == FRAME_CRYPTO:
            offset, pos = read_varint(plaintext, pos)
            length, pos = read_varint(plaintext, pos)
            if offset + length > MAX_VARINT:
                raise Malformed(
                    f"CRYPTO frame ends past 2^62 (offset {offset}, length {length})",
                    layer=LAYER,
                    offset=start,
                )
            data, pos = read_bytes(plaintext, pos, length, "CRYPTO data")
            crypto.append(CryptoFrame(offset=offset, data=data))
        elif frame_type == FRAME_PING:
            pings += 1
        elif frame_type in (FRAME_ACK, FRAME_ACK_ECN):
            pos = _skip_ack(plaintext, pos, ecn=frame_type == FRAME_ACK_ECN)
            acks += 1
        elif frame_type in (FRAME_CONNECTION_CLOSE, FRAME_CONNECTION_CLOSE_APP):
            close, pos = _parse_close(plaintext, pos, app=frame_type == FRAME_CONNECTION_CLOSE_APP)
        else:
            raise Malformed(
                f"frame type 0x{frame_type:x} not allowed in an Initial packet",
                layer=LAYER,
                offset=start,
            )
    return InitialFrames(
        crypto=tuple(crypto),
        close=close,
        ping_count=pings,
        ack_count=acks,
        padding_bytes=padding,
    )


def _skip_ack(data: bytes, pos: int, *, ecn: bool) -> int:
    """RFC 9000 §19.3: Largest Acknowledged, ACK Delay, Range Count, First Range, ranges."""
    largest, pos = read_varint(data, pos)
    _delay, pos = read_varint(data, pos)
    range_count, pos = read_varint(data, pos)
    first_range, pos = read_varint(data, pos)
    if first_range > largest:
        raise Malformed(
            "ACK: First ACK Range exceeds Largest Acknowledged", layer=LAYER, offset=pos
        )
    # Each range is two varints of at least one byte: a count beyond what the bytes
    # left could hold is caught before looping over it.
    if range_count * 2 > len(data) - pos:
        raise Truncated(f"ACK: {range_count} ranges cannot fit", layer=LAYER, offset=pos)
    for _ in range(range_count):
        _gap, pos = read_varint(data, pos)
        _length, pos = read_varint(data, pos)
    if ecn:
        for _ in range(3):  # ECT0, ECT1, ECN-CE counts
            _count, pos = read_varint(data, pos)
    return pos


def _parse_close(data: bytes, pos: int, *, app: bool) -> tuple[ConnectionClose, int]:
    """RFC 9000 §19.19: Error Code, [Frame Type], Reason Phrase Length, Reason Phrase."""
    error_code, pos = read_varint(data, pos)
    frame_type: int | None = None
    if not app:
        frame_type, pos = read_varint(data, pos)
    reason_len, pos = read_varint(data, pos)
    reason, pos = read_bytes(data, pos, reason_len, "CONNECTION_CLOSE reason")
    close = ConnectionClose(
        error_code=error_code, frame_type=frame_type, reason=reason, application=app
    )
    return close, pos


# --------------------------------------------------------------------- Google T05x
# T050/T051 protect their Initials the IETF way but frame them the Google QUIC way
# (Chromium's quic_framer.cc for non-IETF frames): CRYPTO is 0x08, ACK is 0b01M0LLOO,
# PADDING runs to the end of the packet, CONNECTION_CLOSE has a 32-bit error code.
GQUIC_PADDING = 0x00
GQUIC_CONNECTION_CLOSE = 0x02
GQUIC_PING = 0x07
GQUIC_CRYPTO = 0x08
GQUIC_ACK_MASK = 0x40  # 0x40–0x7f; 0x80–0xff would be STREAM, never in an Initial
#: ACK type bits LL / OO → field length in bytes (ReadAckPacketNumberLength).
_GQUIC_PN_LENGTHS = (1, 2, 4, 6)


def parse_google_initial_frames(plaintext: bytes) -> InitialFrames:
    """Parse a T050/T051 Initial payload; same result type and errors as the IETF parser."""
    crypto: list[CryptoFrame] = []
    close: ConnectionClose | None = None
    pings = acks = padding = 0
    n = len(plaintext)
    pos = 0
    while pos < n:
        start = pos
        frame_type = plaintext[pos]
        pos += 1
        if frame_type == GQUIC_PADDING:
            padding += n - start
            break
        if frame_type == GQUIC_CRYPTO:
            offset, pos = read_varint(plaintext, pos)
            length, pos = read_varint(plaintext, pos)
            data, pos = read_bytes(plaintext, pos, length, "CRYPTO data")
            crypto.append(CryptoFrame(offset=offset, data=data))
        elif frame_type == GQUIC_PING:
            pings += 1
        elif frame_type & 0xC0 == GQUIC_ACK_MASK:
            pos = _skip_google_ack(plaintext, pos, frame_type)
            acks += 1
        elif frame_type == GQUIC_CONNECTION_CLOSE:
            code, pos = read_bytes(plaintext, pos, 4, "CONNECTION_CLOSE error code")
            reason_len, pos = read_bytes(plaintext, pos, 2, "CONNECTION_CLOSE reason length")
            reason, pos = read_bytes(
                plaintext, pos, int.from_bytes(reason_len, "big"), "CONNECTION_CLOSE reason"
            )
            close = ConnectionClose(
                error_code=int.from_bytes(code, "big"),
                frame_type=None,
                reason=reason,
                application=False,
            )
        else:
            raise Malformed(
                f"Google QUIC frame type 0x{frame_type:02x} not allowed in an Initial packet",
                layer=LAYER,
                offset=start,
            )
    return InitialFrames(
        crypto=tuple(crypto), close=close, ping_count=pings, ack_count=acks, padding_bytes=padding
    )


def _skip_google_ack(data: bytes, pos: int, frame_type: int) -> int:
    """Largest Acked, ACK Delay (ufloat16), [Blocks], First Block, blocks, timestamps."""
    largest_len = _GQUIC_PN_LENGTHS[(frame_type >> 2) & 0x03]
    block_len = _GQUIC_PN_LENGTHS[frame_type & 0x03]
    _, pos = read_bytes(data, pos, largest_len + 2, "gQUIC ACK largest/delay")
    blocks = 0
    if frame_type & 0x20:
        count, pos = read_bytes(data, pos, 1, "gQUIC ACK block count")
        blocks = count[0]
    # First block, then each further block as a 1-byte gap and a block length.
    _, pos = read_bytes(data, pos, block_len + blocks * (1 + block_len), "gQUIC ACK blocks")
    stamps, pos = read_bytes(data, pos, 1, "gQUIC ACK timestamp count")
    if stamps[0]:
        # The first timestamp is a 1-byte delta and 4 bytes, the others 1 + 2 bytes.
        _, pos = read_bytes(data, pos, 5 + (stamps[0] - 1) * 3, "gQUIC ACK timestamps")
    return pos
