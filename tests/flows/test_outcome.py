"""What the record says of the client's versions: one ranking, the ClientHello's own."""

from __future__ import annotations

from alpnsniff.pipeline import Dissector, dissect
from alpnsniff.records import Selection
from tests.flows.test_flow_table import TLS12, frames

SUPPORTED_VERSIONS = bytes.fromhex("002b0009080304030303020301")  # openssl: 1.3 1.2 1.1 1.0


def test_tls13_ranks_above_its_drafts_in_client_version() -> None:
    # openssl's real ClientHello with its TLS 1.2 entry rewritten to draft-23 (0x7f17): a
    # client offering 1.3 and a draft of it offers 1.3 at most (0x7f17 > 0x0304 as numbers)
    packets = frames(TLS12)
    ts, lt, hello = packets[3]
    at = hello.index(SUPPORTED_VERSIONS)
    draft = SUPPORTED_VERSIONS.replace(b"\x03\x03", b"\x7f\x17", 1)
    assert draft != SUPPORTED_VERSIONS
    rewritten = hello[:at] + draft + hello[at + len(draft) :]
    packets[3] = (ts, lt, rewritten)
    records = list(dissect(packets, Dissector()))
    assert [(r.client_version, r.selection, r.tls_version) for r in records] == [
        ("1.3", Selection.VISIBLE, "1.2")
    ]


def test_client_version_of_the_unchanged_hello() -> None:
    records = list(dissect(frames(TLS12), Dissector()))
    assert [r.client_version for r in records] == ["1.3"]


def test_a_client_without_alpn_is_not_offered_not_none() -> None:
    # curl --no-alpn against nginx: nothing was offered, so the server chose nothing
    # (selection "none" is kept for a server that had a choice and made none)
    import json
    import shutil
    import subprocess
    from pathlib import Path

    exe = shutil.which("alpnsniff")
    assert exe is not None, "the alpnsniff command is not installed (pip install -e .)"
    capture = Path(__file__).resolve().parents[2] / "captures" / "nginx_curl_noalpn.pcap"
    done = subprocess.run(
        [exe, "read", str(capture), "--format", "ndjson", "-q"], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["alpn_offered"], r["selection"], r["tls_version"]) for r in rows] == [
        ([], "not-offered", "1.3")
    ]
