"""Every frame of every real capture: the decoder's innermost TCP/UDP view equals tshark's.

For each frame with a TCP or UDP layer in tshark, the innermost addresses, ports, TCP raw
sequence number and payload length must agree, except for the named, counted differences
documented in :func:`netframes.compare_with_tshark` (ICMP-quoted headers, tunnels whose inner
packet has no L4, snap-length truncation). Frames tshark shows without TCP/UDP must give a
reason string, never a segment.
"""

from __future__ import annotations

import pytest
from netframes import CORPUS, REALCAP, compare_with_tshark, shared

pytestmark = [pytest.mark.tshark, pytest.mark.shared]

CORPUS_FILES = sorted(p.name for p in CORPUS.glob("*")) if CORPUS.is_dir() else []
REALCAP_FILES = sorted(p.name for p in REALCAP.glob("*.pcap*")) if REALCAP.is_dir() else []


@pytest.mark.parametrize("name", CORPUS_FILES or ["(corpus absent)"])
def test_corpus_capture_matches_tshark(name: str) -> None:
    verdict, problems = compare_with_tshark(shared("corpus", "pcaps", name))
    assert problems == []
    assert verdict.agreed + verdict.skipped > 0


@pytest.mark.parametrize("name", REALCAP_FILES or ["(realcap absent)"])
def test_realcap_capture_matches_tshark(name: str) -> None:
    verdict, problems = compare_with_tshark(shared("realcap", name))
    assert problems == []
    assert verdict.agreed > 0


def test_documented_differences_are_the_known_ones() -> None:
    """The differences are where they are known to be, no more, no fewer."""
    dns = compare_with_tshark(shared("corpus", "pcaps", "mercury__dns_packet.capture2.pcap"))
    assert dns[1] == []
    # 23 ICMP errors quoting UDP/TCP headers; 6 Teredo frames (bubbles, ICMPv6) without L4.
    assert (dns[0].icmp_quote, dns[0].inner_not_l4) == (23, 6)
    gtp = compare_with_tshark(shared("corpus", "pcaps", "nDPI__tls_invalid_reads.pcapng"))
    assert gtp[1] == []
    # frame 2 claims IP total length 4148 in a 66-byte frame
    assert (gtp[0].agreed, gtp[0].truncated) == (12, 1)
