"""Server-only copies of real captures against tshark: tshark shows the ServerHello's ALPN
(``tls.handshake.extensions_alpn_str``) on the server's side alone too; alpnsniff's row
for that ServerHello says ``visible`` with the same protocol, and no offer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tshark_view import tshark_unavailable_reason

from alpnsniff.pipeline import analyze_file
from alpnsniff.records import Selection
from tests.flows.one_sided import write_one_side

REPO = Path(__file__).resolve().parents[2]
CAPTURES = [REPO / "captures" / n for n in (
    "openssl_tls12_h2.pcap", "nginx_curl_h2_tls12.pcap", "gnutls_tls12_alpn.pcap",
    "nghttp_h2_tls12.pcap", "openssl_tls12_vlan.pcap", "openssl_tls12_gre.pcap",
    "pyssl_tls12_http11.pcap", "openssl_tls12_resumed.pcap",
)]  # fmt: skip


def _tshark_server_alpn(path: Path) -> list[tuple[int, str]]:
    """(frame, ALPN) of each ServerHello with ALPN tshark shows."""
    done = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-Y", "tls.handshake.type == 2", "-T", "fields",
         "-e", "frame.number", "-e", "tls.handshake.extensions_alpn_str"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    out = []
    for line in done.stdout.decode().splitlines():
        frame, _, alpn = line.partition("\t")
        if alpn:
            out.append((int(frame), alpn))
    return out


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_server_only_selection_equals_tshark(path: Path, tmp_path: Path) -> None:
    reason = tshark_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    copy = tmp_path / "server.pcapng"
    write_one_side(path, copy, analyze_file(path).handshakes, "server")
    shown = _tshark_server_alpn(copy)
    assert shown, "tshark shows no ServerHello ALPN on the server's side"
    rows = {h.server_frame: h for h in analyze_file(copy).handshakes}
    for frame, alpn in shown:
        h = rows.get(frame)
        assert h is not None, f"frame {frame}: tshark ALPN {alpn!r}, no alpnsniff row"
        assert h.selection is Selection.VISIBLE and h.alpn_offered_raw is None
        assert h.alpn_selected_raw is not None and h.alpn_selected_raw.decode() == alpn
