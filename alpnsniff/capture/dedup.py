"""Duplicate frames marked, not dissected twice: one packet mirrored from two ports, or twice
through one (a SPAN session on both ingress and egress of a VLAN).

:class:`Dedup` is a batch stage: ``Dedup().filter(batch)`` makes each frame that repeats one
of the last frames a :data:`DUPLICATE` placeholder in place (its link type), as the BPF
stage makes a rejected frame ``FILTERED_OUT``: the frame keeps its number (Wireshark's), is
counted (``packets_duplicate``) and is never looked at again.

What a duplicate is, after ``editcap -d`` / ``-D N`` / ``-w SECONDS`` (which compare the MD5
and length of the whole frame with the previous N - 1 frames, or with the frames of the time
window): two copies of one packet taken at two places of a network agree from the IP header
on, but for what the path may change. The link header may differ (an 802.1Q tag added on one
port, other MAC addresses after a router, another link type on another interface), and so
may the IPv4 TTL and header checksum, the IPv6 hop limit, and the DSCP/ECN byte (re-marked
at a trust boundary, ECN CE set by a congested router). So a frame's key is:

- IPv4 (link header, any 802.1Q / 802.1ad tags skipped): the IP header but its TOS, TTL and
  checksum, then the addresses and what follows, up to the IP total length (Ethernet
  padding, which depends on the tag, left out);
- IPv6: the header but its traffic class and hop limit, then the addresses and what follows,
  up to the payload length;
- any other ethertype: the ethertype and the bytes after the tags; any other link type: the
  link type and the whole frame.

Of what follows the IP header the key holds the first :data:`KEY_TRANSPORT_BYTES` (64): the
transport header (sequence numbers, ports, the checksum over the whole segment) and the
payload's first bytes (QUIC: the packet number and ciphertext). Two different packets equal
in all that are not met in practice (the reference test compares whole packets on the
corpus); hashing whole packets cost twice as much. A segment resent with other bytes at the
same sequence number and the same checksum within the window (a crafted overlap) would be
called a duplicate: the first copy is kept. A packet that carries another (GRE, IP in IP, a
UDP tunnel port: VXLAN, GENEVE, CAPWAP, …) is keyed whole: its inner headers lie past those
64 bytes, and a tunnel's UDP checksum is often 0.

A frame is a duplicate when a frame with its key is among the ``window_packets - 1`` frames
before it (as ``editcap -D N``; default 64) and was captured at most ``window_ns`` (default
1 ms) before or after it: both must hold. Mirror copies arrive microseconds apart; a real
retransmission comes a round trip later at least (and a TCP retransmission seldom has the
same bytes: a new IPv4 ID, a new TCP timestamp). On the corpus, nDPI__tor.pcap repeats 122
frames byte for byte ~2 s later, which ``editcap -d`` removes and this keeps. Every frame
enters the window, a duplicate too (as editcap). A frame the capture filter dropped (a
negative link type) is neither judged nor remembered.

What the duplicates would do undeduplicated: no second record (the TCP reassembler drops
retransmitted bytes, QUIC CRYPTO bytes seen before add nothing, a QUIC packet after the
facts is counted ``quic_packets_after_facts``), but the packet counts doubled
(``packets_fast_skipped``, ``quic_packets_after_facts``, ``tcp_empty_skipped``, ...).

Bounded: the window holds ``window_packets`` keys of at most 64 + 32 bytes each (a
tunnelled packet's: its length). Cost, on
``bench/gen_capture.py --packets 200000`` (best of 5, a loaded 2-core machine): 1.2–1.3 µs
a packet pure Python, 0.53–0.59 µs compiled with mypyc; paid only when the stage is on.
"""

from __future__ import annotations

from typing import Final

from ..net.tunnels import TUNNEL_UDP_PORTS
from .batch import DUPLICATE, PacketBatch

# IP protocols that carry a packet: IPv4 in IP, IPv6 in IP, GRE (ERSPAN too)
_TUNNEL_PROTOCOLS: Final = frozenset({4, 41, 47})

DEFAULT_WINDOW_PACKETS: Final = 64  # editcap -d looks at 4, -D at up to 1,000,000
DEFAULT_WINDOW_NS: Final = 1_000_000  # 1 ms: mirror copies come microseconds apart
MAX_WINDOW_PACKETS: Final = 1_000_000  # editcap's -D limit; keys held at most this many
# The bytes after the IP header (the IPv6 fixed header) a key holds: the transport header,
# its checksum over the rest of the packet, and the payload's first bytes; hashing whole
# packets cost twice as much on the benchmark (module docstring).
KEY_TRANSPORT_BYTES: Final = 64
MAX_VLAN_TAGS: Final = 4  # tags skipped before the ethertype (QinQ and more)

_VLAN_TPIDS: Final = (0x8100, 0x88A8, 0x9100)
_IPV4: Final = 0x0800
_IPV6: Final = 0x86DD
# link type -> (offset of the IP header, offset of the 2-byte ethertype or -1: "IP by its
# version nibble"), for the link types with a fixed header besides Ethernet
_FIXED_LINK: Final = {
    113: (16, 14),  # Linux cooked (SLL)
    276: (20, 0),  # SLL2
    101: (0, -1),  # raw IP
    12: (0, -1),  # raw IP (Linux DLT_RAW, as some files say)
    14: (0, -1),  # raw IP (OpenBSD DLT_RAW)
    228: (0, -1),  # IPv4
    229: (0, -1),  # IPv6
    0: (4, -1),  # BSD loopback (NULL)
    108: (4, -1),  # OpenBSD loopback (LOOP)
}
# The first element of a key: IPv4's header fields (below 2^60), or one of these minus
# what tells the key apart, so no two kinds of key are equal (all below 2^62: a short int
# once compiled)
_KIND_V6: Final = -1  # - IPv6's header fields (below 2^44)
_KIND_ETHERTYPE: Final = -(1 << 45)  # - the ethertype
_KIND_LINK: Final = -(1 << 46)  # - the link type


def _carries_a_tunnel(buf: bytes, proto: int, l4: int, end: int) -> bool:
    """Whether the packet's transport carries another packet (GRE, IP in IP, a UDP tunnel):
    then the inner headers (the inner TCP sequence number, its checksum) lie past the first
    bytes after the outer IP header, and the key must hold the whole packet, or two segments
    of one inner connection would read as the same packet."""
    if proto in _TUNNEL_PROTOCOLS:
        return True
    if proto != 17 or l4 + 8 > end:
        return False
    sport = buf[l4] << 8 | buf[l4 + 1]
    dport = buf[l4 + 2] << 8 | buf[l4 + 3]
    return sport in TUNNEL_UDP_PORTS or dport in TUNNEL_UDP_PORTS


def frame_key(linktype: int, buf: bytes, at: int, n: int) -> tuple[int, bytes]:
    """What two copies of the frame ``buf[at : at + n]`` of ``linktype`` agree on (see the
    module docstring): equal keys, the same packet. One function, no call: it runs once a
    packet."""
    end = at + n
    ipa = -1  # where the IP header starts, once found
    ethertype = -1
    if linktype == 1:
        off = at + 12
        if off + 2 <= end:
            ethertype = buf[off] << 8 | buf[off + 1]
            tags = 0
            while ethertype in _VLAN_TPIDS and tags < MAX_VLAN_TAGS and off + 6 <= end:
                off += 4
                tags += 1
                ethertype = buf[off] << 8 | buf[off + 1]
            if ethertype in (_IPV4, _IPV6):
                ipa = off + 2
    else:
        fixed = _FIXED_LINK.get(linktype)
        if fixed is not None:
            ip, etype_at = fixed
            if etype_at < 0:
                ipa = at + ip
            elif at + etype_at + 2 <= end:
                etype = buf[at + etype_at] << 8 | buf[at + etype_at + 1]
                if etype in (_IPV4, _IPV6):
                    ipa = at + ip
    if 0 <= ipa < end:
        version = buf[ipa] >> 4
        if version == 4 and end - ipa >= 20:
            total = buf[ipa + 2] << 8 | buf[ipa + 3]
            if total >= 20 and ipa + total < end:
                end = ipa + total  # (Ethernet padding left out)
            l4 = ipa + ((buf[ipa] & 15) << 2)
            if not _carries_a_tunnel(buf, buf[ipa + 9], l4, end):
                end = min(end, l4 + KEY_TRANSPORT_BYTES)
            # version/IHL, total length, ID, flags/fragment offset, protocol: the header but
            # TOS, TTL and checksum; then the addresses and everything after them
            head = (
                (buf[ipa] & 15) << 56
                | total << 40
                | buf[ipa + 4] << 32
                | buf[ipa + 5] << 24
                | buf[ipa + 6] << 16
                | buf[ipa + 7] << 8
                | buf[ipa + 9]
            )
            return (head, buf[ipa + 12 : end])
        if version == 6 and end - ipa >= 40:
            length = buf[ipa + 4] << 8 | buf[ipa + 5]
            if length and ipa + 40 + length < end:
                end = ipa + 40 + length
            if not _carries_a_tunnel(buf, buf[ipa + 6], ipa + 40, end):
                end = min(end, ipa + 40 + KEY_TRANSPORT_BYTES)
            # flow label, payload length, next header: the header but its traffic class and
            # hop limit; then the addresses and everything after them
            head = (
                (buf[ipa + 1] & 0x0F) << 40
                | buf[ipa + 2] << 32
                | buf[ipa + 3] << 24
                | length << 8
                | buf[ipa + 6]
            )
            return (_KIND_V6 - head, buf[ipa + 8 : end])
    if linktype == 1 and ethertype >= 0:
        return (_KIND_ETHERTYPE - ethertype, buf[off + 2 : end])
    return (_KIND_LINK - linktype, buf[at:end])


class Dedup:
    """The duplicate stage of a run (see the module docstring): one per capture run, its
    window carried from batch to batch. ``duplicates`` counts the frames it marked."""

    __slots__ = ("_keys", "_seen", "_seq", "duplicates", "window_ns", "window_packets")

    def __init__(
        self,
        window_packets: int = DEFAULT_WINDOW_PACKETS,
        window_ns: int = DEFAULT_WINDOW_NS,
    ) -> None:
        if not 2 <= window_packets <= MAX_WINDOW_PACKETS:
            raise ValueError(f"window of {window_packets} packets: from 2 to {MAX_WINDOW_PACKETS}")
        if window_ns < 0:
            raise ValueError(f"negative time window {window_ns} ns")
        self.window_packets = window_packets
        self.window_ns = window_ns
        self.duplicates = 0
        # the keys of the last window_packets frames, by their sequence number modulo it
        self._keys: list[tuple[int, bytes] | None] = [None] * window_packets
        # key -> (sequence number, capture time) of the latest frame with it
        self._seen: dict[tuple[int, bytes], tuple[int, int]] = {}
        self._seq = 0

    def filter(self, batch: PacketBatch) -> None:
        """Mark the batch's duplicates :data:`DUPLICATE` (their link type), in place.
        Long because it is per packet: one key (a slice of the packet and an int), one dict
        look-up and one store."""
        buf = batch.buf
        starts = batch.starts
        lengths = batch.lengths
        stamps = batch.stamps
        linktypes = batch.linktypes
        keys = self._keys
        seen = self._seen
        size = self.window_packets
        window_ns = self.window_ns
        seq = self._seq
        duplicates = 0
        for i in range(len(starts)):
            linktype = linktypes[i]
            if linktype < 0:  # filtered out already
                continue
            key = frame_key(linktype, buf, starts[i], lengths[i])
            ts = stamps[i]
            last = seen.get(key)
            if last is not None:
                last_seq, last_ts = last
                if seq - last_seq < size and -window_ns <= ts - last_ts <= window_ns:
                    linktypes[i] = DUPLICATE
                    duplicates += 1
            slot = seq % size
            old = keys[slot]
            if old is not None:
                held = seen.get(old)
                if held is not None and held[0] == seq - size:  # its latest frame leaves
                    del seen[old]
            keys[slot] = key
            seen[key] = (seq, ts)
            seq += 1
        self._seq = seq
        self.duplicates += duplicates
