"""TLS ≤ 1.2 NPN decryption: the PRF, real captures of every record protection, tampering."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keyscap import (
    CAPTURES,
    DATA,
    EXT_ENCRYPT_THEN_MAC,
    REALCAP,
    Record,
    Result,
    client_random,
    keylog_for,
    need,
    records,
    server_hello,
    tcp_connections,
    tls12_npn,
    tshark_view,
)
from rfc_vectors import h

from alpnsniff.errors import DissectError, Malformed, Unsupported
from alpnsniff.keys.tls12 import (
    TLS12_SUITES,
    Tls12HandshakeDecryptor,
    prf,
)
from alpnsniff.tls.events import AlertRecord, HandshakeMessage, StreamError
from alpnsniff.tls.messages import parse_next_protocol

NPN_FIELD = "tls.handshake.npn_selected_protocol"

NPN_CAPTURES = [
    REALCAP / "openssl_tls12_npn.pcap",
    CAPTURES / "openssl_tls12_npn.pcap",
    *sorted(DATA.glob("npn_*.pcap")),
]


# ------------------------------------------------------------------ PRF


def test_prf_sha256_vector() -> None:
    # the TLS 1.2 PRF test vector published on the IETF TLS WG list (P_SHA256)
    out = prf(
        0x0303,
        "sha256",
        h("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35"),
        b"test label",
        h("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c"),
        100,
    )
    assert out == h(
        """e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4
        e6 1e db 5a 6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17
        ab fd 37 97 c0 56 4b ab 4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1
        22 ee 42 c5 a7 2e 5a 51 10 ff f7 01 87 34 7b 66"""
    )


def test_prf_sha384_vector() -> None:
    out = prf(
        0x0303,
        "sha384",
        h("b8 0b 73 3d 6c ee fc dc 71 56 6e a4 8e 55 67 df"),
        b"test label",
        h("cd 66 5c f6 a8 44 7d d6 ff 8b 27 55 5e db 74 65"),
        148,
    )
    assert out == h(
        """7b 0c 18 e9 ce d4 10 ed 18 04 f2 cf a3 4a 33 6a 1c 14 df fb 49 00 bb 5f d7 94 21 07
        e8 1c 83 cd e9 ca 0f aa 60 be 9f e3 4f 82 b1 23 3c 91 46 a0 e5 34 cb 40 0f ed 27 00
        88 4f 9d c2 36 f8 0e dd 8b fa 96 11 44 c9 e8 d7 92 ec a7 22 a7 b3 2f c3 d4 16 d4 73
        eb c2 c5 fd 4a bf da d0 5d 91 84 25 9b 5b f8 cd 4d 90 fa 0d 31 e2 de c4 79 e4 f1 a2
        60 66 f2 ee a9 a6 92 36 a3 e5 26 55 c9 e9 ae e6 91 c8 f3 a2 68 54 30 8d 5e aa 3b e8
        5e 09 90 70 3d 73 e5 6f"""
    )


def test_tls10_prf_xors_md5_and_sha1_halves() -> None:
    import hmac

    secret, seed = bytes(range(48)), b"seed"
    a_md5 = hmac.digest(secret[:24], b"label" + seed, "md5")
    first_md5 = hmac.digest(secret[:24], a_md5 + b"label" + seed, "md5")
    a_sha = hmac.digest(secret[24:], b"label" + seed, "sha1")
    first_sha = hmac.digest(secret[24:], a_sha + b"label" + seed, "sha1")
    expected = bytes(x ^ y for x, y in zip(first_md5, first_sha[:16], strict=True))
    assert prf(0x0301, "sha256", secret, b"label", seed, 16) == expected


def test_suite_table_names_what_is_covered() -> None:
    kinds = {c: (s.cipher, s.mac, s.prf_hash) for c, s in TLS12_SUITES.items()}
    assert kinds[0xC02B] == ("gcm", None, "sha256")
    assert kinds[0xC030] == ("gcm", None, "sha384")
    assert kinds[0xCCA9] == ("chacha20", None, "sha256")
    assert kinds[0xC009] == ("cbc", "sha1", "sha256")
    assert kinds[0xC024] == ("cbc", "sha384", "sha384")
    assert kinds[0x003D] == ("cbc", "sha256", "sha256")
    assert len(TLS12_SUITES) == 27


# ------------------------------------------------------------------ real captures


@pytest.mark.tshark
@pytest.mark.parametrize("path", NPN_CAPTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_real_capture_npn_agrees_with_tshark(path: Path) -> None:
    need(path)
    ours = tls12_npn(path, keylog_for(path))
    assert ours == [Result(8, (b"h2",))]
    assert ours == tshark_view(path, path.with_suffix(".keys"), NPN_FIELD, 67)


@pytest.mark.tshark
def test_tls12_without_npn_decrypts_finished_only() -> None:
    # Chromium to nginx over TLS 1.2, ECDHE-ECDSA-AES128-GCM: no NPN, two connections
    path = need(REALCAP / "chromium_nginx_h2_tls12_lo.pcap")
    assert tls12_npn(path, keylog_for(path)) == []
    assert tshark_view(path, path.with_suffix(".keys"), NPN_FIELD, 67) == []


def setup(
    name: str, *, client: bool = True
) -> tuple[Callable[[], Tls12HandshakeDecryptor], list[Record]]:
    """A decryptor factory and the records of one side of a real NPN capture."""
    path = (
        need(DATA / f"{name}.pcap")
        if not name.startswith("openssl")
        else need(REALCAP / f"{name}.pcap")
    )
    (conn,) = tcp_connections(path)
    sh, _ = server_hello(records(conn.server.data))
    cr = client_random(conn.client.data)
    secrets = keylog_for(path).secrets_for(cr)
    assert secrets is not None and secrets.master_secret is not None
    ms = secrets.master_secret

    def make() -> Tls12HandshakeDecryptor:
        return Tls12HandshakeDecryptor(
            sh.cipher_suite,
            ms,
            cr,
            sh.random,
            version=sh.selected_version,
            client=client,
            encrypt_then_mac=EXT_ENCRYPT_THEN_MAC in sh.extensions,
        )

    side = conn.client if client else conn.server
    return make, records(side.data)


def run(dec: Tls12HandshakeDecryptor, recs: list[Record]) -> list[object]:
    out: list[object] = []
    for r in recs:
        out.extend(dec.feed_record(r.content_type, r.header, r.payload))
        if dec.done or dec.error:
            break
    return out


@pytest.mark.parametrize(
    "name",
    [
        "npn_tls12_c02b_gcm",
        "npn_tls12_cca9_chacha",
        "npn_tls12_c024_cbc_sha384_mte",
        "npn_tls12_c009_cbc_sha1_etm",
        "npn_tls10_c009_cbc_sha1_mte",
        "npn_tls11_c00a_cbc_sha1_etm",
    ],
)
def test_server_finished_with_the_server_keys(name: str) -> None:
    make, recs = setup(name, client=False)
    dec = make()
    (finished,) = run(dec, recs)
    assert isinstance(finished, HandshakeMessage)
    assert finished.msg_type == 20 and len(finished.body) == 12  # verify_data
    assert finished.record_version == dec.version
    assert dec.stats["plaintext_before_ccs"] >= 2  # ServerHello…, NewSessionTicket
    assert dec.done and dec.error is None


def test_client_messages_in_order() -> None:
    make, recs = setup("npn_tls12_c02b_gcm")
    dec = make()
    events = run(dec, recs)
    assert [e.msg_type for e in events if isinstance(e, HandshakeMessage)] == [67, 20]
    npn = events[0]
    assert isinstance(npn, HandshakeMessage)
    assert parse_next_protocol(npn.body) == b"h2"
    assert len(npn.body) == 32  # 1 + 2 + 1 + 28 bytes of padding: a multiple of 32
    # OpenSSL sends NextProtocol and Finished in two records (sequence numbers 0 and 1)
    assert dict(dec.stats) == {"plaintext_before_ccs": 2, "records": 2, "messages": 2}
    assert run(dec, recs[-1:]) == []
    assert dec.stats["records_after_finished"] == 1


def encrypted_client_record(name: str) -> tuple[Tls12HandshakeDecryptor, Record]:
    make, recs = setup(name)
    dec = make()
    i = next(i for i, r in enumerate(recs) if r.content_type == 20)
    for r in recs[: i + 1]:
        assert dec.feed_record(r.content_type, r.header, r.payload) == []
    return dec, recs[i + 1]


@pytest.mark.parametrize(
    ("name", "pos", "reason"),
    [
        ("npn_tls12_c02b_gcm", -1, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 tag does not verify"),
        ("npn_tls12_c02b_gcm", 0, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 tag does not verify"),
        (
            "npn_tls12_cca9_chacha",
            3,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 tag does not verify",
        ),
        (
            "npn_tls12_c009_cbc_sha1_mte",
            20,
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA MAC does not verify",
        ),
        (
            "npn_tls12_c009_cbc_sha1_mte",
            -1,
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA CBC padding is wrong",
        ),
        (
            "npn_tls12_c009_cbc_sha1_etm",
            20,
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA encrypt-then-MAC does not verify",
        ),
        (
            "npn_tls10_c009_cbc_sha1_mte",
            3,
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA MAC does not verify",
        ),
    ],
)
def test_tampered_record_fails_to_decrypt(name: str, pos: int, reason: str) -> None:
    dec, rec = encrypted_client_record(name)
    payload = bytearray(rec.payload)
    payload[pos] ^= 0x40
    (event,) = dec.feed_record(rec.content_type, rec.header, bytes(payload))
    assert isinstance(event, StreamError)
    assert event.error.reason == "decrypt-failed"
    assert str(event.error) == f"record 0: {reason} (wrong key log entry, or damaged bytes)"


def test_wrong_master_secret_fails_on_the_first_record() -> None:
    make, recs = setup("npn_tls12_c024_cbc_sha384_mte")
    good = make()
    dec = Tls12HandshakeDecryptor(
        good.suite.code, bytes(48), bytes(32), bytes(32), version=good.version
    )
    events = run(dec, recs)
    assert isinstance(events[-1], StreamError) and events[-1].error.reason == "decrypt-failed"


# ------------------------------------------------------------------ malformed


def test_malformed_records() -> None:
    make, _ = setup("npn_tls12_c02b_gcm")
    cases = [
        (23, b"\x17\x03\x03\x00\x01", b"x", "record type 23 before the ChangeCipherSpec"),
        (20, b"\x14\x03\x03\x00\x01", b"\x02", "ChangeCipherSpec of 1 bytes"),
    ]
    for ct, header, payload, error in cases:
        (event,) = make().feed_record(ct, header, payload)
        assert isinstance(event, StreamError) and str(event.error) == error
    after_ccs = [
        (22, b"\x16\x03\x03\x00\x05", b"short", "record 0: GCM record of 5 bytes"),
        (22, b"\x16\x03\x03\x00\x09", b"short", "record header does not match the record body"),
        (
            22,
            b"\x16\x03\x03\x48\x01",
            bytes(0x4801),
            "record of 18433 bytes (RFC 5246 §6.2.3: at most 18432)",
        ),
    ]
    for ct, header, payload, error in after_ccs:
        dec = make()
        dec.feed_record(20, b"\x14\x03\x03\x00\x01", b"\x01")
        (event,) = dec.feed_record(ct, header, payload)
        assert isinstance(event, StreamError) and str(event.error) == error


def test_cbc_record_not_whole_blocks() -> None:
    dec, rec = encrypted_client_record("npn_tls12_c009_cbc_sha1_mte")
    payload = rec.payload[:-1]
    header = rec.header[:3] + len(payload).to_bytes(2, "big")
    (event,) = dec.feed_record(22, header, payload)
    assert isinstance(event, StreamError)
    assert str(event.error) == "record 0: CBC ciphertext of 63 bytes, not whole blocks"


def test_construction_errors() -> None:
    ms, r = bytes(48), bytes(32)
    with pytest.raises(Unsupported, match=r"TLS ≤ 1\.2 cipher suite 0x000a is not one"):
        Tls12HandshakeDecryptor(0x000A, ms, r, r)
    with pytest.raises(
        Unsupported, match="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 with version 0x0302"
    ):
        Tls12HandshakeDecryptor(0xC02B, ms, r, r, version=0x0302)
    with pytest.raises(Unsupported, match="with version 0x0304"):
        Tls12HandshakeDecryptor(0xC009, ms, r, r, version=0x0304)
    with pytest.raises(Malformed, match="master secret of 47 bytes"):
        Tls12HandshakeDecryptor(0xC02B, ms[:47], r, r)
    with pytest.raises(Malformed, match="randoms are 32 bytes"):
        Tls12HandshakeDecryptor(0xC02B, ms, r[:31], r)


# ------------------------------------------------------------------ fuzz


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(TLS12_SUITES)),
    st.booleans(),
    st.integers(20, 24),
    st.binary(max_size=150),
)
def test_fuzz_records_after_ccs(suite: int, etm: bool, ct: int, payload: bytes) -> None:
    s = TLS12_SUITES[suite]
    version = 0x0303 if s.tls12_only else 0x0301
    dec = Tls12HandshakeDecryptor(
        suite, bytes(48), bytes(32), bytes(32), version=version, encrypt_then_mac=etm
    )
    assert dec.feed_record(20, b"\x14\x03\x03\x00\x01", b"\x01") == []
    header = bytes((ct, 3, 3)) + len(payload).to_bytes(2, "big")
    for event in dec.feed_record(ct, header, payload):
        assert isinstance(event, HandshakeMessage | AlertRecord | StreamError)
        if isinstance(event, StreamError):
            assert isinstance(event.error, DissectError)


def test_no_key_material_in_repr() -> None:
    make, _ = setup("npn_tls12_c02b_gcm")
    dec = make()
    text = repr(dec)
    assert (
        text
        == "Tls12HandshakeDecryptor(TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, version=0x0303, records=0, done=False, error=False)"
    )


# ------------------------------------------------------------------ hand-built records

MS, CR, SR = bytes(range(48)), b"\x01" * 32, b"\x02" * 32


def gcm_record(ct: int, content: bytes, seq: int = 0) -> tuple[bytes, bytes]:
    """A client record under 0xc02b (RFC 5288): hand-built bytes for malformed input."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from alpnsniff.keys.tls12 import key_block

    block = key_block(TLS12_SUITES[0xC02B], 0x0303, MS, CR, SR)
    key, salt = block[0:16], block[32:36]
    explicit = seq.to_bytes(8, "big")
    aad = seq.to_bytes(8, "big") + bytes((ct, 3, 3)) + len(content).to_bytes(2, "big")
    payload = explicit + AESGCM(key).encrypt(salt + explicit, content, aad)
    return bytes((ct, 3, 3)) + len(payload).to_bytes(2, "big"), payload


def cbc_record(ct: int, content: bytes, pad: int, mac_len: int = 20) -> tuple[bytes, bytes]:
    """A client record under 0xc009, MAC-then-encrypt, explicit IV, chosen padding."""
    import hmac

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from alpnsniff.keys.tls12 import key_block

    block = key_block(TLS12_SUITES[0xC009], 0x0303, MS, CR, SR)
    mac_key, key = block[0:20], block[40:56]
    mac = hmac.digest(
        mac_key, bytes(8) + bytes((ct, 3, 3)) + len(content).to_bytes(2, "big") + content, "sha1"
    )
    plain = content + mac[:mac_len] + bytes([pad] * (pad + 1))
    iv = bytes(16)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    payload = iv + enc.update(plain) + enc.finalize()
    return bytes((ct, 3, 3)) + len(payload).to_bytes(2, "big"), payload


def after_ccs(suite: int) -> Tls12HandshakeDecryptor:
    dec = Tls12HandshakeDecryptor(suite, MS, CR, SR)
    assert dec.feed_record(20, b"\x14\x03\x03\x00\x01", b"\x01") == []
    return dec


def test_built_gcm_records() -> None:
    dec = after_ccs(0xC02B)
    assert dec.feed_record(21, *gcm_record(21, b"\x01\x00")) == [AlertRecord(1, 0)]
    npn = b"\x43\x00\x00\x20\x02h2\x1c" + bytes(28)
    (msg,) = dec.feed_record(22, *gcm_record(22, npn, seq=1))
    assert isinstance(msg, HandshakeMessage) and parse_next_protocol(msg.body) == b"h2"
    for ct, content, error in [
        (22, b"", "record 0: empty handshake record"),
        (23, b"GET /", "record 0: type 23 before Finished"),
        (21, b"\x02", "record 0: alert of 1 bytes"),
    ]:
        dec = after_ccs(0xC02B)
        (event,) = dec.feed_record(ct, *gcm_record(ct, content))
        assert isinstance(event, StreamError) and str(event.error) == error
        assert dec.feed_record(ct, *gcm_record(ct, content, seq=1)) == []  # stopped


def test_built_cbc_records() -> None:
    finished = b"\x14\x00\x00\x0c" + bytes(12)  # 16 + 20 (MAC) + 12 (padding) = 3 blocks
    (msg,) = after_ccs(0xC009).feed_record(22, *cbc_record(22, finished, pad=11))
    assert msg == HandshakeMessage(20, bytes(12), 0x0303)
    # padding that swallows the MAC: the record is shorter than its MAC
    (event,) = after_ccs(0xC009).feed_record(22, *cbc_record(22, b"", pad=14, mac_len=1))
    assert isinstance(event, StreamError)
    assert str(event.error).startswith(
        "record 0: TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA CBC record shorter than its MAC"
    )
