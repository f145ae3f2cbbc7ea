"""The decryption stage end to end: key logs and pcapng DSBs give the server's choice in
TLS 1.3 and QUIC (EncryptedExtensions) and the client's TLS 1.2 NPN choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alpnsniff.cli import main
from alpnsniff.keys.keylog import KeyLog
from alpnsniff.pipeline import analyze_file
from alpnsniff.records import Selection
from tests.conftest import CAPTURES, shared_file


def keyed(name: str):
    path = shared_file("realcap", name)
    keylog = KeyLog()
    keylog.load(path.with_suffix(".keys"))
    return analyze_file(path, keylog=keylog)


@pytest.mark.parametrize(
    ("name", "selected"),
    [
        ("openssl_tls13_alpn_h2.pcap", b"h2"),
        ("pyssl_tls13_alpn_h2.pcap", b"h2"),
        ("nginx_curl_http2_tls13.pcap", b"h2"),
        ("gnutls_tls13_alpn.pcap", b"http/1.1"),
        ("chromium_nginx_http11only_tls13_lo.pcap", b"http/1.1"),
        ("chromium_nginx_h2_veth1500.pcap", b"h2"),
        ("aioquic_h3_v1.pcap", b"h3"),
        ("aioquic_h3_v2.pcap", b"h3"),
        ("aioquic_custom_alpn_doq.pcap", b"doq"),
        ("aioquic_h3_v1_retry.pcap", b"h3"),
        ("aioquic_h3_v2_incompatible_vn_to_v1.pcap", b"h3"),
        ("chromium_aioquic_h3_veth1500.pcap", b"h3"),
    ],
)
def test_key_log_reveals_the_servers_choice(name: str, selected: bytes) -> None:
    result = keyed(name)
    final = [h for h in result.handshakes if h.selection is not Selection.RETRIED]
    assert final and all(h.selection is Selection.DECRYPTED for h in final)
    assert {h.alpn_selected_raw for h in final} == {selected}
    assert all(h.violation is None for h in final)


@pytest.mark.parametrize("name", ["openssl_tls13_alpn_h2_dsb.pcapng", "aioquic_h3_v1_dsb.pcapng"])
def test_secrets_embedded_in_pcapng_are_used(name: str) -> None:
    result = analyze_file(shared_file("realcap", name))
    (h,) = result.handshakes
    assert h.selection is Selection.DECRYPTED and h.alpn_selected_raw in (b"h2", b"h3")
    assert result.stats["keylog_dsb_blocks"] == 1


def test_hello_retry_request_then_decrypted() -> None:
    first, second = keyed("openssl_tls13_hrr_alpn.pcap").handshakes
    assert first.selection is Selection.RETRIED
    assert (second.selection, second.alpn_selected_raw, second.hello_retry) == (
        Selection.DECRYPTED,
        b"h2",
        True,
    )


def test_npn_choice_is_decrypted_from_the_clients_next_protocol() -> None:
    (h,) = keyed("openssl_tls12_npn.pcap").handshakes
    assert h.npn and h.npn_server == (b"h2", b"http/1.1")
    assert h.npn_selected_raw == b"h2"
    # NPN, not ALPN: the client offered no ALPN, and the ALPN outcome is unchanged
    assert h.selection is Selection.NOT_OFFERED


def test_tls12_alpn_stays_visible_with_keys() -> None:
    (h,) = [h for h in keyed("chromium_nginx_h2_tls12_lo.pcap").handshakes][:1]
    assert h.selection is Selection.VISIBLE and h.alpn_selected_raw == b"h2"


@pytest.mark.skipif(not (CAPTURES / "pyssl_tls13_mismatch.keys").exists(), reason="no captures/")
def test_cpython_silent_mismatch_is_none_once_decrypted() -> None:
    keylog = KeyLog()
    keylog.load(CAPTURES / "pyssl_tls13_mismatch.keys")
    (h,) = analyze_file(CAPTURES / "pyssl_tls13_mismatch.pcap", keylog=keylog).handshakes
    # EncryptedExtensions carries no ALPN: the server selected nothing, and sent no alert
    assert h.selection is Selection.NONE and h.alpn_selected_raw is None
    assert h.alert is None and h.tls_version == "1.3"


def test_wrong_key_is_a_counted_note_not_a_crash() -> None:
    path = shared_file("realcap", "openssl_tls13_alpn_h2.pcap")
    real = path.with_suffix(".keys").read_text().splitlines()
    wrong = []
    for line in real:
        if len(line.split()) != 3:
            continue  # comments
        label, cr, secret = line.split()
        wrong.append(f"{label} {cr} {'00' * (len(secret) // 2)}")
    keylog = KeyLog()
    keylog.add_text("\n".join(wrong))
    result = analyze_file(path, keylog=keylog)
    (h,) = result.handshakes
    assert h.selection is Selection.ENCRYPTED
    assert any(n.startswith("decrypt-failed") for n in h.notes)
    assert result.stats["tcp_decrypt_decrypt-failed"] == 1


def test_no_keys_means_no_decryption() -> None:
    (h,) = analyze_file(shared_file("realcap", "openssl_tls13_alpn_h2.pcap")).handshakes
    assert h.selection is Selection.ENCRYPTED


def test_cli_keylog_and_no_secret_in_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared_file("realcap", "openssl_tls13_alpn_h2.pcap")
    keys = path.with_suffix(".keys")
    bad = tmp_path / "k.keys"
    bad.write_text(keys.read_text() + "CLIENT_RANDOM zz not-hex\n")
    stats = tmp_path / "s.json"
    status = main(
        ["read", str(path), "--keylog", str(bad), "--format", "ndjson", "--stats", str(stats)]
    )
    out, err = capsys.readouterr()
    assert status == 0
    row = json.loads(out.splitlines()[0])
    assert (row["selection"], row["alpn_selected"]) == ("decrypted", "h2")
    lines = keys.read_text().splitlines()
    assert f"k.keys line {len(lines) + 1}: CLIENT_RANDOM" in err  # the bad line, named
    secrets = [line.split()[2] for line in lines if len(line.split()) == 3]
    assert secrets
    for text in (out, err, stats.read_text()):
        assert not any(secret.lower() in text.lower() for secret in secrets)


def test_missing_keylog_file_is_one_line_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_file("realcap", "openssl_tls13_alpn_h2.pcap")
    assert main(["read", str(path), "--keylog", "/nonexistent.keys"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alpnsniff: error: ")
