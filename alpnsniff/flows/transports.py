"""The transports over UDP, and how each is recognised (QUIC now; DTLS next).

A UDP datagram on a 5-tuple the table does not know opens a flow of the first transport
that recognises its payload; none does: the 5-tuple is remembered as not ours. The hot loop
lets through to the table only datagrams whose first byte some transport can start with
(:data:`UDP_FIRST_BYTES`), so a new transport adds its first bytes here and costs the
others nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..keys.store import KeyStore
from ..net.segment import Segment
from ..quic.versions import looks_like_quic_long_header
from .quic import QuicFlow, quic_reopens
from .table import Flow


@dataclass(frozen=True, slots=True)
class UdpTransport:
    name: str
    first_bytes: frozenset[int]  # the first payload bytes a datagram of it can start with
    recognises: Callable[[bytes], bool]  # the payload opens a flow of this transport
    new_flow: Callable[[bytes, Segment, Counter[str], KeyStore | None], Flow]
    # what the table remembers of a finished flow, and the payload: a new connection?
    reopens: Callable[[object, bytes], bool]


def _new_quic(key: bytes, seg: Segment, stats: Counter[str], keys: KeyStore | None) -> Flow:
    return QuicFlow(key, seg, stats, keys)


QUIC = UdpTransport(
    name="quic",
    first_bytes=frozenset(range(0x80, 0x100)),  # a long header: only it opens a connection
    recognises=looks_like_quic_long_header,
    new_flow=_new_quic,
    reopens=quic_reopens,
)

UDP_TRANSPORTS: tuple[UdpTransport, ...] = (QUIC,)

#: 256 entries, 1 where some UDP transport's datagram can start with that byte.
UDP_FIRST_BYTES = bytes(
    1 if any(b in t.first_bytes for t in UDP_TRANSPORTS) else 0 for b in range(256)
)


def recognise_udp(payload: bytes) -> UdpTransport | None:
    """The transport whose flow this datagram opens, if any."""
    for transport in UDP_TRANSPORTS:
        if transport.recognises(payload):
            return transport
    return None
