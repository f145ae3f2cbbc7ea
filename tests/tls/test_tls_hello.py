"""ClientHello / ServerHello parsing: every field of real hellos, then broken ones.

The expected values were read from the captures with tshark 4.0.17 (random, session id,
cipher suites, compression, groups, signature algorithms, point formats, extension types,
SNI, ALPN); test_hello_tshark.py repeats that comparison for every capture.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tlscap import DATA, corpus, handshake_bodies, realcap

from alpnsniff.errors import DissectError, Malformed, Truncated
from alpnsniff.tls.hello import (
    HRR_RANDOM,
    ClientHello,
    EchInfo,
    ServerHello,
    parse_client_hello,
    parse_server_hello,
)

OPENSSL_SIGALGS = (
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080A, 0x080B, 0x0804, 0x0805, 0x0806,
    0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602,
)  # fmt: skip
OPENSSL_TLS12_CIPHERS = (
    0xC02C, 0xC030, 0x009F, 0xCCA9, 0xCCA8, 0xCCAA, 0xC02B, 0xC02F, 0x009E, 0xC024, 0xC028,
    0x006B, 0xC023, 0xC027, 0x0067, 0xC00A, 0xC014, 0x0039, 0xC009, 0xC013, 0x0033, 0x009D,
    0x009C, 0x003D, 0x003C, 0x0035, 0x002F, 0x00FF,
)  # fmt: skip
OPENSSL_TLS13_CIPHERS = (0x1302, 0x1303, 0x1301, *OPENSSL_TLS12_CIPHERS)
CHROMIUM_CIPHERS = (
    0x0A0A, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013,
    0xC014, 0x009C, 0x009D, 0x002F, 0x0035,
)  # fmt: skip
CHROMIUM_EXTENSIONS = (
    0x4A4A, 0xCA34, 18, 13, 65281, 27, 65037, 16, 0, 17613, 51, 45, 10, 23, 11, 43, 35, 5,
    0x3A3A,
)  # fmt: skip
CHROMIUM_SIGALGS = (
    0xCACA, 0x0904, 0x0905, 0x0906, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806,
    0x0601,
)  # fmt: skip


def _client_hellos(path: object) -> list[ClientHello]:
    return [parse_client_hello(b) for b in handshake_bodies(path, 1)]  # type: ignore[arg-type]


def _server_hellos(path: object) -> list[ServerHello]:
    return [parse_server_hello(b) for b in handshake_bodies(path, 2)]  # type: ignore[arg-type]


# ---------------------------------------------------------------- real hellos, every field


def test_openssl_tls12_client_hello_every_field() -> None:
    (ch,) = _client_hellos(realcap("openssl_tls12_alpn_h2.pcap"))
    assert ch == ClientHello(
        legacy_version=0x0303,
        random=bytes.fromhex("74aeba23a3d66f79eae14ec5afa1492c6071c5a6c41c9607042c63b29afdad3a"),
        session_id=b"",
        cipher_suites=OPENSSL_TLS12_CIPHERS,
        compression_methods=b"\x00",
        extensions=(0, 11, 10, 35, 16, 22, 23, 13),
        sni=b"localhost",
        alpn=(b"h2", b"http/1.1"),
        has_alpn=True,
        supported_versions=(),
        supported_groups=(0x001D, 0x0017, 0x001E, 0x0019, 0x0018),
        signature_algorithms=OPENSSL_SIGALGS,
        ec_point_formats=b"\x00\x01\x02",
        npn=False,
        ech=None,
        esni=False,
        alps=(),
        grease=False,
        ext_errors=(),
    )
    assert ch.highest_version() == 0x0303


def test_openssl_tls12_server_hello_every_field() -> None:
    (sh,) = _server_hellos(realcap("openssl_tls12_alpn_h2.pcap"))
    assert sh == ServerHello(
        legacy_version=0x0303,
        random=bytes.fromhex("b14829137e0326ac10a15ce82f87f90f00416b4c80f674ba44e3243a71136a91"),
        session_id=b"",
        cipher_suite=0xC02C,
        compression_method=0,
        extensions=(65281, 11, 35, 16, 23),
        selected_version=0x0303,
        alpn=(b"h2",),
        has_alpn=True,
        npn_protocols=(),
        is_hrr=False,
        ext_errors=(),
    )


def test_chromium_client_hello_over_two_segments_every_field() -> None:
    """Chromium 156 over veth MTU 1500: 1956-byte hello in 2 TCP segments, GREASE
    everywhere, GREASE ECH, ALPS 17613, X25519MLKEM768 (0x11ec), trust anchors (0xca34)."""
    first, second = _client_hellos(realcap("chromium_nginx_h2_veth1500.pcap"))
    assert first == ClientHello(
        legacy_version=0x0303,
        random=bytes.fromhex("460b279304c64824044e7b74df63f7bf22f36cd417c9d07c48fe128f0be74fb9"),
        session_id=bytes.fromhex(
            "89751f8a3edebe6215a14e50b63f2fbedccf7884033cf5014d518d931a8211df"
        ),
        cipher_suites=CHROMIUM_CIPHERS,
        compression_methods=b"\x00",
        extensions=CHROMIUM_EXTENSIONS,
        sni=b"www.example.test",
        alpn=(b"h2", b"http/1.1"),
        has_alpn=True,
        supported_versions=(0x6A6A, 0x0304, 0x0303),
        supported_groups=(0x6A6A, 0x11EC, 0x001D, 0x0017, 0x0018),
        signature_algorithms=CHROMIUM_SIGALGS,
        ec_point_formats=b"\x00",
        npn=False,
        ech=EchInfo(ech_type=0, kdf_id=1, aead_id=1, config_id=165, enc_len=32, payload_len=176),
        esni=False,
        alps=(b"h2",),
        grease=True,
        ext_errors=(),
    )
    assert first.highest_version() == 0x0304
    # The second connection: same stack, GREASE values and extension order drawn afresh.
    assert second.extensions[0] == 0xDADA and second.extensions[-1] == 0x5A5A
    assert second.ech == EchInfo(
        ech_type=0, kdf_id=1, aead_id=1, config_id=109, enc_len=32, payload_len=176
    )
    assert (second.alpn, second.alps, second.sni) == (first.alpn, first.alps, first.sni)


def test_chromium_tls13_server_hello_every_field() -> None:
    sh = _server_hellos(realcap("chromium_nginx_h2_veth1500.pcap"))[0]
    assert sh == ServerHello(
        legacy_version=0x0303,
        random=bytes.fromhex("4051a882359cec1188cbd39062aa986f1580907d8cc074279f2dc2d7b0b575e9"),
        session_id=bytes.fromhex(
            "89751f8a3edebe6215a14e50b63f2fbedccf7884033cf5014d518d931a8211df"
        ),
        cipher_suite=0x1301,
        compression_method=0,
        extensions=(43, 51),
        selected_version=0x0304,
        alpn=(),  # TLS 1.3: the choice is in EncryptedExtensions
        has_alpn=False,
        npn_protocols=(),
        is_hrr=False,
        ext_errors=(),
    )


def test_hello_retry_request_and_second_client_hello() -> None:
    ch1, ch2 = _client_hellos(realcap("openssl_tls13_hrr_alpn.pcap"))
    hrr, sh = _server_hellos(realcap("openssl_tls13_hrr_alpn.pcap"))
    assert hrr == ServerHello(
        legacy_version=0x0303,
        random=HRR_RANDOM,
        session_id=ch1.session_id,
        cipher_suite=0x1302,
        compression_method=0,
        extensions=(43, 51),
        selected_version=0x0304,
        alpn=(),
        has_alpn=False,
        npn_protocols=(),
        is_hrr=True,
        ext_errors=(),
    )
    assert not sh.is_hrr and sh.selected_version == 0x0304 and sh.cipher_suite == 0x1302
    expected = ClientHello(
        legacy_version=0x0303,
        random=bytes.fromhex("642a74785ceb36da240523982f6fab8621730f85d705ade35b6d9cc930c8d04d"),
        session_id=bytes.fromhex(
            "986f89727432a59801ad8253980181525a532db7fb9666320268ae78fea673b7"
        ),
        cipher_suites=OPENSSL_TLS13_CIPHERS,
        compression_methods=b"\x00",
        extensions=(0, 11, 10, 35, 16, 22, 23, 13, 43, 45, 51),
        sni=b"localhost",
        alpn=(b"h2", b"http/1.1"),
        has_alpn=True,
        supported_versions=(0x0304, 0x0303, 0x0302, 0x0301),
        supported_groups=(0x001D, 0x0018),
        signature_algorithms=OPENSSL_SIGALGS,
        ec_point_formats=b"\x00\x01\x02",
        npn=False,
        ech=None,
        esni=False,
        alps=(),
        grease=False,
        ext_errors=(),
    )
    # RFC 8446 §4.1.2: the second ClientHello repeats the first except for the key share.
    assert ch1 == expected
    assert ch2 == expected


def test_npn_client_and_server_hello() -> None:
    (ch,) = _client_hellos(realcap("openssl_tls12_npn.pcap"))
    (sh,) = _server_hellos(realcap("openssl_tls12_npn.pcap"))
    assert ch.npn is True and ch.has_alpn is False and ch.alpn == ()
    assert ch.extensions == (0, 11, 10, 35, 13172, 22, 23, 13)
    assert sh.npn_protocols == (b"h2", b"http/1.1")
    assert sh.extensions == (65281, 11, 35, 13172, 23)
    assert (sh.has_alpn, sh.alpn, sh.ext_errors) == (False, (), ())


def test_gnutls_tls12_hellos() -> None:
    (ch,) = _client_hellos(realcap("gnutls_tls12_alpn.pcap"))
    (sh,) = _server_hellos(realcap("gnutls_tls12_alpn.pcap"))
    assert ch.sni is None and 0 not in ch.extensions  # gnutls-cli to an IP: no SNI
    assert ch.alpn == (b"spdy/3", b"http/1.1")
    assert ch.extensions == (5, 10, 11, 13, 16, 22, 23, 35, 65281, 28)
    assert ch.supported_groups == (0x17, 0x18, 0x19, 0x1D, 0x1E, 0x100, 0x101, 0x102, 0x103, 0x104)
    assert sh.alpn == (b"http/1.1",) and sh.cipher_suite == 0xC02C
    assert sh.session_id.hex() == "db77490b7402d9f1cb91fc47567d2358e819ed23c03df66c8a59708d719cbe13"


def test_many_alpn_protocols_with_a_255_byte_name() -> None:
    (ch,) = _client_hellos(realcap("openssl_tls12_alpn_many.pcap"))
    (sh,) = _server_hellos(realcap("openssl_tls12_alpn_many.pcap"))
    assert len(ch.alpn) == 31
    assert max(len(p) for p in ch.alpn) == 255
    assert b"acme-tls/1" in ch.alpn and ch.ext_errors == ()
    assert sh.alpn == (b"acme-tls/1",)


def test_non_ascii_alpn_ids_kept_raw() -> None:
    path = DATA / "openssl_tls12_alpn_nonascii.pcap"
    (ch,) = _client_hellos(path)
    (sh,) = _server_hellos(path)
    assert ch.alpn == (b"\xff\xfeh2", "café".encode(), b"a b", b"\\x", b"h2")
    assert ch.ext_errors == () and ch.grease is False
    assert sh.alpn == (b"caf\xc3\xa9",)


def test_tls13_draft_server_hellos() -> None:
    """Drafts before -22 had a ServerHello without session_id and compression_method."""
    (sh,) = _server_hellos(corpus("suricata-verify__tls_tls13-draft14_tls13_draft14.pcap"))
    assert (sh.legacy_version, sh.selected_version, sh.session_id) == (0x0304, 0x0304, b"")
    assert sh.extensions == (40,)  # draft-14 key_share
    sh19 = _server_hellos(corpus("suricata-verify__tls_tls13-draft19_tls13_draft19.pcap"))[0]
    assert sh19.legacy_version == 0x7F13 and sh19.selected_version == 0x7F13
    assert sh19.ext_errors == ()


def test_highest_version_ranks_final_above_drafts() -> None:
    ch = _client_hellos(realcap("openssl_tls12_alpn_h2.pcap"))[0]
    fields = {f: getattr(ch, f) for f in ch.__dataclass_fields__}
    cases = {
        (0x7F1C, 0x0304, 0x0303): 0x0304,
        (0x0A0A, 0x7F1C, 0x7F17, 0x0303): 0x7F1C,
        (0xFB1A, 0x0303): 0xFB1A,
        (0x0303, 0x0302): 0x0303,
        (0x1A1A,): 0x0303,  # only GREASE: legacy_version
    }
    for versions, highest in cases.items():
        fields["supported_versions"] = versions
        assert ClientHello(**fields).highest_version() == highest


# ---------------------------------------------------------------- broken hellos
# Hand-built bytes, each from a real hello with one field changed.


def _openssl_ch() -> bytes:
    return handshake_bodies(realcap("openssl_tls12_alpn_h2.pcap"), 1)[0]


def _fixed_len(body: bytes) -> int:
    """Bytes of a ClientHello body before its extensions block."""
    pos = 34
    pos += 1 + body[pos]
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
    pos += 1 + body[pos]
    return pos


def _with_extensions(body: bytes, exts: list[tuple[int, bytes]]) -> bytes:
    fixed = body[: _fixed_len(body)]
    block = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts)
    return fixed + struct.pack(">H", len(block)) + block


def _extensions_of(body: bytes) -> list[tuple[int, bytes]]:
    pos = _fixed_len(body) + 2
    out = []
    while pos < len(body):
        t, n = struct.unpack_from(">HH", body, pos)
        out.append((t, body[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return out


def test_every_truncation_raises_truncated() -> None:
    body = _openssl_ch()
    fixed = _fixed_len(body)
    for n in range(len(body)):
        if n == fixed:
            # Cut right after compression_methods: a valid SSL 3.0-style hello.
            assert parse_client_hello(body[:n]).extensions == ()
            continue
        with pytest.raises(Truncated):
            parse_client_hello(body[:n])


def test_extensions_block_length_that_lies() -> None:
    body = bytearray(_openssl_ch())
    fixed = _fixed_len(bytes(body))
    block_len = int.from_bytes(body[fixed : fixed + 2], "big")
    longer = bytes(body[:fixed]) + (block_len + 1).to_bytes(2, "big") + bytes(body[fixed + 2 :])
    with pytest.raises(Truncated, match=r"block of 119 bytes, 118 left at tls.hello\+95"):
        parse_client_hello(longer)
    shorter = bytes(body[:fixed]) + (block_len - 1).to_bytes(2, "big") + bytes(body[fixed + 2 :])
    with pytest.raises(Malformed, match=r"1 byte left over after ClientHello at tls.hello\+214"):
        parse_client_hello(shorter)
    with pytest.raises(Malformed, match=r"1 byte left over after ClientHello"):
        parse_client_hello(bytes(body) + b"\x00")


def test_extension_header_cut_inside_block() -> None:
    body = _openssl_ch()
    exts = _extensions_of(body)
    block = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts) + b"\x00\x10\x00"
    broken = body[: _fixed_len(body)] + struct.pack(">H", len(block)) + block
    with pytest.raises(Truncated, match="extension header: 3 bytes left"):
        parse_client_hello(broken)


def test_huge_lengths_are_refused_without_allocation() -> None:
    body = _openssl_ch()
    bad_session = body[:34] + b"\xff" + body[35:]
    with pytest.raises(Malformed, match="session_id of 255 bytes"):
        parse_client_hello(bad_session[:34] + b"\xff" + b"\x00" * 255 + body[35:])
    with pytest.raises(Truncated):
        parse_client_hello(body[:35] + b"\xff\xff" + body[37:])  # cipher suites: 65535
    with pytest.raises(Malformed, match="odd length 55"):
        parse_client_hello(body[:35] + b"\x00\x37" + body[37:])


def test_bad_alpn_body_is_noted_and_the_rest_still_parsed() -> None:
    body = _openssl_ch()
    exts = [(t, b"\x00\x0d" + d[2:] if t == 16 else d) for t, d in _extensions_of(body)]
    ch = parse_client_hello(_with_extensions(body, exts))
    assert ch.has_alpn and ch.alpn == ()
    assert ch.ext_errors == (
        "application_layer_protocol_negotiation(16): block of 13 bytes, 12 left at tls.hello+147",
    )
    assert ch.sni == b"localhost" and ch.signature_algorithms == OPENSSL_SIGALGS
    # A name whose length runs past the list: the names before it are kept (as tshark does).
    exts = [(t, d.replace(b"\x08http", b"\x09http") if t == 16 else d) for t, d in _extensions_of(body)]  # fmt: skip
    ch = parse_client_hello(_with_extensions(body, exts))
    assert ch.alpn == (b"h2",)
    assert ch.ext_errors == (
        "application_layer_protocol_negotiation(16): opaque of 9 bytes, 8 left at tls.hello+152",
    )


def test_empty_alpn_protocol_name_is_kept_and_noted() -> None:
    body = _openssl_ch()
    # "\x02h2" becomes three empty names: same length, RFC 7301 §3.1 forbids them.
    exts = [(t, d.replace(b"\x02h2", b"\x00\x00\x00") if t == 16 else d) for t, d in _extensions_of(body)]  # fmt: skip
    ch = parse_client_hello(_with_extensions(body, exts))
    assert ch.alpn == (b"", b"", b"", b"http/1.1")
    assert ch.ext_errors == ("alpn: empty ProtocolName (RFC 7301 §3.1 forbids it)",) * 3


def test_empty_alpn_list_and_empty_sni() -> None:
    body = _openssl_ch()
    exts = [(0, b"") if t == 0 else (16, b"\x00\x00") if t == 16 else (t, d) for t, d in _extensions_of(body)]  # fmt: skip
    ch = parse_client_hello(_with_extensions(body, exts))
    assert (ch.has_alpn, ch.alpn, ch.sni) == (True, (), None)
    assert ch.ext_errors == (
        "server_name: empty extension body",
        "alpn: empty protocol_name_list (RFC 7301 §3.1 requires one name)",
    )


def test_repeated_extension_first_one_wins() -> None:
    body = _openssl_ch()
    exts = [*_extensions_of(body), (16, b"\x00\x03\x02h3")]
    ch = parse_client_hello(_with_extensions(body, exts))
    assert ch.alpn == (b"h2", b"http/1.1")
    assert ch.extensions[-1] == 16
    assert ch.ext_errors == (
        "application_layer_protocol_negotiation(16): repeated, first one read (RFC 8446 §4.2)",
    )


def test_grease_alpn_and_ech_forms() -> None:
    body = _openssl_ch()
    exts = [(t, b"\x00\x06\x02\x3a\x3a\x02h2" if t == 16 else d) for t, d in _extensions_of(body)]
    inner = parse_client_hello(_with_extensions(body, [*exts, (0xFE0D, b"\x01")]))
    assert inner.alpn == (b"::", b"h2") and inner.grease is True
    assert inner.ech == EchInfo(ech_type=1)
    bad = parse_client_hello(_with_extensions(body, [(0xFE0D, b"\x02")]))
    assert bad.ech is None and bad.extensions == (0xFE0D,)
    assert bad.ext_errors == (
        "encrypted_client_hello(65037): ECHClientHelloType 2 at tls.hello+101",
    )


def test_server_hello_with_two_alpn_protocols_is_flagged() -> None:
    (body,) = handshake_bodies(realcap("openssl_tls12_alpn_h2.pcap"), 2)
    fixed = 2 + 32 + 1 + body[34] + 3
    block = b"\x00\x10\x00\x0e\x00\x0c\x02h2\x08http/1.1"
    sh = parse_server_hello(body[:fixed] + struct.pack(">H", len(block)) + block)
    assert sh.alpn == (b"h2", b"http/1.1")
    assert sh.ext_errors == (
        "alpn: server selected 2 protocols (RFC 7301 §3.1 requires exactly one)",
    )
    with pytest.raises(Truncated):
        parse_server_hello(body[:40])


# ---------------------------------------------------------------- fuzz rule


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_dissect_error(data: bytes) -> None:
    for parse in (parse_client_hello, parse_server_hello):
        with contextlib.suppress(DissectError):
            parse(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_hellos_parse_or_raise_dissect_error(data: st.DataObject) -> None:
    body = bytearray(_openssl_ch())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    try:
        ch = parse_client_hello(bytes(body))
    except DissectError:
        return
    assert isinstance(ch.ext_errors, tuple) and all(isinstance(p, bytes) for p in ch.alpn)


def test_server_hello_broken_fields() -> None:
    (body,) = handshake_bodies(realcap("openssl_tls12_alpn_h2.pcap"), 2)
    with pytest.raises(Malformed, match="session_id of 33 bytes"):
        parse_server_hello(body[:34] + b"\x21" + bytes(33) + body[35:])
    fixed = 2 + 32 + 1 + body[34] + 3
    block = b"\x00\x2b\x00\x03\x03\x04\x00"  # supported_versions with a stray byte
    sh = parse_server_hello(body[:fixed] + struct.pack(">H", len(block)) + block)
    assert sh.selected_version == 0x0303  # the legacy_version: the extension did not parse
    assert sh.ext_errors == (
        "supported_versions(43): 1 byte left over after supported_versions at tls.hello+46",
    )


def test_server_name_list_violations() -> None:
    body = _openssl_ch()
    two_names = b"\x00\x0c\x00\x00\x03one\x00\x00\x03two"
    exts = [(t, two_names if t == 0 else d) for t, d in _extensions_of(body)]
    ch = parse_client_hello(_with_extensions(body, exts))
    assert ch.sni == b"one"
    assert ch.ext_errors == ("server_name: more than one host_name (RFC 6066 §3 forbids it)",)
    empty_name = b"\x00\x03\x00\x00\x00"
    exts = [(t, empty_name if t == 0 else d) for t, d in _extensions_of(body)]
    ch = parse_client_hello(_with_extensions(body, exts))
    assert ch.sni == b"" and ch.ext_errors == ("server_name: empty HostName",)
    exts = [(t, b"\x00\x00" if t == 0 else d) for t, d in _extensions_of(body)]
    ch = parse_client_hello(_with_extensions(body, exts))
    assert ch.sni is None and ch.ext_errors == ("server_name: empty server_name_list",)
