"""An estimate of packet loss upstream of the host, from TCP acknowledgements, as Zeek's
capture-loss does: a segment that acknowledges bytes the other direction never showed
means those bytes were on the wire but not in the capture (a span port, a tap or the
kernel dropped them). Mirror ports drop before the kernel does, so the kernel's drop count
alone says too little.

Per connection, :class:`AckWatch` keeps the highest sequence number seen in each direction
(a segment's end: its payload, SYN and FIN counted). Each segment with the ACK flag whose
other direction has been seen is an *ack*; it is a *gap* when it acknowledges beyond that
highest byte (sequence numbers compared modulo 2^32), and the missing bytes are counted
once: the other direction's highest byte moves up to the acknowledgement. A direction never
seen counts no ack, so a one-sided capture (an asymmetric span) reads as no estimate, not
as 100% loss.

What is looked at: only the segments that reach a flow (:class:`~.tcp.TcpFlow`). The hot
loop skips pure ACKs without payload and every packet of a connection whose handshake facts
are known, so the estimate is made on the handshakes: SYN-ACKs and the data segments of the
handshake (ClientHello, the server's flight, ...) whose ACK flag is set. A ClientHello lost
upstream shows as the ServerHello's ack above the client's highest byte.

Counts go to the run's stats: ``loss_acks``, ``loss_gaps``, ``loss_gap_bytes``, and per
capture interface ``loss_acks_if<N>``, ``loss_gaps_if<N>`` (``Segment.interface``). Both are
booked to the interface that carried, or should have carried, the acknowledged bytes: the
one the other direction's packets came in on (the last of them), so that per interface the
share ``loss_gaps_if<N> / loss_acks_if<N>`` is what that interface lost.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from ..net.segment import Segment

SYN: Final = 0x02
FIN: Final = 0x01
ACK: Final = 0x10
_MOD: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000


class AckWatch:
    """One connection's two directions: the highest byte seen of each, and the interface
    it came in on. ``forward`` is the direction of the connection's first packet."""

    __slots__ = ("if_a", "if_b", "top_a", "top_b")

    def __init__(self) -> None:
        self.top_a = -1  # one past the highest sequence number seen (-1: none seen)
        self.top_b = -1
        self.if_a = 0  # the interface that direction's last packet came in on
        self.if_b = 0

    def on_segment(self, forward: bool, seg: Segment, stats: Counter[str]) -> None:
        """Book one segment: its acknowledgement against the other direction, then its
        own extent."""
        flags = seg.flags
        end = (
            seg.seq + len(seg.payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        ) & _MOD
        if forward:
            other = self.top_b
            other_if = self.if_b
        else:
            other = self.top_a
            other_if = self.if_a
        if flags & ACK and other >= 0:
            iface = str(other_if)
            stats["loss_acks"] += 1
            stats["loss_acks_if" + iface] += 1
            ahead = (seg.ack - other) & _MOD
            if 0 < ahead < _HALF:  # acknowledges bytes never seen
                stats["loss_gaps"] += 1
                stats["loss_gaps_if" + iface] += 1
                stats["loss_gap_bytes"] += ahead
                other = seg.ack  # that hole is counted once
                if forward:
                    self.top_b = other
                else:
                    self.top_a = other
        if seg.truncated:
            # cut by the snap length: how far it reached is not known, so this direction's
            # acknowledgements are not judged until a whole segment says it again
            if forward:
                self.top_a = -1
                self.if_a = seg.interface
            else:
                self.top_b = -1
                self.if_b = seg.interface
        elif forward:
            top = self.top_a
            if top < 0 or 0 < ((end - top) & _MOD) < _HALF:
                self.top_a = end
            self.if_a = seg.interface
        else:
            top = self.top_b
            if top < 0 or 0 < ((end - top) & _MOD) < _HALF:
                self.top_b = end
            self.if_b = seg.interface


def loss_lines(
    stats: Counter[str], names: list[str] | None = None, *, always: bool = False
) -> list[str]:
    """The summary's lines, as Zeek's capture-loss puts it: ``estimated upstream loss: 0.12%
    (3 gaps in 2,500 acks, 4,096 bytes never seen)``, then one line per interface when more
    than one carried acks (``names``: the interfaces' names by index, when known). No line
    without an ack, nor without a gap unless ``always`` (a live run shows its 0.00%; a
    file's summary, say the README's, only a loss it found)."""
    acks = stats["loss_acks"]
    gaps = stats["loss_gaps"]
    if acks <= 0 or (gaps <= 0 and not always):
        return []
    out = [
        f"estimated upstream loss: {100 * gaps / acks:.2f}% ({gaps:,} gap{'' if gaps == 1 else 's'}"
        f" in {acks:,} ack{'' if acks == 1 else 's'}, {stats['loss_gap_bytes']:,} bytes never seen;"
        " TCP handshakes only)"
    ]
    ifaces = sorted(
        int(k.removeprefix("loss_acks_if"))
        for k, v in stats.items()
        if k.startswith("loss_acks_if") and v > 0
    )
    if names is not None and len(names) > 1:  # every interface named, those without acks too
        ifaces = list(range(len(names)))
    if len(ifaces) > 1:
        for n in ifaces:
            a = stats[f"loss_acks_if{n}"]
            g = stats[f"loss_gaps_if{n}"]
            name = names[n] if names is not None and n < len(names) else f"interface {n}"
            share = f"{100 * g / a:.2f}% ({g:,} of {a:,} acks)" if a else "no acks seen"
            out.append(f"  {name}: {share}")
    return out
