"""ALPN text and names, version names, GREASE, alerts."""

from __future__ import annotations

from tlscap import DATA, handshake_bodies, realcap

from alpnsniff.tls.alpn import alpn_name, alpn_text, is_grease_alpn
from alpnsniff.tls.hello import GREASE_VALUES, parse_client_hello
from alpnsniff.tls.registry import (
    ALERT_NO_APPLICATION_PROTOCOL,
    ALPN_PROTOCOLS,
    ALPN_REGISTRY_URL,
    ALPN_UNREGISTERED,
    alert_name,
    extension_name,
    is_grease,
    version_name,
)


def test_alpn_text_keeps_printable_ascii_and_escapes_the_rest() -> None:
    assert alpn_text(b"h2") == "h2"
    assert alpn_text(b"http/1.1") == "http/1.1"
    assert alpn_text(b"a b") == "a\\x20b"
    assert alpn_text(b"\\") == "\\x5c"
    assert alpn_text(b"\xff") == "\\xff"
    assert alpn_text(b"") == ""
    assert alpn_text(b"a,b\n\x7f~!") == "a,b\\x0a\\x7f~!"
    assert alpn_text(bytes(range(256))).count("\\x") == 256 - (0x7F - 0x21) + 1


def test_alpn_text_of_real_non_ascii_offer() -> None:
    (body,) = handshake_bodies(DATA / "openssl_tls12_alpn_nonascii.pcap", 1)
    texts = [alpn_text(p) for p in parse_client_hello(body).alpn]
    assert texts == ["\\xff\\xfeh2", "caf\\xc3\\xa9", "a\\x20b", "\\x5cx", "h2"]
    # Every text is printable ASCII with no space: one token per terminal word or CSV cell.
    assert all(t.isascii() and t.isprintable() and " " not in t for t in texts)


def test_alpn_text_round_trips() -> None:
    for raw in (b"h2", b"\x00\xff\\x20", bytes(range(256))):
        text = alpn_text(raw)
        assert text.encode("ascii").decode("unicode_escape").encode("latin-1") == raw


def test_alpn_names_from_the_iana_registry() -> None:
    assert alpn_name(b"h2") == "HTTP/2 over TLS"
    assert alpn_name(b"h3") == "HTTP/3"
    assert alpn_name(b"http/1.1") == "HTTP/1.1"
    assert alpn_name(b"http/0.9") == "HTTP/0.9"
    assert alpn_name(b"smb") == "SMB2"
    assert alpn_name(b"irc") == "IRC"
    assert alpn_name(b"dot") == "DNS-over-TLS"
    assert alpn_name(b"doq") == "DoQ"
    assert alpn_name(b"coap") == "CoAP (over TLS)"
    assert alpn_name(b"xmpp-client") == "XMPP jabber:client namespace"
    assert alpn_name(b"mqtt") == "OASIS Message Queuing Telemetry Transport (MQTT)"
    assert alpn_name(b"acme-tls/1") == "acme-tls/1"
    assert ALPN_PROTOCOLS.get(b"h2-16") is None  # a draft ID nghttp still offers: not IANA's
    assert alpn_name(b"H2") == "unknown"  # IDs are octets: no case folding
    assert len(ALPN_PROTOCOLS) >= 40
    assert ALPN_REGISTRY_URL.startswith("https://www.iana.org/assignments/tls-extensiontype-values")


def test_well_known_unregistered_alpn_ids_are_named_as_unregistered() -> None:
    assert alpn_name(b"h2-16") == "HTTP/2 draft 16 (unregistered)"  # nghttp still offers it
    assert alpn_name(b"h2-14") == "HTTP/2 draft 14 (unregistered)"
    assert alpn_name(b"h2-17") == "HTTP/2 draft 17 (unregistered)"
    assert alpn_name(b"h3-29") == "HTTP/3 draft 29 (unregistered)"
    assert alpn_name(b"h3-34") == "HTTP/3 draft 34 (unregistered)"
    assert alpn_name(b"hq-interop") == "HTTP/0.9 over QUIC, interop runner (unregistered)"
    assert alpn_name(b"hq-29") == "HTTP/0.9 over QUIC draft 29 (unregistered)"
    assert alpn_name(b"doq-i00") == "DNS over QUIC draft 00 (unregistered)"
    assert alpn_name(b"doq-i11") == "DNS over QUIC draft 11 (unregistered)"
    assert alpn_name(b"spdy/3.1") == "SPDY/3.1 (unregistered)"
    assert alpn_name(b"h3-T051") == "HTTP/3 over Google QUIC T051, Chromium (unregistered)"
    assert alpn_name(b"h3-35") == "unknown"  # no draft 35: v1 is "h3"
    assert alpn_name(b"doq-i12") == "unknown"
    # Registered legacy IDs keep their IANA names, without "(unregistered)".
    assert alpn_name(b"spdy/3") == "SPDY/3"
    assert alpn_name(b"spdy/1") == "SPDY/1"
    assert alpn_name(b"http/1.0") == "HTTP/1.0"
    # The two tables never overlap, and neither holds a GREASE ID.
    assert not set(ALPN_UNREGISTERED) & set(ALPN_PROTOCOLS)
    assert not [raw for raw in (*ALPN_UNREGISTERED, *ALPN_PROTOCOLS) if is_grease_alpn(raw)]
    assert all("unregistered" not in name for name in ALPN_UNREGISTERED.values())


def test_grease_alpn_ids() -> None:
    greases = [bytes([b, b]) for b in range(0x0A, 0x100, 0x10)]
    assert len(greases) == 16
    assert all(alpn_name(g) == "GREASE" and is_grease_alpn(g) for g in greases)
    assert not is_grease_alpn(b"\x0a\x1a")
    assert not is_grease_alpn(b"\x0a\x0a\x0a")
    assert alpn_name(b"\x0a\x1a") == "unknown"


def test_version_names() -> None:
    assert version_name(0x0304) == "1.3"
    assert version_name(0x0303) == "1.2"
    assert version_name(0x0302) == "1.1"
    assert version_name(0x0301) == "1.0"
    assert version_name(0x0300) == "ssl3"
    assert version_name(0x0002) == "ssl2"
    assert version_name(0x7F1C) == "1.3-draft28"
    assert version_name(0x7F0E) == "1.3-draft14"
    assert version_name(0xFB17) == "1.3-fb23"
    assert version_name(0x5A5A) == "grease"
    assert version_name(0xFEFD) == "dtls1.2"
    assert version_name(0x1234) == "0x1234"


def test_grease_values() -> None:
    assert sorted(GREASE_VALUES) == [v for v in range(0x10000) if is_grease(v)]
    assert len(GREASE_VALUES) == 16 and 0x0A0A in GREASE_VALUES and 0xFAFA in GREASE_VALUES
    assert not is_grease(0x0A1A) and not is_grease(0x0B0B)


def test_greased_chromium_hello_names() -> None:
    body = handshake_bodies(realcap("chromium_nginx_h2_veth1500.pcap"), 1)[0]
    ch = parse_client_hello(body)
    names = [extension_name(t) for t in ch.extensions]
    assert names[0] == "grease" and names[-1] == "grease"
    assert "application_settings" in names and "encrypted_client_hello" in names
    assert extension_name(0xCA34) == "unknown"  # trust anchors: no IANA number yet


def test_alert_names() -> None:
    assert ALERT_NO_APPLICATION_PROTOCOL == 120
    assert alert_name(120) == "no_application_protocol"
    assert alert_name(40) == "handshake_failure"
    assert alert_name(0) == "close_notify"
    assert alert_name(121) == "ech_required"
    assert alert_name(200) == "unknown(200)"
