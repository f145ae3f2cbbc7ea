"""The Zeek ssl.log writer, read back as Zeek users read it: zat, and a zeek-cut-like cut
by the #fields header; values counted with tshark on real captures."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import alpnsniff
from alpnsniff.records import Handshake, Selection
from alpnsniff.sinks.rows import row
from alpnsniff.sinks.zeek import ZeekWriter, zeek_cipher, zeek_text, zeek_version
from alpnsniff.tls.cipher_names import CIPHER_NAMES
from tests.conftest import CAPTURES, REPO

FIELDS = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "version",
    "cipher",
    "server_name",
    "next_protocol",
    "established",
    "orig_alpn",
    "ja3",
    "ja4",
]
# Zeek's types of these fields: base/protocols/ssl/main.zeek (SSL::Info) and, for
# orig_alpn, policy/protocols/ssl/ssl-log-ext.zeek ("vector of string", vector[string]);
# ja3 as the salesforce/ja3 Zeek package adds it, ja4 as FoxIO's JA4 Zeek package does.
TYPES = [
    "time",
    "string",
    "addr",
    "port",
    "addr",
    "port",
    "string",
    "string",
    "string",
    "string",
    "bool",
    "vector[string]",
    "string",
    "string",
]


def ssl_log(paths: list[str], keylog: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = ZeekWriter(out)
    for result in alpnsniff.analyze([CAPTURES / p for p in paths], keylog=keylog):
        for h in result.handshakes:
            writer.write(row(h, result.name))
    writer.close()
    return out.getvalue()


def zeek_cut(text: str, *columns: str) -> list[list[str]]:
    """What ``zeek-cut col…`` prints: the named columns of each row, by the #fields line."""
    lines = text.splitlines()
    (fields,) = [line.split("\t")[1:] for line in lines if line.startswith("#fields\t")]
    index = [fields.index(c) for c in columns]
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    assert all(len(r) == len(fields) for r in rows), "a row has another number of fields"
    return [[r[i] for i in index] for r in rows]


def test_header_and_footer_as_zeeks_ascii_writer_writes_them() -> None:
    # tshark on captures/openssl_tls12_h2.pcap: the ClientHello at 1795308872.086361
    # (2026-11-22 00:54:32 UTC); the QUIC one of openssl_aioquic_ipv6.pcap at 1795308933.53
    lines = ssl_log(["openssl_tls12_h2.pcap", "openssl_aioquic_ipv6.pcap"]).splitlines()
    assert lines[:8] == [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tssl",
        "#open\t2026-11-22-00-54-32",
        "#fields\t" + "\t".join(FIELDS),
        "#types\t" + "\t".join(TYPES),
    ]
    assert lines[-1] == "#close\t2026-11-22-00-55-33"
    assert len(lines) == 8 + 3 + 1 and not any(line.startswith("#") for line in lines[8:-1])


def test_tls12_h2_by_hand_from_tshark() -> None:
    # `tshark -r captures/openssl_tls12_h2.pcap -Y 'tls.handshake.type in {1 2}' -T fields
    # -e frame.time_epoch -e ip.src -e tcp.srcport -e tls.handshake.extensions_server_name
    # -e tls.handshake.extensions_alpn_str -e tls.handshake.ciphersuite -e
    # tls.handshake.version`: frame 4 1795308872.086361 127.0.0.1 45872 www.example.test
    # h2,http/1.1; frame 6 (ServerHello, port 4431): cipher 0xc02c, version 0x0303, ALPN h2
    text = ssl_log(["openssl_tls12_h2.pcap"])
    assert zeek_cut(text, *FIELDS[:1], *FIELDS[2:]) == [
        [
            "1795308872.086361",
            "127.0.0.1",
            "45872",
            "127.0.0.1",
            "4431",
            "TLSv12",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "www.example.test",
            "h2",
            "-",
            "h2,http/1.1",
            "5a1edc7f170af1014fc65c994878e63c",  # tshark's tls.handshake.ja3
            "t13d3111h2_e8f1e7e78f70_1f22a2ca17c4",  # (tests/tls/test_fingerprint.py)
        ]
    ]
    (uid,) = zeek_cut(text, "uid")[0]
    assert re.fullmatch(r"C[0-9A-Za-z]{1,17}", uid)
    # its definition, written out: "C" + base62 of the first 96 bits of SHA-1("<cid> <ts>")
    (cid,) = [
        row(h, "x")["community_id"]
        for h in alpnsniff.analyze(CAPTURES / "openssl_tls12_h2.pcap")[0].handshakes
    ]
    n = int.from_bytes(hashlib.sha1(f"{cid} 1795308872.086361".encode()).digest()[:12], "big")
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    expected = ""
    while n:
        n, d = divmod(n, 62)
        expected = digits[d] + expected
    assert uid == "C" + expected
    assert text == ssl_log(["openssl_tls12_h2.pcap"])  # the same run, the same uid


def test_tls13_quic_ipv6_refused_and_no_alpn() -> None:
    # tshark: openssl_tls13_h2.pcap's ServerHello picks 0x1302 with supported_version 0x0304;
    # openssl_aioquic_ipv6.pcap: [fd00:99::2]:45560 -> [fd00:99::1]:4431 TLS 1.2 (0xc02c, h2)
    # and QUIC 51015 -> 4433 (0x1302, TLS 1.3, ALPN h3 offered); openssl_tls12_alert120.pcap:
    # alert 120, no ServerHello; nginx_curl_noalpn.pcap: no ALPN extension, 0x1302
    text = ssl_log(
        [
            "openssl_tls13_h2.pcap",
            "openssl_aioquic_ipv6.pcap",
            "openssl_tls12_alert120.pcap",
            "nginx_curl_noalpn.pcap",
        ]
    )
    columns = ("id.orig_h", "id.orig_p", "version", "cipher", "next_protocol")
    assert zeek_cut(text, *columns, "established", "orig_alpn") == [
        ["127.0.0.1", "45882", "TLSv13", "TLS_AES_256_GCM_SHA384", "-", "-", "h2,http/1.1"],
        ["fd00:99::2", "45560", "TLSv12", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "h2", "-",
         "h2,http/1.1"],
        ["fd00:99::2", "51015", "TLSv13", "TLS_AES_256_GCM_SHA384", "-", "-", "h3"],
        ["127.0.0.1", "37128", "-", "-", "-", "F", "h2,http/1.1"],
        ["127.0.0.1", "54674", "TLSv13", "TLS_AES_256_GCM_SHA384", "-", "-", "-"],
    ]  # fmt: skip


def test_the_decrypted_choice_is_next_protocol() -> None:
    text = ssl_log(
        ["nginx_curl_h2_tls13.pcap"], keylog=[str(CAPTURES / "nginx_curl_h2_tls13.keys")]
    )
    assert zeek_cut(text, "version", "next_protocol") == [["TLSv13", "h2"]]


def _write(*records: Handshake) -> str:
    out = io.StringIO()
    writer = ZeekWriter(out)
    for h in records:
        writer.write(row(h, "x.pcap"))
    writer.close()
    return out.getvalue()


@pytest.fixture(scope="module")
def tls12() -> Handshake:
    (result,) = alpnsniff.analyze(CAPTURES / "openssl_tls12_h2.pcap")
    return result.handshakes[0]


def test_escaping_of_wire_text(tls12: Handshake) -> None:
    odd = replace(
        tls12,
        sni="-",
        alpn_offered_raw=(b"a,b", b"", b"-", b"(empty)", b"#x", b"\t"),
        alpn_selected_raw=b"(empty)",
    )
    empty = replace(tls12, sni="", alpn_offered_raw=(), extensions=(0, 16))
    text = _write(odd, empty)
    assert zeek_cut(text, "server_name", "next_protocol", "orig_alpn") == [
        ["\\x2d", "\\x28empty)", "a\\x2cb,(empty),\\x2d,\\x28empty),\\x23x,\\x09"],
        ["(empty)", "h2", "(empty)"],  # an ALPN extension with no ID: an empty vector
    ]
    assert "\t\t" not in text and all(line.isascii() for line in text.splitlines())


def test_empty_log_and_open_close_times(tls12: Handshake) -> None:
    empty = _write().splitlines()
    assert empty[5] == "#open\t1970-01-01-00-00-00" and empty[-1] == "#close\t1970-01-01-00-00-00"
    assert len(empty) == 9
    later = replace(tls12, ts_ns=tls12.ts_ns + 3600 * 10**9)
    lines = _write(later, tls12).splitlines()  # #open: the first row's; #close: the latest
    assert lines[5] == "#open\t2026-11-22-01-54-32" and lines[-1] == "#close\t2026-11-22-01-54-32"


def test_uids_are_zeek_like_and_one_per_connection_and_time(
    real_records: list[tuple[str, Handshake]],
) -> None:
    out = io.StringIO()
    writer = ZeekWriter(out)
    for capture, h in real_records:
        writer.write(row(h, capture))
    writer.close()
    uids = [u for (u,) in zeek_cut(out.getvalue(), "uid")]
    assert all(re.fullmatch(r"C[0-9A-Za-z]{1,17}", u) for u in uids)
    # captures/ holds some traffic twice (.pcap and .pcap.gz, µs and ns): the same
    # connection at the same time has the same uid, any other pair two
    keys = [(row(h, c)["community_id"], h.ts_ns // 1000) for c, h in real_records]  # (µs)
    assert len(set(keys)) < len(keys)
    assert len(set(uids)) == len(set(zip(uids, keys, strict=True))) == len(set(keys))


# Zeek's spellings, from zeek/zeek scripts/base/protocols/ssl/consts.zeek (commit 3257c0e2,
# SSL::cipher_desc and SSL::version_strings).
ZEEK_CIPHERS = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    0x5600: "TLS_FALLBACK_SCSV",
    0x0034: "TLS_DH_ANON_WITH_AES_128_CBC_SHA",
    0xC018: "TLS_ECDH_ANON_WITH_AES_128_CBC_SHA",
    0xCC13: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256_OLD",
    0xFFE0: "SSL_RSA_FIPS_WITH_3DES_EDE_CBC_SHA_2",
    0xFEFF: "SSL_RSA_FIPS_WITH_3DES_EDE_CBC_SHA",
    0x16B7: "TLS_CECPQ1_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xD004: "TLS_ECDHE_PSK_WITH_AES_128_CCM_SHA256",
    0xC0AA: "TLS_PSK_DHE_WITH_AES_128_CCM_8",
    0x0A0A: "grease_0x0A0A",
    0xFAFA: "grease_0xFAFA",
}


@pytest.mark.parametrize(("code", "name"), sorted(ZEEK_CIPHERS.items()))
def test_cipher_names_are_zeeks(code: int, name: str) -> None:
    assert zeek_cipher(code) == name


def test_cipher_fallback_and_table_shape() -> None:
    assert zeek_cipher(0x7777) == "unknown-30583" and zeek_cipher(None) == "-"
    assert len(CIPHER_NAMES) > 400
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", n) for n in CIPHER_NAMES.values())
    # one name twice: Zeek's for the draft code 0xD004, IANA's (Wireshark's) for 0xD005
    by_name: dict[str, list[int]] = {}
    for code, name in CIPHER_NAMES.items():
        by_name.setdefault(name, []).append(code)
    assert {n: c for n, c in by_name.items() if len(c) > 1} == {
        "TLS_ECDHE_PSK_WITH_AES_128_CCM_SHA256": [0xD004, 0xD005]
    }


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_cipher_names_module_is_what_its_generator_makes() -> None:
    script = REPO / "captures" / "tools" / "gen_cipher_names.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("ours", "zeeks"),
    [
        ("1.3", "TLSv13"),
        ("1.2", "TLSv12"),
        ("1.1", "TLSv11"),
        ("1.0", "TLSv10"),
        ("ssl3", "SSLv3"),
        ("ssl2", "SSLv2"),
        ("dtls1.2", "DTLSv12"),
        ("dtls1.0", "DTLSv10"),
        ("1.3-draft28", "TLSv13-draft28"),
        ("1.3-fb23", "unknown-64279"),
        ("0x0305", "unknown-773"),
        (None, "-"),
    ],
)
def test_version_spellings(ours: str | None, zeeks: str) -> None:
    assert zeek_version(ours) == zeeks


def test_text_reserved_values() -> None:
    assert zeek_text(None) == "-" and zeek_text("") == "(empty)"
    assert zeek_text("-x") == "-x" and zeek_text("a,b") == "a,b"  # (a comma: in vectors only)


# --- read back with zat (pip install zat; its readers need pandas only) --------------------

zat_frame = pytest.importorskip("zat.log_to_dataframe")
zat_reader = pytest.importorskip("zat.zeek_log_reader")


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zeek") / "ssl.log"
    path.write_text(
        ssl_log(
            ["openssl_tls12_h2.pcap", "openssl_aioquic_ipv6.pcap", "openssl_tls12_alert120.pcap"]
        ),
        encoding="ascii",
    )
    return path


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # (zat's set_index, pandas 3)
def test_zat_dataframe(log_file: Path) -> None:
    import pandas as pd

    df = zat_frame.LogToDataFrame().create_dataframe(str(log_file))
    assert list(df.columns) == FIELDS[1:]  # ts is the index
    assert str(df["id.orig_p"].dtype) == "UInt16"
    assert list(df["id.orig_p"]) == [45872, 45560, 51015, 37128]
    # zat reads "-" as missing (read_csv na_values)
    assert list(df["version"].astype(object).fillna("-")) == ["TLSv12", "TLSv12", "TLSv13", "-"]
    assert list(df["orig_alpn"].astype(str)) == ["h2,http/1.1", "h2,http/1.1", "h3", "h2,http/1.1"]
    # tshark's tls.handshake.ja3 of openssl_tls12_h2.pcap frame 4
    assert df["ja3"].iloc[0] == "5a1edc7f170af1014fc65c994878e63c"
    assert all(str(v)[:1] in "tq" for v in df["ja4"])
    first = df.index[0]
    assert abs(first - pd.Timestamp("2026-11-22 00:54:32.086361")) < pd.Timedelta("2us")
    assert df["established"].isna().sum() == 3 and list(df["established"].dropna()) == ["F"]


def test_zat_reader(log_file: Path) -> None:
    rows: list[dict[str, Any]] = list(zat_reader.ZeekLogReader(str(log_file)).readrows())
    assert [r["server_name"] for r in rows] == ["www.example.test"] * 2 + [
        "quic.example.test",
        "www.example.test",
    ]
    assert [r["cipher"] for r in rows][:3] == [
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_AES_256_GCM_SHA384",
    ]
    assert [r["id.resp_p"] for r in rows] == [4431, 4431, 4433, 4431]
    assert rows[0]["next_protocol"] == "h2" and rows[3]["established"] is False


def test_selection_kinds_map_to_established(tls12: Handshake) -> None:
    kinds = {s: replace(tls12, selection=s) for s in Selection}
    got = {s: zeek_cut(_write(h), "established")[0][0] for s, h in kinds.items()}
    assert got == {
        s: ("F" if s in (Selection.REJECTED, Selection.ABORTED) else "-") for s in Selection
    }
