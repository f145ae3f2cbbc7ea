"""TLS 1.3 server flight decryption: RFC 8448, real captures against tshark, malformed input."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st
from keyscap import (
    CAPTURES,
    DATA,
    REALCAP,
    Result,
    keylog_for,
    need,
    tls13_ee,
    tshark_view,
)
from rfc_vectors import (
    RFC8448_CLIENT_HS_SECRET,
    RFC8448_EE,
    RFC8448_FLIGHT_RECORD,
    RFC8448_SERVER_HS_IV,
    RFC8448_SERVER_HS_KEY,
    RFC8448_SERVER_HS_SECRET,
)

from alpnsniff.errors import DissectError, Malformed, Unsupported
from alpnsniff.keys.aead import TLS13_SUITES, DecryptFailed, hkdf_expand_label
from alpnsniff.keys.tls13 import (
    MAX_CIPHERTEXT_LENGTH,
    Tls13ServerFlightDecryptor,
    server_handshake_keys,
)
from alpnsniff.quic import initial
from alpnsniff.tls.events import AlertRecord, HandshakeMessage, StreamError
from alpnsniff.tls.messages import EncryptedExtensionsInfo, parse_encrypted_extensions

ALPN_FIELD = "tls.handshake.extensions_alpn_str"


def feed(dec: Tls13ServerFlightDecryptor, record: bytes) -> list[object]:
    return list(dec.feed_record(record[0], record[:5], record[5:]))


def seal(inner: bytes, seq: int, key: bytes = RFC8448_SERVER_HS_KEY) -> bytes:
    """A TLS 1.3 record holding ``inner`` (TLSInnerPlaintext), sealed with the RFC 8448
    server handshake key: hand-built bytes for the malformed-input tests."""
    n = len(inner) + 16
    header = bytes((23, 3, 3, n >> 8, n & 0xFF))
    nonce = (int.from_bytes(RFC8448_SERVER_HS_IV, "big") ^ seq).to_bytes(12, "big")
    return header + AESGCM(key).encrypt(nonce, inner, header)


def rfc8448() -> Tls13ServerFlightDecryptor:
    return Tls13ServerFlightDecryptor(0x1301, RFC8448_SERVER_HS_SECRET)


# ------------------------------------------------------------------ RFC 8448 §3


def test_rfc8448_server_handshake_key_and_iv() -> None:
    keys = server_handshake_keys(0x1301, RFC8448_SERVER_HS_SECRET)
    assert keys.key == RFC8448_SERVER_HS_KEY
    assert keys.iv == RFC8448_SERVER_HS_IV
    assert keys.nonce(0) == RFC8448_SERVER_HS_IV
    assert keys.nonce(1) == bytes.fromhex("5d313eb2671276ee13000b31")


def test_rfc8448_flight_record_decrypts_to_its_four_messages() -> None:
    dec = rfc8448()
    events = feed(dec, RFC8448_FLIGHT_RECORD)
    assert [(e.msg_type, len(e.body)) for e in events if isinstance(e, HandshakeMessage)] == [
        (8, 36),
        (11, 441),
        (15, 132),
        (20, 32),
    ]
    assert len(events) == 4
    ee = events[0]
    assert isinstance(ee, HandshakeMessage)
    assert ee.body == RFC8448_EE[4:] and ee.record_version == 0x0303
    assert parse_encrypted_extensions(ee.body) == EncryptedExtensionsInfo(
        alpn=(), has_alpn=False, extensions=(10, 28, 0), errors=()
    )
    assert dec.done and dec.error is None
    assert dict(dec.stats) == {"records": 1, "messages": 4, "padding_bytes": 0}
    assert feed(dec, RFC8448_FLIGHT_RECORD) == []  # after Finished: counted, ignored
    assert dec.stats["records_after_finished"] == 1


def test_rfc8448_compatibility_ccs_takes_no_sequence_number() -> None:
    dec = rfc8448()
    assert feed(dec, b"\x14\x03\x03\x00\x01\x01") == []
    assert len(feed(dec, RFC8448_FLIGHT_RECORD)) == 4
    assert dec.stats["ccs_skipped"] == 1


def test_rfc8448_with_the_client_secret_fails_to_decrypt() -> None:
    dec = Tls13ServerFlightDecryptor(0x1301, RFC8448_CLIENT_HS_SECRET)
    (event,) = feed(dec, RFC8448_FLIGHT_RECORD)
    assert isinstance(event, StreamError)
    assert isinstance(event.error, DecryptFailed)
    assert event.error.reason == "decrypt-failed"
    assert str(event.error) == (
        "server handshake record 0: TLS_AES_128_GCM_SHA256 tag does not verify "
        "(wrong key log entry, or damaged bytes)"
    )
    assert dec.error is event.error
    assert feed(dec, RFC8448_FLIGHT_RECORD) == []  # stopped


def test_one_damaged_byte_fails_to_decrypt() -> None:
    for pos in (5, 300, len(RFC8448_FLIGHT_RECORD) - 1):
        damaged = bytearray(RFC8448_FLIGHT_RECORD)
        damaged[pos] ^= 0x01
        (event,) = feed(rfc8448(), bytes(damaged))
        assert isinstance(event, StreamError) and event.error.reason == "decrypt-failed"


def test_aad_is_the_record_header() -> None:
    header = bytearray(RFC8448_FLIGHT_RECORD[:5])
    header[2] = 0x01  # legacy_record_version 0x0301: authenticated, so the tag fails
    dec = rfc8448()
    (event,) = dec.feed_record(23, bytes(header), RFC8448_FLIGHT_RECORD[5:])
    assert isinstance(event, StreamError) and event.error.reason == "decrypt-failed"


# ------------------------------------------------------------------ key schedule


@pytest.mark.parametrize("label", [b"key", b"iv", b"quic hp", b"client in", b"c hs traffic"])
@pytest.mark.parametrize("length", [12, 16, 32])
def test_hkdf_expand_label_sha256_agrees_with_the_quic_initial_one(
    label: bytes, length: int
) -> None:
    secret = RFC8448_SERVER_HS_SECRET
    assert hkdf_expand_label("sha256", secret, label, length) == initial.hkdf_expand_label(
        secret, label, length
    )


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@pytest.mark.parametrize("length", [12, 32, 48, 100])
def test_hkdf_expand_label_agrees_with_cryptography(hash_name: str, length: int) -> None:
    secret = bytes(range(48))
    info = length.to_bytes(2, "big") + bytes((len(b"tls13 key"),)) + b"tls13 key" + b"\x00"
    algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA384()
    expected = HKDFExpand(algorithm=algorithm, length=length, info=info).derive(secret)
    assert hkdf_expand_label(hash_name, secret, b"key", length) == expected


def test_suite_table() -> None:
    assert {c: (s.hash_name, s.key_length, s.tag_length) for c, s in TLS13_SUITES.items()} == {
        0x1301: ("sha256", 16, 16),
        0x1302: ("sha384", 32, 16),
        0x1303: ("sha256", 32, 16),
        0x1304: ("sha256", 16, 16),
        0x1305: ("sha256", 16, 8),
    }


def test_unknown_suite_and_wrong_secret_length() -> None:
    with pytest.raises(Unsupported, match=r"TLS 1\.3 cipher suite 0xc02b is not one"):
        Tls13ServerFlightDecryptor(0xC02B, RFC8448_SERVER_HS_SECRET)
    with pytest.raises(Malformed, match="of 32 bytes, TLS_AES_256_GCM_SHA384 needs 48"):
        Tls13ServerFlightDecryptor(0x1302, RFC8448_SERVER_HS_SECRET)


# ------------------------------------------------------------------ real captures

TLS13_CAPTURES = [
    REALCAP / "openssl_tls13_alpn_h2.pcap",
    REALCAP / "openssl_tls13_hrr_alpn.pcap",
    REALCAP / "nginx_curl_http2_tls13.pcap",
    REALCAP / "pyssl_tls13_alpn_h2.pcap",
    REALCAP / "gnutls_tls13_alpn.pcap",
    REALCAP / "chromium_nginx_h2_tls13_lo.pcap",
    REALCAP / "chromium_nginx_h2_veth1500.pcap",
    REALCAP / "chromium_nginx_http11only_tls13_lo.pcap",
    CAPTURES / "openssl_tls13_h2.pcap",
    CAPTURES / "openssl_tls13_hrr.pcap",
    CAPTURES / "nginx_curl_h2_tls13.pcap",
    CAPTURES / "chromium_nginx_h2_veth1500.pcap",
    CAPTURES / "pyssl_tls13_mismatch.pcap",
    DATA / "tls13_chacha20_h2.pcap",
    DATA / "tls13_aes128ccm_h2.pcap",
    DATA / "tls13_aes128ccm8_http11.pcap",
    DATA / "tls13_padded_h2.pcap",
    DATA / "tls13_bigcert_h2.pcap",
]


@pytest.mark.tshark
@pytest.mark.parametrize("path", TLS13_CAPTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_real_capture_ee_alpn_agrees_with_tshark(path: Path) -> None:
    need(path)
    keys = path.with_suffix(".keys")
    ours = tls13_ee(path, keylog_for(path))
    assert ours, "no EncryptedExtensions decrypted"
    assert ours == tshark_view(path, keys, ALPN_FIELD, 8)


EXPECTED = {
    "openssl_tls13_alpn_h2": [Result(6, (b"h2",))],
    "openssl_tls13_hrr_alpn": [Result(9, (b"h2",))],
    "gnutls_tls13_alpn": [Result(8, (b"http/1.1",))],
    "chromium_nginx_h2_tls13_lo": [Result(6, (b"h2",)), Result(13, (b"h2",))],
    "chromium_nginx_http11only_tls13_lo": [Result(6, (b"http/1.1",))],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_capture_values(name: str) -> None:
    path = need(REALCAP / f"{name}.pcap")
    assert tls13_ee(path, keylog_for(path)) == EXPECTED[name]


def test_cpython_silent_mismatch_has_no_alpn_in_ee() -> None:
    # CPython's server with no common protocol sends no alert and an EE without ALPN
    path = need(CAPTURES / "pyssl_tls13_mismatch.pcap")
    assert tls13_ee(path, keylog_for(path)) == [Result(6, None)]


def test_real_capture_ee_in_the_dsb_file() -> None:
    from keyscap import dsb_blocks

    from alpnsniff.keys.keylog import KeyLog

    path = need(REALCAP / "openssl_tls13_hrr_alpn_dsb.pcapng")
    log = KeyLog()
    for stype, data in dsb_blocks(path):
        log.add_dsb(stype, data)
    assert tls13_ee(path, log) == [Result(9, (b"h2",))]


# ------------------------------------------------------------------ hand-built: malformed

EE_H2 = bytes.fromhex("0800000b0009001000050003026832")
FINISHED = b"\x14\x00\x00\x20" + bytes(32)


def test_messages_reassembled_across_records_and_padding_stripped() -> None:
    dec = rfc8448()
    msgs = EE_H2 + FINISHED
    records = [seal(msgs[:3] + b"\x16", 0), seal(msgs[3:9] + b"\x16" + bytes(100), 1)]
    records.append(seal(msgs[9:] + b"\x16", 2))
    events = [e for r in records for e in feed(dec, r)]
    assert events == [
        HandshakeMessage(8, EE_H2[4:], 0x0303),
        HandshakeMessage(20, bytes(32), 0x0303),
    ]
    assert parse_encrypted_extensions(EE_H2[4:]).alpn == (b"h2",)
    assert dec.stats["padding_bytes"] == 100 and dec.done


def test_encrypted_alert_and_plaintext_alert() -> None:
    dec = rfc8448()
    assert feed(dec, b"\x15\x03\x03\x00\x02\x02\x28") == [AlertRecord(2, 40)]
    assert feed(dec, seal(b"\x02\x50\x15", 0)) == [AlertRecord(2, 80)]


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (
            seal(bytes(20), 0),
            "record 0: inner plaintext is all zeros, no content type (RFC 8446 §5.4)",
        ),
        (seal(b"\x16", 0), "record 0: empty handshake content (RFC 8446 §5.4)"),
        (seal(b"hello\x17", 0), "record 0: inner content type 23 under the handshake keys"),
        (seal(b"\x02\x28\x02\x15", 0), "record 0: alert of 3 bytes"),
        (
            seal(bytes(2**14 + 2), 0),
            "record 0: inner plaintext of 16386 bytes (RFC 8446 §5.4: at most 16385)",
        ),
        (
            seal(FINISHED + b"\x08\x16", 0),
            "record 0: 1 bytes after Finished (a message may not span a key change)",
        ),
        (
            b"\x16\x03\x03\x00\x04\x02\x00\x00\x00",
            "plaintext record of type 22 after the ServerHello (RFC 8446 §5: protected records have type 23)",
        ),
        (b"\x14\x03\x03\x00\x01\x02", "ChangeCipherSpec of 1 bytes"),
        (
            b"\x17\x03\x03\x00\x10" + bytes(16),
            "encrypted record of 16 bytes: no room for a content type and the tag",
        ),
        (b"\x17\x03\x03\x00\x20" + bytes(16), "record header says 32 bytes, body has 16"),
    ],
)
def test_malformed_records_end_the_stream(record: bytes, error: str) -> None:
    dec = rfc8448()
    events = feed(dec, record)
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, Malformed)
    assert str(events[-1].error) == error
    assert dec.error is events[-1].error


def test_messages_before_an_error_in_the_same_record_are_kept() -> None:
    events = feed(rfc8448(), seal(EE_H2 + FINISHED + b"\x08\x16", 0))
    assert [type(e).__name__ for e in events] == [
        "HandshakeMessage",
        "HandshakeMessage",
        "StreamError",
    ]


def test_alert_inside_a_fragmented_message() -> None:
    dec = rfc8448()
    assert feed(dec, seal(EE_H2[:5] + b"\x16", 0)) == []
    (event,) = feed(dec, seal(b"\x02\x28\x15", 1))
    assert isinstance(event, StreamError)
    assert str(event.error) == "record 1: alert inside a fragmented handshake message"


def test_record_over_the_rfc_limit() -> None:
    n = MAX_CIPHERTEXT_LENGTH + 1
    (event,) = rfc8448().feed_record(23, bytes((23, 3, 3, n >> 8, n & 0xFF)), bytes(n))
    assert isinstance(event, StreamError)
    assert str(event.error) == "encrypted record of 16641 bytes (RFC 8446 §5.2: at most 16640)"


def test_message_over_the_limit_is_skipped_unbuffered() -> None:
    dec = Tls13ServerFlightDecryptor(0x1301, RFC8448_SERVER_HS_SECRET, max_message=1000)
    big = b"\x0b\x00\x07\xd0" + bytes(2000)  # a 2000-byte "Certificate"
    events = feed(dec, seal(EE_H2 + big[:1500] + b"\x16", 0))
    assert [e.msg_type for e in events if isinstance(e, HandshakeMessage)] == [8]
    assert dec.buffered == 0
    events = feed(dec, seal(big[1500:] + FINISHED + b"\x16", 1))
    assert [e.msg_type for e in events if isinstance(e, HandshakeMessage)] == [20]
    assert dec.stats["messages_too_large"] == 1


# ------------------------------------------------------------------ fuzz


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.binary(min_size=0, max_size=8), st.binary(max_size=200))
def test_fuzz_any_record_gives_events_or_a_stream_error(
    ct: int, header: bytes, payload: bytes
) -> None:
    dec = rfc8448()
    events = dec.feed_record(ct, header, payload)
    assert all(isinstance(e, HandshakeMessage | AlertRecord | StreamError) for e in events)
    if events and isinstance(events[-1], StreamError):
        assert isinstance(events[-1].error, DissectError)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=4))
def test_fuzz_sealed_inner_plaintexts(inners: list[bytes]) -> None:
    # past the AEAD: any decrypted content is handled as events or one StreamError
    dec = rfc8448()
    for seq, inner in enumerate(inners):
        for event in feed(dec, seal(inner, seq)):
            assert isinstance(event, HandshakeMessage | AlertRecord | StreamError)
    assert dec.buffered <= sum(len(i) for i in inners)


def test_no_key_material_in_repr_or_errors() -> None:
    keys = server_handshake_keys(0x1301, RFC8448_SERVER_HS_SECRET)
    dec = rfc8448()
    bad = Tls13ServerFlightDecryptor(0x1301, RFC8448_CLIENT_HS_SECRET)
    (event,) = feed(bad, RFC8448_FLIGHT_RECORD)
    assert isinstance(event, StreamError)
    shown = [repr(keys), str(keys), repr(dec), str(event.error), repr(bad)]
    for text in shown:
        for secret in (RFC8448_SERVER_HS_SECRET, RFC8448_SERVER_HS_KEY, RFC8448_SERVER_HS_IV):
            assert secret.hex()[:12] not in text
    assert repr(keys) == "TrafficKeys(TLS_AES_128_GCM_SHA256, key and iv hidden)"
