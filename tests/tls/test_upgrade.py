"""tls/upgrade.py: what a connection carried before its TLS (the ``upgraded_from`` column).

The unit cases are the first bytes of real sessions (copied from the corpus captures named
beside them); the capture test runs the whole pipeline on those captures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alpnsniff.pipeline import analyze_file
from alpnsniff.tls.upgrade import STRONG, WEAK, better_hint, upgrade_hint

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "pcaps"
CAPTURES = Path(__file__).resolve().parents[2] / "captures"

CLIENT_STARTS = [
    (b"EHLO desktop.unx.ca\r\n", ("smtp", STRONG)),  # suricata-verify__smtp-startssl
    (b"ehlo mail.example\r\n", ("smtp", STRONG)),  # commands are case-insensitive
    (b"LHLO lmtp.example\r\n", ("lmtp", STRONG)),
    (b"STLS\r\n", ("pop3", STRONG)),  # zeek__tls_pop3-starttls
    (b"AUTH TLS\r\n", ("ftp", STRONG)),
    (b"FEAT\r\n", ("ftp", STRONG)),  # zeek__ftp_ftp-auth-tls (FEAT before AUTH TLS)
    (b"a001 STARTTLS\r\n", ("imap", STRONG)),
    (b"STARTTLS\r\n", ("smtp", WEAK)),  # SMTP's after EHLO, or IRC's (zeek__tls_irc-starttls)
    (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", ("postgresql", STRONG)),  # nDPI__pgsql2 SSLRequest
    (b"\x00\x00\x00\x08\x04\xd2\x16\x30", ("postgresql", STRONG)),  # GSSENCRequest
    # zeek__ldap_ldap-starttls: ExtendedRequest 1.3.6.1.4.1.1466.20037
    (bytes.fromhex("301d02010177188016") + b"1.3.6.1.4.1.1466.20037", ("ldap", STRONG)),
    # an X.224 Connection Request in a TPKT with RDP_NEG_REQ (PROTOCOL_SSL | PROTOCOL_HYBRID)
    (bytes.fromhex("0300001306e00000000000010008000300000000")[:19], ("rdp", STRONG)),
    (b"<?xml version='1.0'?><stream:stream to='example.test'", ("xmpp", STRONG)),
    # arkime__mysql-tls: a 32-byte SSLRequest, sequence 1, CLIENT_SSL set
    (bytes.fromhex("200000018faa3a00ffffff0021") + bytes(23), ("mysql", STRONG)),
    (b"CAP LS 302\r\n", ("irc", STRONG)),
]

SERVER_STARTS = [
    (b"* OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS] ready\r\n", ("imap", STRONG)),
    (b"+OK ladymacbeth.local Cyrus POP3 server ready\r\n", ("pop3", STRONG)),
    (b"220 mx.google.com ESMTP s4si96\r\n", ("smtp", WEAK)),  # or FTP's: the client decides
    (b"220-(vsFTPd 3.0.5)\r\n", ("smtp", WEAK)),
    (b":irc.joulunet.org 670  :STARTTLS successful, go ahead\r\n", ("irc", STRONG)),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0, HTTP/1.1\r\n", ("http", STRONG)),
    # zeek__mysql_tls-12-amazon-rds: a protocol-10 greeting alone in its segment
    (bytes.fromhex("060000000a382e300000"), ("mysql", WEAK)),
]


@pytest.mark.parametrize(("data", "hint"), CLIENT_STARTS)
def test_client_starts(data: bytes, hint: tuple[str, int]) -> None:
    assert upgrade_hint(data, False) == hint


@pytest.mark.parametrize(("data", "hint"), SERVER_STARTS)
def test_server_starts(data: bytes, hint: tuple[str, int]) -> None:
    assert upgrade_hint(data, True) == hint


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x03",  # a TPKT cut short
        b"\x03\x00\x00",
        b"\x00\x00\x00\x08\x04\xd2",  # an SSLRequest cut short
        b"\x30\x05\x02\x01\x01",  # LDAP, not StartTLS
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01\x00\x05",  # TLS itself
        bytes(range(256)),
        b"\xff" * 64,
    ],
)
def test_no_hint_for_other_bytes(data: bytes) -> None:
    assert upgrade_hint(data, False) is None
    assert upgrade_hint(data, True) is None or data == b""


def test_a_strong_hint_replaces_a_weak_one_and_the_first_strong_stays() -> None:
    weak = ("smtp", WEAK)
    assert better_hint(None, weak) == weak
    assert better_hint(weak, ("ftp", STRONG)) == ("ftp", STRONG)  # 220 banner, then FEAT
    assert better_hint(("ftp", STRONG), ("smtp", WEAK)) == ("ftp", STRONG)
    assert better_hint(("proxy-protocol", STRONG), ("smtp", STRONG)) == ("proxy-protocol", STRONG)
    assert better_hint(weak, None) == weak


# corpus captures of TLS after a plaintext start: every TCP row's upgraded_from
CORPUS_UPGRADES = [
    ("arkime__mysql-tls.pcap", ["mysql"]),
    ("mercury__imap2.pcap", ["imap"]),
    ("nDPI__ftp-start-tls.pcap", ["ftp"]),
    ("nDPI__haproxy.pcap", ["proxy-protocol"]),
    ("nDPI__pgsql2.pcapng", ["postgresql", "postgresql"]),
    ("nDPI__smtp-starttls.pcap", ["smtp", "smtp"]),
    ("suricata-verify__smtp-startssl.pcap", ["smtp"]),
    ("zeek__ftp_ftp-auth-tls.pcap", ["ftp"]),
    ("zeek__ldap_ldap-starttls.pcap", ["ldap"]),
    ("zeek__mysql_tls-12-amazon-rds.pcap", ["mysql"]),
    ("zeek__tls_irc-starttls.pcap", ["irc"]),  # STARTTLS first; the server's 670 decides
    ("zeek__tls_pop3-starttls.pcap", ["pop3"]),
    ("nDPI__smtps.pcapng", [None]),  # implicit TLS (port 465): TLS from the first byte
]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")
@pytest.mark.parametrize(("name", "expected"), CORPUS_UPGRADES)
def test_corpus_upgraded_from(name: str, expected: list[str | None]) -> None:
    rows = [h for h in analyze_file(CORPUS / name).handshakes if h.transport == "tcp"]
    assert [h.upgraded_from for h in rows] == expected


def test_connect_captures_say_http_connect() -> None:
    for name, n in (("tinyproxy_connect_alpn.pcap", 7), ("squid_connect_auth.pcap", 2)):
        rows = analyze_file(CAPTURES / name).handshakes
        assert [h.upgraded_from for h in rows] == ["http-connect"] * n, name


def test_tls_from_the_first_byte_has_no_upgrade() -> None:
    rows = analyze_file(CAPTURES / "openssl_tls12_h2.pcap").handshakes
    assert rows and all(h.upgraded_from is None for h in rows)
