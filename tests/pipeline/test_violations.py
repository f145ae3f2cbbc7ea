"""Protocol violations in the server's answer are flagged, not hidden.

A real openssl TLS 1.2 exchange (server selects h2 from h2,http/1.1) with the ServerHello's
ALPN extension rewritten in place (hand-built bytes: the malformed-input exception).
"""

from __future__ import annotations

from alpnsniff.capture import open_capture
from alpnsniff.pipeline import Dissector, dissect
from alpnsniff.records import Selection
from tests.conftest import shared_file

# ALPN extension in the ServerHello: type 16, length 5, list length 3, "h2"
SERVER_ALPN_H2 = b"\x00\x10\x00\x05\x00\x03\x02h2"


def run_with_server_alpn(replacement: bytes):
    with open_capture(shared_file("realcap", "openssl_tls12_alpn_h2.pcap")) as src:
        packets = list(src.packets())
    patched = []
    hits = 0
    for ts, lt, data in packets:
        if SERVER_ALPN_H2 in data:
            data = data.replace(SERVER_ALPN_H2, replacement)
            hits += 1
        patched.append((ts, lt, data))
    assert hits == 1
    (h,) = list(dissect(patched, Dissector()))
    return h


def test_selected_protocol_not_offered() -> None:
    h = run_with_server_alpn(b"\x00\x10\x00\x05\x00\x03\x02h3")
    assert h.selection is Selection.VISIBLE and h.alpn_selected_raw == b"h3"
    assert h.violation == "selected-not-offered"


def test_serverhello_with_two_protocols() -> None:
    # list of two: "h" and an empty name (RFC 7301: exactly one, non-empty)
    h = run_with_server_alpn(b"\x00\x10\x00\x05\x00\x03\x01h\x00")
    assert h.violation is not None
    assert "selected-not-offered" in h.violation
    assert any(
        v.startswith("serverhello-alpn-count-2") or "alpn" in v for v in h.violation.split(";")
    )


def test_conforming_answer_has_no_violation() -> None:
    h = run_with_server_alpn(SERVER_ALPN_H2)
    assert h.violation is None and h.alpn_selected_raw == b"h2"
