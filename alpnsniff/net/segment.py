"""What the packet decoder hands on: one TCP segment or UDP datagram, and its flow key."""

from __future__ import annotations

import struct
from dataclasses import dataclass

_PORTS = struct.Struct("!HH")


@dataclass(slots=True)
class Segment:
    """One TCP segment or UDP datagram: the innermost one, after link layers and tunnels.

    Built positionally on the hot path; the field order is part of the API.
    """

    proto: int  # 6 TCP, 17 UDP
    ip_version: int  # 4 or 6 (of the innermost IP header)
    src: bytes  # 4 or 16 raw address bytes
    dst: bytes
    sport: int
    dport: int
    seq: int  # TCP sequence number (raw, not relative); 0 for UDP
    ack: int  # TCP acknowledgment number (raw); 0 for UDP
    flags: int  # TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10); 0 for UDP
    # L4 payload, trimmed to the lengths the IP (and UDP) headers give: Ethernet padding and
    # trailers are never part of it.
    payload: bytes
    # True when the capture cut the packet short (snap length) so that ``payload`` holds fewer
    # bytes than the headers announce: the missing tail is a gap, not the end of the data.
    truncated: bool = False
    # Which capture interface the packet came in on (0 for a file of one interface; a
    # pcapng's interface id; the index of ``-i`` in a live run of several): set by the
    # dissector after decoding, read by whatever counts per interface (the loss estimate).
    interface: int = 0


def flow_key(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    """The directional flow key: ``src + dst + sport + dport`` (ports 2 bytes big-endian)."""
    return src + dst + _PORTS.pack(sport, dport)
