"""alpnsniff against tshark 4.0.17 on every capture: TLS over TCP.

For each capture in ``captures/``, ``../shared/realcap`` and ``../shared/corpus/pcaps``, every
ClientHello tshark dissects over TCP must come out of alpnsniff with the same offered ALPN
octets, matched by connection and frame, and every ServerHello ALPN tshark shows must be the
record's ``alpn_selected_raw`` (selection "visible"). See ``compare.py`` for the rules.

Out of scope here (UDP): QUIC, DTLS and gQUIC rows (QUIC has its own comparison later).

``KNOWN_DIFFERENCES`` lists every difference that is not an alpnsniff bug, each checked by
reading the bytes (``tshark -V -x``). A listed difference that no longer occurs fails too, so
the table stays true. Differences that are alpnsniff bugs are NOT listed: they fail.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from compare import compare_tcp
from tshark_view import TsharkCache, capture_params

from alpnsniff.pipeline import analyze_file

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
FOLDERS: tuple[tuple[str, Path], ...] = (
    ("captures", REPO / "captures"),
    ("realcap", SHARED / "realcap"),
    ("corpus", SHARED / "corpus" / "pcaps"),
)

pytestmark = [pytest.mark.tshark]


@dataclass(frozen=True, slots=True)
class Known:
    file: str
    kind: str  # a compare.py kind: missing, extra, frame, alpn, sh_missing, ...
    frames: tuple[int, ...]  # tshark's frame (alpnsniff's for extra / sh_extra / alert_extra)
    what: str
    right: str  # who is right: "alpnsniff", "tshark", "both"
    why: str
    stat: str = ""  # an alpnsniff stats counter that must be > 0: the skip is counted


_OPENVPN = (
    "TLS carried in OpenVPN P_CONTROL_V1 messages (opcode 0x20, session id, HMAC, packet-id "
    "before the record): tshark's OpenVPN dissector unwraps it; alpnsniff reads TLS only as a "
    "TCP stream of its own and does not decode VPN framing (out of scope; these CH offer no ALPN)"
)
_MALFORMED = (
    "a fuzzed ClientHello whose vectors overrun the message (tshark: 'Vector length ... too "
    "large', Malformed Packet): tshark still emits a Client Hello row with what it parsed (no "
    "ALPN); alpnsniff rejects the message and counts it instead of guessing an offer list"
)

KNOWN_DIFFERENCES: tuple[Known, ...] = (
    Known("mercury__openvpn_tcp_multi.pcap", "missing", (10, 170),
          "ClientHello inside OpenVPN-over-TCP control channel", "tshark", _OPENVPN,
          stat="tcp_not_tls"),
    Known("nDPI__openvpn_nohmac_tcp.pcapng", "missing", (10,),
          "ClientHello inside OpenVPN-over-TCP control channel", "tshark", _OPENVPN,
          stat="tcp_not_tls"),
    Known("nDPI__443-opvn.pcap", "missing", (10,),
          "ClientHello inside OpenVPN-over-TCP control channel (port 1194)", "tshark", _OPENVPN),
    Known("nDPI__tls_cipher_lens.pcapng", "missing", (2, 3, 5),
          "cipher_suites length 134 > the 133 bytes left (and similar): malformed CH, no ALPN",
          "both", _MALFORMED, stat="tcp_client_hello_truncated"),
    Known("nDPI__tls_invalid_reads.pcapng", "missing", (4, 12),
          "frame 12: ALPN extension of length 11 declares a 47241-byte list; frame 4 likewise "
          "overruns; tshark shows no ALPN for either", "both", _MALFORMED,
          stat="tcp_client_hello_truncated"),
    Known("nDPI__heuristic_tcp_ack_payload.pcap", "missing", (187,),
          "frame 187 is a byte-identical duplicate of frame 186 (same timestamp, seq, payload)",
          "alpnsniff",
          "this file is dissected with tcp desegmentation and sequence analysis off (corpus "
          "override), so tshark reports the duplicated ClientHello twice; it is one handshake"),
    Known("nDPI__heuristic_tcp_ack_payload.pcap", "sh_missing", (191,),
          "frame 191 is a byte-identical duplicate of the ServerHello in frame 190", "alpnsniff",
          "as above: with desegmentation off tshark shows the duplicated ServerHello again"),
)  # fmt: skip


PARAMS = capture_params(FOLDERS)
ALL_FILES = [p.values[0] for p in PARAMS if p.values[0] is not None]  # type: ignore[attr-defined]


@pytest.mark.parametrize("capture", PARAMS)
def test_tls_over_tcp_matches_tshark(
    capture: Path, tshark_cache: TsharkCache, diff_tally: Counter[str]
) -> None:
    tshark_cache.prefetch(ALL_FILES)  # every file, in the background, 2 at a time
    result = analyze_file(capture)
    records = result.handshakes
    view = tshark_cache.get(capture)
    cmp = compare_tcp(view, records)
    known = {(k.kind, f): k for k in KNOWN_DIFFERENCES if k.file == capture.name for f in k.frames}
    seen = {(d.kind, d.frame) for d in cmp.differences}
    diff_tally.update(cmp.counts)
    diff_tally["files"] += 1
    diff_tally["known"] += len(seen & known.keys())
    unexplained = [str(d) for d in cmp.differences if (d.kind, d.frame) not in known]
    diff_tally["unexplained"] += len(unexplained)
    gone = [
        f"{k.kind} @ frame {f}: {k.what}" for (kind, f), k in known.items() if (kind, f) not in seen
    ]
    assert not unexplained, "differences from tshark:\n" + "\n".join(unexplained)
    assert not gone, "known differences that no longer occur:\n" + "\n".join(gone)
    uncounted = [k.stat for k in known.values() if k.stat and not result.stats.get(k.stat)]
    assert not uncounted, f"alpnsniff did not count these skips: {sorted(set(uncounted))}"


def test_known_differences_are_well_formed() -> None:
    kinds = {"missing", "extra", "frame", "alpn", "sni", "sslv2", "sh_missing", "sh_alpn", "sh_selection",
             "sh_extra", "alert_missing", "alert_extra"}  # fmt: skip
    for k in KNOWN_DIFFERENCES:
        assert k.kind in kinds, k
        assert k.frames, k
        assert k.right in ("alpnsniff", "tshark", "both"), k
        assert k.what and k.why, k
