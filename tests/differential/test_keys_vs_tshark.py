"""With key logs: every EncryptedExtensions ALPN (TLS 1.3 and QUIC) and every NPN choice
that tshark 4.0.17 shows with the keys, alpnsniff shows too, on the same connection.

Captures with their key logs: ../shared/realcap (X.pcap + X.keys, and X_dsb.pcapng with the
secrets embedded), the project's captures/ and tests/keys/data/ (openssl, Python ssl,
nginx+curl, gnutls, aioquic, headless Chromium; ChaCha20, CCM, AES-GCM/CBC suites).
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from alpnsniff.keys.keylog import KeyLog
from alpnsniff.pipeline import analyze_file
from alpnsniff.records import Selection
from alpnsniff.tls.alpn import alpn_text
from tests.conftest import CAPTURES, REALCAP, REPO

KEYS_DATA = REPO / "tests" / "keys" / "data"

# tshark 4.0 cannot follow these (checked by hand): after a QUIC Retry or Version
# Negotiation it decrypts no Handshake packet (see ../shared/realcap/RECIPES.md).
# alpnsniff shows the EncryptedExtensions there; the test requires it to.
TSHARK_BLIND = {
    "aioquic_h3_v1_retry.pcap",
    "aioquic_h3_v1_retry_dsb.pcapng",
    "aioquic_h3_v2_incompatible_vn_to_v1.pcap",
    "aioquic_h3_v2_incompatible_vn_to_v1_dsb.pcapng",
    "aioquic_retry.pcap",
}


def keyed_captures() -> list[tuple[Path, Path | None]]:
    """(capture, key log or None when the secrets are embedded), from every folder present."""
    out: list[tuple[Path, Path | None]] = []
    for folder in (REALCAP, CAPTURES, KEYS_DATA):
        if not folder.is_dir():
            continue
        for keys in sorted(folder.glob("*.keys")):
            pcap = keys.with_suffix(".pcap")
            if pcap.exists():
                out.append((pcap, keys))
        out += [(p, None) for p in sorted(folder.glob("*_dsb.pcapng"))]
    return out


CASES = keyed_captures()
Conn = tuple[str, int, str, int]  # server ip, server port, client ip, client port


@cache
def tshark_view(pcap: Path, keys: Path | None) -> tuple[dict[Conn, str], dict[Conn, str]]:
    """tshark's EncryptedExtensions ALPN and NPN choice per connection."""
    prefs = ["-o", f"tls.keylog_file:{keys or ''}", "-o", "tcp.desegment_tcp_streams:TRUE"]
    fields = ["frame.number", "ip.src", "ipv6.src", "tcp.srcport", "udp.srcport", "ip.dst",
              "ipv6.dst", "tcp.dstport", "udp.dstport", "tls.handshake.type",
              "tls.handshake.extensions_alpn_str", "tls.handshake.npn_selected_protocol"]  # fmt: skip
    cmd = ["tshark", "-n", "-r", str(pcap), *prefs, "-Y",
           "tls.handshake.type == 8 || tls.handshake.type == 67", "-T", "fields",
           "-E", "occurrence=l", "-E", "separator=/t"]  # fmt: skip
    for f in fields:
        cmd += ["-e", f]
    # occurrence=l: the last ALPN of a frame is the EncryptedExtensions' (a TLS 1.3
    # ServerHello carries none); types are read with all occurrences below
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    types_cmd = [*cmd[: cmd.index("-E")], "-E", "occurrence=a", "-E", "aggregator=,",
                 "-e", "tls.handshake.type"]  # fmt: skip
    types = subprocess.run(types_cmd, capture_output=True, text=True, timeout=120).stdout
    ee: dict[Conn, str] = {}
    npn: dict[Conn, str] = {}
    for line, kinds in zip(text.splitlines(), types.splitlines(), strict=True):
        col = line.split("\t")
        src, sport = col[1] or col[2], int(col[3] or col[4])
        dst, dport = col[5] or col[6], int(col[7] or col[8])
        handshake_types = kinds.split(",")
        if "8" in handshake_types:
            ee[(src, sport, dst, dport)] = col[10]
        if "67" in handshake_types:
            npn[(dst, dport, src, sport)] = col[11]
    return ee, npn


@pytest.fixture(scope="module", autouse=True)
def _prefetch() -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda c: tshark_view(*c), CASES))


@pytest.mark.skipif(not CASES, reason="no capture with a key log here (../shared absent?)")
@pytest.mark.parametrize(
    ("pcap", "keys"), CASES, ids=[f"{p.parent.name}/{p.name}" for p, _ in CASES]
)
def test_decrypted_choice_matches_tshark(pcap: Path, keys: Path | None) -> None:
    keylog = None
    if keys is not None:
        keylog = KeyLog()
        keylog.load(keys)
    records = analyze_file(pcap, keylog=keylog).handshakes
    ours_ee = {
        (h.server_ip, h.server_port, h.client_ip, h.client_port): (
            alpn_text(h.alpn_selected_raw) if h.alpn_selected_raw is not None else ""
        )
        for h in records
        if h.selection is Selection.DECRYPTED
        or (h.selection is Selection.NONE and h.tls_version == "1.3")
    }
    ours_npn = {
        (h.server_ip, h.server_port, h.client_ip, h.client_port): alpn_text(h.npn_selected_raw)
        for h in records
        if h.npn_selected_raw is not None
    }
    ee, npn = tshark_view(pcap, keys)
    for conn, alpn in ee.items():
        assert ours_ee.get(conn) == alpn, f"EncryptedExtensions ALPN on {conn}"
    for conn, chosen in npn.items():
        assert ours_npn.get(conn) == chosen, f"NPN choice on {conn}"
    if pcap.name in TSHARK_BLIND:
        assert not ee and ours_ee, "tshark now decrypts this one: update TSHARK_BLIND"
    else:
        assert set(ours_ee) == set(ee), "alpnsniff decrypted a connection tshark did not"
    assert ee or npn or pcap.name in TSHARK_BLIND or ours_ee == {}, "nothing compared"
