"""The NSS key log reader: real key logs, DSBs, every malformed case, and secret hygiene."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keyscap import CAPTURES, DATA, REALCAP, dsb_blocks, need

from alpnsniff.errors import CaptureError
from alpnsniff.keys import keylog as keylog_module
from alpnsniff.keys.keylog import (
    DSB_TLS_KEY_LOG,
    MAX_ERROR_MESSAGES,
    KeyLog,
    KeyLogError,
    SessionSecrets,
)

CR = bytes(range(32))
CR_HEX = CR.hex()
MS_HEX = "ab" * 48
S32_HEX = "cd" * 32
S48_HEX = "ef" * 48


def test_real_openssl_tls13_key_log() -> None:
    path = need(REALCAP / "openssl_tls13_alpn_h2.keys")
    log = KeyLog()
    assert log.load(path) == 5
    assert len(log) == 1
    assert log.stats == {"files": 1, "lines": 6, "comments": 1, "entries": 5, "sessions": 1}
    cr = bytes.fromhex(path.read_text().split("\n")[1].split()[1])
    secrets = log.secrets_for(cr)
    assert secrets is not None
    assert secrets.labels == (
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    )
    assert secrets.server_handshake_traffic_secret is not None
    assert len(secrets.server_handshake_traffic_secret) == 48  # TLS_AES_256_GCM_SHA384
    assert secrets.master_secret is None
    assert log.secrets_for(bytes(32)) is None


def test_real_tls12_client_random_log() -> None:
    log = KeyLog()
    log.load(need(REALCAP / "openssl_tls12_npn.keys"))
    assert log.stats["entries"] == 1 and log.stats["comments"] == 1
    (secrets,) = [log.secrets_for(cr) for cr in log._sessions]
    assert secrets is not None and secrets.labels == ("CLIENT_RANDOM",)
    assert secrets.master_secret is not None and len(secrets.master_secret) == 48


def test_real_aioquic_log_repeats_its_lines() -> None:
    # aioquic_h3_v1.keys holds the handshake secrets twice (client and server wrote them)
    log = KeyLog()
    assert log.load(need(REALCAP / "aioquic_h3_v1.keys")) == 4
    assert log.stats["duplicate"] == 4
    assert log.stats["lines"] == 8
    assert "conflict" not in log.stats


@pytest.mark.parametrize(
    "name",
    [
        "chromium_nginx_h2_tls13_lo",
        "gnutls_tls13_alpn",
        "nginx_curl_http2_tls13",
        "pyssl_tls13_alpn_h2",
        "chromium_aioquic_h3_quicv2_lo",
        "openssl_tls12_npn",
        "aioquic_h3_v2",
    ],
)
def test_dsb_gives_the_same_secrets_as_the_key_log(name: str) -> None:
    blocks = dsb_blocks(need(REALCAP / f"{name}_dsb.pcapng"))
    assert [t for t, _ in blocks] == [DSB_TLS_KEY_LOG]
    from_dsb = KeyLog()
    from_file = KeyLog()
    for stype, data in blocks:
        from_dsb.add_dsb(stype, data)
    from_file.load(REALCAP / f"{name}.keys")
    assert len(from_dsb) == len(from_file) >= 1
    assert from_dsb.stats["entries"] == from_file.stats["entries"]
    assert from_dsb.stats["dsb_blocks"] == 1
    for cr in from_file._sessions:
        assert from_dsb.secrets_for(cr) == from_file.secrets_for(cr)


def test_every_key_log_we_have_reads_without_errors() -> None:
    paths = [*REALCAP.glob("*.keys"), *CAPTURES.glob("*.keys"), *DATA.glob("*.keys")]
    if not paths:
        pytest.skip("no key logs")
    for path in paths:
        log = KeyLog()
        assert log.load(path) >= 1, path
        assert log.errors == [] and "malformed" not in log.stats, path
        # OpenSSL logs an "RSA <encrypted PMS prefix> <PMS>" line for RSA key exchange
        expected_unknown = 1 if "_rsa_cbc" in path.name else 0
        assert log.stats.get("unknown_label", 0) == expected_unknown, path


def test_all_labels_comments_and_blank_lines() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "   ",
            f"CLIENT_RANDOM {CR_HEX} {MS_HEX}",
            f"CLIENT_EARLY_TRAFFIC_SECRET {CR_HEX} {S32_HEX}",
            f"EARLY_EXPORTER_SECRET {CR_HEX} {S32_HEX}",
            f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR_HEX} {S48_HEX}",
            f"SERVER_HANDSHAKE_TRAFFIC_SECRET {CR_HEX.upper()} {S48_HEX.upper()}",
            f"CLIENT_TRAFFIC_SECRET_0 {CR_HEX} {S32_HEX}",
            f"SERVER_TRAFFIC_SECRET_0 {CR_HEX} {S32_HEX}",
            f"EXPORTER_SECRET {CR_HEX} {S32_HEX}",
        ]
    )
    log = KeyLog()
    assert log.add_text(text) == 8
    assert log.stats == {"lines": 11, "comments": 1, "blank": 2, "entries": 8, "sessions": 1}
    s = log.secrets_for(CR)
    assert s == SessionSecrets(
        client_random=CR,
        master_secret=bytes.fromhex(MS_HEX),
        client_early_traffic_secret=bytes.fromhex(S32_HEX),
        early_exporter_secret=bytes.fromhex(S32_HEX),
        client_handshake_traffic_secret=bytes.fromhex(S48_HEX),
        server_handshake_traffic_secret=bytes.fromhex(S48_HEX),
        client_traffic_secret_0=bytes.fromhex(S32_HEX),
        server_traffic_secret_0=bytes.fromhex(S32_HEX),
        exporter_secret=bytes.fromhex(S32_HEX),
    )
    assert CR in log and bytes(32) not in log


def test_crlf_tabs_and_bytes_input() -> None:
    log = KeyLog()
    assert log.add_text(f"CLIENT_RANDOM\t{CR_HEX}  {MS_HEX}\r\n".encode()) == 1
    assert log.secrets_for(CR) is not None


def test_unknown_labels_are_counted_not_stored() -> None:
    log = KeyLog()
    text = f"RSA 0011223344556677 {MS_HEX}\nPMS_CLIENT_RANDOM {CR_HEX} {MS_HEX}\nECH_SECRET x y\n"
    assert log.add_text(text) == 0
    assert log.stats["unknown_label"] == 3
    assert len(log) == 0 and log.errors == []


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (f"CLIENT_RANDOM {CR_HEX}", "CLIENT_RANDOM: 2 fields, expected 3"),
        (f"CLIENT_RANDOM {CR_HEX} {MS_HEX} extra", "CLIENT_RANDOM: 4 fields, expected 3"),
        (f"CLIENT_RANDOM {CR_HEX[:-2]}zz {MS_HEX}", "CLIENT_RANDOM: client random is not hex"),
        (f"CLIENT_RANDOM {CR_HEX} {MS_HEX[:-1]}", "CLIENT_RANDOM: secret is not hex"),
        (
            f"CLIENT_RANDOM {CR_HEX[:-2]} {MS_HEX}",
            "CLIENT_RANDOM: client random of 31 bytes, expected 32",
        ),
        (f"CLIENT_RANDOM {CR_HEX} {S32_HEX}", "CLIENT_RANDOM: secret of 32 bytes, expected 48"),
        (
            f"SERVER_HANDSHAKE_TRAFFIC_SECRET {CR_HEX} {'00' * 40}",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET: secret of 40 bytes, expected 32 or 48",
        ),
        ("CLIENT_RANDOM " + "0" * 2000, "line of 2014 bytes (limit 1024)"),
    ],
)
def test_malformed_lines_are_counted_with_line_numbers(line: str, error: str) -> None:
    log = KeyLog()
    good = f"CLIENT_RANDOM {CR_HEX} {MS_HEX}"
    assert log.add_text(f"# header\n{line}\n{good}\n", source="k.log") == 1
    assert log.stats["malformed"] == 1
    assert log.errors == [f"k.log line 2: {error}"]
    assert log.secrets_for(CR) is not None  # the good line after it still counts


def test_conflicting_secret_later_wins_and_is_counted() -> None:
    log = KeyLog()
    log.add_text(f"CLIENT_RANDOM {CR_HEX} {MS_HEX}\nCLIENT_RANDOM {CR_HEX} {'11' * 48}\n")
    assert log.stats["conflict"] == 1 and log.stats["entries"] == 1
    s = log.secrets_for(CR)
    assert s is not None and s.master_secret == bytes.fromhex("11" * 48)


def test_error_messages_are_capped_but_every_line_counted() -> None:
    log = KeyLog()
    log.add_text("\n".join(f"CLIENT_RANDOM {i}" for i in range(MAX_ERROR_MESSAGES + 50)))
    assert log.stats["malformed"] == MAX_ERROR_MESSAGES + 50
    assert len(log.errors) == MAX_ERROR_MESSAGES


def test_session_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keylog_module, "MAX_SESSIONS", 2)
    log = KeyLog()
    lines = [f"CLIENT_RANDOM {bytes([i] * 32).hex()} {MS_HEX}" for i in range(4)]
    assert log.add_text("\n".join(lines)) == 2
    assert len(log) == 2 and log.stats["sessions_over_limit"] == 2


def test_dsb_of_another_type_is_counted() -> None:
    log = KeyLog()
    assert log.add_dsb(0x57474B4C, b"WireGuard keys") == 0  # "WGKL"
    assert log.add_dsb(DSB_TLS_KEY_LOG, f"CLIENT_RANDOM {CR_HEX} {MS_HEX}\n".encode()) == 1
    assert log.stats["dsb_blocks"] == 2 and log.stats["dsb_unsupported"] == 1


def test_dsb_malformed_lines_name_the_block() -> None:
    log = KeyLog()
    log.add_dsb(DSB_TLS_KEY_LOG, b"CLIENT_RANDOM nothex\n")
    assert log.errors == ["DSB 1 line 1: CLIENT_RANDOM: 2 fields, expected 3"]


def test_missing_file_raises_a_capture_error(tmp_path: Path) -> None:
    log = KeyLog()
    with pytest.raises(KeyLogError, match=r"cannot read key log .*nope\.keys: No such file"):
        log.load(tmp_path / "nope.keys")
    with pytest.raises(CaptureError, match="Is a directory"):
        log.load(tmp_path)


def test_load_counts_line_numbers_per_file(tmp_path: Path) -> None:
    path = tmp_path / "k.keys"
    path.write_bytes(f"\n\nCLIENT_RANDOM {CR_HEX} 12\n".encode())
    log = KeyLog()
    assert log.load(path) == 0
    assert log.errors == [f"{path} line 3: CLIENT_RANDOM: secret of 1 bytes, expected 48"]


def test_load_steps_over_an_overlong_line_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "k.keys"
    good = f"CLIENT_RANDOM {CR_HEX} {MS_HEX}"
    path.write_bytes(b"x" * 3_000_000 + b"\n" + good.encode() + b"\n" + b"y" * 1025)
    log = KeyLog()
    assert log.load(path) == 1
    assert log.errors == [
        f"{path} line 1: line of 3000000 bytes (limit 1024)",
        f"{path} line 3: line of 1025 bytes (limit 1024)",
    ]
    assert log.stats["lines"] == 3


# ------------------------------------------------------------------ secret hygiene


def test_no_secret_in_repr_str_or_errors(tmp_path: Path) -> None:
    secret_hexes = [MS_HEX, S32_HEX, S48_HEX, "77" * 47]
    text = (
        f"CLIENT_RANDOM {CR_HEX} {MS_HEX}\n"
        f"SERVER_HANDSHAKE_TRAFFIC_SECRET {CR_HEX} {S48_HEX}\n"
        f"CLIENT_TRAFFIC_SECRET_0 {CR_HEX} {S32_HEX}\n"
        f"CLIENT_RANDOM {CR_HEX} {'77' * 47}\n"  # malformed: its bytes must not be echoed
        f"CLIENT_RANDOM {CR_HEX} {S32_HEX}zz\n"
    )
    log = KeyLog()
    log.add_text(text)
    secrets = log.secrets_for(CR)
    assert secrets is not None
    shown = [repr(log), str(log), repr(secrets), str(secrets), *log.errors, repr(log.stats)]
    assert len(log.errors) == 2
    for text_shown in shown:
        for h in secret_hexes:
            assert h not in text_shown.lower()
            assert h[:16] not in text_shown.lower()
    assert repr(secrets) == (
        f"SessionSecrets(client_random={CR_HEX}, labels=('CLIENT_RANDOM', "
        "'SERVER_HANDSHAKE_TRAFFIC_SECRET', 'CLIENT_TRAFFIC_SECRET_0'))"
    )
    assert repr(log) == "KeyLog(sessions=1, entries=3, malformed=2, unknown_label=0)"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="CLIENT_RANDOMSERVHDKFX0123456789abcdef #\n\t\r", max_size=400))
def test_fuzz_any_text_is_read_without_raising(text: str) -> None:
    log = KeyLog()
    added = log.add_text(text)
    stats = log.stats
    assert added == stats.get("entries", 0)
    assert stats.get("lines", 0) >= stats.get("malformed", 0) + stats.get("entries", 0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_any_bytes_are_read_without_raising(data: bytes) -> None:
    log = KeyLog()
    log.add_dsb(DSB_TLS_KEY_LOG, data)
    assert all(" line " in e for e in log.errors)


def test_a_followed_key_log_is_read_on_as_it_grows(tmp_path: Path) -> None:
    """A live run's SSLKEYLOGFILE: the client writes it during the capture. What is there at
    the start is read; each look reads the complete lines appended since, never a line still
    being written; a file started afresh (shorter) is read from its start again."""
    real = (CAPTURES / "openssl_tls13_h2.keys").read_bytes().splitlines(keepends=True)
    secrets = [line for line in real if not line.startswith(b"#")]
    assert len(secrets) >= 4
    path = tmp_path / "keys.log"
    path.write_bytes(secrets[0])
    log = KeyLog()
    assert log.follow(path) == 1
    assert log.read_more() == 0  # nothing new
    with path.open("ab") as fh:
        fh.write(secrets[1] + secrets[2][:20])  # one line and the start of the next
    assert log.read_more() == 1
    with path.open("ab") as fh:
        fh.write(secrets[2][20:])
    assert log.read_more() == 1
    whole = KeyLog()
    whole.add_text(b"".join(secrets[:3]))
    random = bytes.fromhex(secrets[0].split()[1].decode())
    assert log.secrets_for(random) == whole.secrets_for(random)
    path.write_bytes(secrets[3])  # truncated and rewritten: from the start again
    assert log.read_more() == 1
    path.unlink()  # gone for now: tried again later, not an error
    assert log.read_more() == 0
    lines = log.stats["lines"]
    path.write_bytes(secrets[0] + secrets[1])  # a new file under the name: read from its start
    log.read_more()
    assert log.stats["lines"] == lines + 2 and log.stats["duplicate"] >= 2
    with pytest.raises(KeyLogError):
        KeyLog().follow(tmp_path / "missing.log")
