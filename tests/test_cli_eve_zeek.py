"""``alpnsniff read -T eve`` and ``-T zeek`` through the installed command, read back as their
users read them: jq on the EVE lines, a zeek-cut-like cut (and zat) on the ssl.log."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CAPTURES = REPO / "captures"


def installed_command() -> str | None:
    found = shutil.which("alpnsniff")
    beside = Path(sys.executable).with_name("alpnsniff")
    return str(beside) if found and beside.exists() else found


ALPNSNIFF = installed_command()


def read(*args: str) -> subprocess.CompletedProcess[str]:
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    done = subprocess.run(
        [ALPNSNIFF, "read", *args, "-q"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def jq(program: str, text: str) -> list[str]:
    done = subprocess.run(
        ["jq", "-c", program], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")


@needs_jq
def test_eve_to_stdout_read_with_jq() -> None:
    # tshark on these captures: openssl_tls12_h2 frame 4, SNI www.example.test, ALPN
    # h2,http/1.1, the server's h2 (TLS 1.2); openssl_aioquic_ipv6: the same over IPv6, then
    # a QUIC v1 Initial (frame 22) offering h3 for quic.example.test
    out = read("captures/openssl_tls12_h2.pcap", "captures/openssl_aioquic_ipv6.pcap", "-T", "eve")
    assert len(out.stdout.splitlines()) == 3
    assert jq('select(.event_type=="tls") | [.tls.sni, .tls.client_alpns, .tls.server_alpns]',
              out.stdout) == ['["www.example.test",["h2","http/1.1"],["h2"]]'] * 2  # fmt: skip
    assert jq(
        'select(.event_type=="quic") | [.src_ip, .quic.version, '
        '(.quic.extensions[] | select(.name=="alpn") | .values)]',
        out.stdout,
    ) == ['["fd00:0099:0000:0000:0000:0000:0000:0002","1",["h3"]]']
    assert jq("[.timestamp, .proto, .alpnsniff.frame]", out.stdout)[0] == (
        '["2026-11-22T00:54:32.086361+0000","TCP",4]'
    )
    # one Community ID per connection, as the ndjson column gives it
    nd = read("captures/openssl_tls12_h2.pcap", "captures/openssl_aioquic_ipv6.pcap",
              "-T", "ndjson").stdout  # fmt: skip
    assert jq(".community_id", out.stdout) == jq(".community_id", nd)


@needs_jq
def test_eve_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "eve.json"
    read("captures/openssl_tls12_alert120.pcap", "-T", "eve", "-o", str(path))
    (event,) = [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]
    assert event["tls"]["version"] == "UNDETERMINED"  # alert 120: no ServerHello
    assert event["alpnsniff"]["selection"] == "rejected"


def zeek_cut(text: str, *columns: str) -> list[list[str]]:
    """``zeek-cut col…``: the named columns of each row, found by the #fields header."""
    lines = text.splitlines()
    (fields,) = [line.split("\t")[1:] for line in lines if line.startswith("#fields\t")]
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    return [[r[fields.index(c)] for c in columns] for r in rows]


def test_zeek_to_stdout_cut_by_its_header() -> None:
    # tshark: openssl_tls12_h2's ServerHello picks 0xc02c (TLS_ECDHE_ECDSA_WITH_AES_256_GCM_
    # SHA384) with version 0x0303; openssl_tls13_h2's picks 0x1302 with supported_version 0x0304
    out = read("captures/openssl_tls12_h2.pcap", "captures/openssl_tls13_h2.pcap", "-T", "zeek")
    lines = out.stdout.splitlines()
    assert lines[0] == "#separator \\x09" and lines[4] == "#path\tssl"
    assert lines[-1].startswith("#close\t2026-11-22-")
    cut = ("id.orig_p", "version", "cipher", "server_name", "next_protocol", "orig_alpn")
    assert zeek_cut(out.stdout, *cut) == [
        ["45872", "TLSv12", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "www.example.test", "h2",
         "h2,http/1.1"],
        ["45882", "TLSv13", "TLS_AES_256_GCM_SHA384", "www.example.test", "-", "h2,http/1.1"],
    ]  # fmt: skip


def test_zeek_to_a_file_read_with_zat(tmp_path: Path) -> None:
    zat = pytest.importorskip("zat.zeek_log_reader")
    path = tmp_path / "ssl.log"
    read("captures/aioquic_h3_v1.pcap", "-T", "zeek", "-o", str(path),
         "--keylog", "captures/aioquic_h3_v1.keys")  # fmt: skip
    (entry,) = list(zat.ZeekLogReader(str(path)).readrows())
    assert entry["server_name"] == "quic.example.test" and entry["version"] == "TLSv13"
    assert entry["next_protocol"] == "h3"  # decrypted with the key log
    assert entry["orig_alpn"] == "h3" and entry["id.resp_p"] == 4433
