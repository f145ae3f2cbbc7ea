"""The transports over UDP, and how each is recognised (QUIC now; DTLS next).

A UDP datagram on a 5-tuple the table does not know opens a flow of the first transport
that recognises its payload; none does: the 5-tuple is remembered as not ours (counted as
``<name>_connections_not_dissected`` when it is a protocol recognised but not dissected yet,
such as DTLS). The hot loop
lets through to the table only datagrams whose first byte some transport can start with
(:data:`UDP_FIRST_BYTES`), so a new transport adds its first bytes here and costs the
others nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..dtls.detect import FIRST_BYTES as DTLS_FIRST_BYTES
from ..dtls.detect import looks_like_dtls
from ..keys.store import KeyStore
from ..net.segment import Segment
from ..quic.versions import looks_like_quic_long_header
from .answers import OfferLedger
from .quic import QuicFlow, quic_reopens
from .table import Flow


@dataclass(frozen=True, slots=True)
class UdpTransport:
    name: str
    first_bytes: frozenset[int]  # the first payload bytes a datagram of it can start with
    recognises: Callable[[bytes], bool]  # the payload opens a flow of this transport
    new_flow: Callable[[bytes, Segment, Counter[str], KeyStore | None, OfferLedger], Flow]
    # what the table remembers of a finished flow, and the payload: a new connection?
    reopens: Callable[[object, bytes], bool]


def _new_quic(
    key: bytes, seg: Segment, stats: Counter[str], keys: KeyStore | None, ledger: OfferLedger
) -> Flow:
    return QuicFlow(key, seg, stats, keys, ledger)


QUIC = UdpTransport(
    name="quic",
    first_bytes=frozenset(range(0x80, 0x100)),  # a long header: only it opens a connection
    recognises=looks_like_quic_long_header,
    new_flow=_new_quic,
    reopens=quic_reopens,
)

UDP_TRANSPORTS: tuple[UdpTransport, ...] = (QUIC,)


@dataclass(frozen=True, slots=True)
class UdpRecognised:
    """A protocol recognised on UDP but not dissected yet: its 5-tuples are counted
    (``<name>_connections_not_dissected``) and skipped, so the summary can say what was seen."""

    name: str
    first_bytes: frozenset[int]
    recognises: Callable[[bytes], bool]


NOT_DISSECTED: tuple[UdpRecognised, ...] = (
    UdpRecognised("dtls", DTLS_FIRST_BYTES, looks_like_dtls),
)

#: 256 entries, 1 where a datagram of some UDP transport (dissected or only recognised) can
#: start with that byte.
_STARTS: frozenset[int] = frozenset().union(
    *(t.first_bytes for t in UDP_TRANSPORTS), *(p.first_bytes for p in NOT_DISSECTED)
)
UDP_FIRST_BYTES = bytes(1 if b in _STARTS else 0 for b in range(256))


def recognise_udp(payload: bytes) -> UdpTransport | None:
    """The transport whose flow this datagram opens, if any."""
    for transport in UDP_TRANSPORTS:
        if transport.recognises(payload):
            return transport
    return None


def recognised_not_dissected(payload: bytes) -> str | None:
    """The name of a protocol this datagram starts, that is recognised but not dissected."""
    for proto in NOT_DISSECTED:
        if proto.recognises(payload):
            return proto.name
    return None
