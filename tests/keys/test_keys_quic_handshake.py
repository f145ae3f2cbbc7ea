"""QUIC Handshake space: RFC 9001/9369 A.5, real captures against tshark, built packets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keyscap import (
    CAPTURES,
    DATA,
    REALCAP,
    Result,
    dsb_blocks,
    keylog_for,
    need,
    quic_ee,
    quic_server_datagrams,
    tshark_view,
)
from quic_hs_build import crypto_frame, packet, protect_handshake
from rfc_vectors import (
    CHACHA_PN,
    CHACHA_SAMPLE,
    CHACHA_SECRET,
    CHACHA_UNPROTECTED_HEADER,
    V1_CHACHA_HP,
    V1_CHACHA_IV,
    V1_CHACHA_KEY,
    V1_CHACHA_MASK,
    V1_CHACHA_NONCE,
    V1_CHACHA_PACKET,
    V2_CHACHA_IV,
    V2_CHACHA_MASK,
    V2_CHACHA_NONCE,
    V2_CHACHA_PACKET,
)

from alpnsniff.errors import DissectError, Malformed, Truncated, Unsupported
from alpnsniff.keys.aead import TLS13_SUITES, DecryptFailed
from alpnsniff.keys.keylog import KeyLog
from alpnsniff.keys.quic_handshake import QuicHandshakeDecryptor, handshake_packet_keys
from alpnsniff.quic.frames import ConnectionClose
from alpnsniff.quic.packets import LongHeaderPacket, split_datagram
from alpnsniff.quic.versions import QUIC_V2, LongPacketType
from alpnsniff.tls.events import HandshakeMessage
from alpnsniff.tls.messages import parse_encrypted_extensions

ALPN_FIELD = "tls.handshake.extensions_alpn_str"
SECRET = bytes(range(32))
EE_H3 = bytes.fromhex("0800000b0009001000050003026833")
FINISHED = b"\x14\x00\x00\x20" + bytes(32)


# ------------------------------------------------------------------ RFC 9001 / 9369 A.5


def test_rfc9001_a5_chacha20_keys_mask_and_payload() -> None:
    keys = handshake_packet_keys(TLS13_SUITES[0x1303], CHACHA_SECRET, b"quic")
    assert keys.traffic.key == V1_CHACHA_KEY
    assert keys.traffic.iv == V1_CHACHA_IV
    assert keys.traffic.nonce(CHACHA_PN) == V1_CHACHA_NONCE
    assert keys.mask(CHACHA_SAMPLE) == V1_CHACHA_MASK
    assert V1_CHACHA_PACKET[5:21] == CHACHA_SAMPLE
    first = V1_CHACHA_PACKET[0] ^ (V1_CHACHA_MASK[0] & 0x1F)  # short header: 5 bits
    pn_bytes = bytes(a ^ b for a, b in zip(V1_CHACHA_PACKET[1:4], V1_CHACHA_MASK[1:4], strict=True))
    assert bytes((first,)) + pn_bytes == CHACHA_UNPROTECTED_HEADER
    assert keys.traffic.open(CHACHA_PN, V1_CHACHA_PACKET[4:], CHACHA_UNPROTECTED_HEADER) == b"\x01"


def test_rfc9001_a5_hp_key() -> None:
    from alpnsniff.keys.aead import hkdf_expand_label

    assert hkdf_expand_label("sha256", CHACHA_SECRET, b"quic hp", 32) == V1_CHACHA_HP


def test_rfc9369_a5_chacha20_v2() -> None:
    keys = handshake_packet_keys(TLS13_SUITES[0x1303], CHACHA_SECRET, b"quicv2")
    assert keys.traffic.iv == V2_CHACHA_IV
    assert keys.traffic.nonce(CHACHA_PN) == V2_CHACHA_NONCE
    assert keys.mask(V2_CHACHA_PACKET[5:21]) == V2_CHACHA_MASK
    assert keys.traffic.open(CHACHA_PN, V2_CHACHA_PACKET[4:], CHACHA_UNPROTECTED_HEADER) == b"\x01"


# ------------------------------------------------------------------ real captures

AGREE = [
    REALCAP / "aioquic_h3_v1.pcap",
    REALCAP / "aioquic_h3_v2.pcap",
    REALCAP / "aioquic_custom_alpn_doq.pcap",
    REALCAP / "aioquic_h3_v1_bigCH_2initials.pcap",
    REALCAP / "aioquic_h3_v1_to_v2_compatible_vn.pcap",
    REALCAP / "chromium_aioquic_h3_lo.pcap",
    REALCAP / "chromium_aioquic_h3_quicv2_lo.pcap",
    REALCAP / "chromium_aioquic_h3_veth1500.pcap",
    CAPTURES / "aioquic_h3_v1.pcap",
    CAPTURES / "chromium_aioquic_h3_veth1500.pcap",
    DATA / "quic_v1_aes128gcm.pcap",
    DATA / "quic_v1_chacha20.pcap",
    DATA / "quic_v2_chacha20.pcap",
    DATA / "quic_v1_bigcert.pcap",
]


@pytest.mark.tshark
@pytest.mark.parametrize("path", AGREE, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_real_capture_ee_alpn_agrees_with_tshark(path: Path) -> None:
    need(path)
    ours, dec = quic_ee(path, keylog_for(path))
    assert ours and dec.done
    assert ours == tshark_view(path, path.with_suffix(".keys"), ALPN_FIELD, 8)
    assert not [k for k in dec.stats if k.startswith("packet_errors")]


@pytest.mark.tshark
@pytest.mark.parametrize("name", ["aioquic_h3_v1_retry", "aioquic_h3_v2_incompatible_vn_to_v1"])
def test_after_retry_or_version_negotiation_we_decrypt_where_tshark_4_0_cannot(name: str) -> None:
    path = need(REALCAP / f"{name}.pcap")
    ours, dec = quic_ee(path, keylog_for(path))
    assert ours == [Result(4, (b"h3",))] and dec.done
    # tshark 4.0.17 keeps the first attempt's state: no EncryptedExtensions at all
    assert tshark_view(path, path.with_suffix(".keys"), ALPN_FIELD, 8) == []


def test_doq_and_v2_values() -> None:
    path = need(REALCAP / "aioquic_custom_alpn_doq.pcap")
    assert quic_ee(path, keylog_for(path))[0] == [Result(2, (b"doq",))]
    path = need(REALCAP / "chromium_aioquic_h3_quicv2_lo.pcap")
    ours, dec = quic_ee(path, keylog_for(path))
    assert ours == [Result(5, (b"h3",))]
    # opened with the quicv2 labels of its own version, not the fallback
    assert dec.stats["packets"] == 1 and "opened_with_other_version_labels" not in dec.stats


def test_certificate_over_nine_handshake_packets() -> None:
    path = need(DATA / "quic_v1_bigcert.pcap")
    ours, dec = quic_ee(path, keylog_for(path))
    assert ours == [Result(2, (b"h3",))]
    assert dec.stats["packets"] == 9 and dec.stats["messages"] == 4
    # aioquic numbers across spaces: Initial 0, then Handshake 1-9 (tshark shows the same)
    assert dec.largest_pn == 9 and dec.done


def test_dsb_file() -> None:
    path = need(REALCAP / "chromium_aioquic_h3_veth1500_dsb.pcapng")
    log = KeyLog()
    for stype, data in dsb_blocks(path):
        log.add_dsb(stype, data)
    assert quic_ee(path, log)[0] == [Result(5, (b"h3",))]


def test_wrong_secret_raises_per_packet_and_is_counted_per_datagram() -> None:
    path = need(REALCAP / "aioquic_h3_v1.pcap")
    _ch, sh, grams = quic_server_datagrams(path)
    dec = QuicHandshakeDecryptor(sh.version, 0x1302, bytes(48))
    hs = [
        p
        for d in grams
        for p in split_datagram(d.payload)
        if isinstance(p, LongHeaderPacket) and p.packet_type is LongPacketType.HANDSHAKE
    ]
    with pytest.raises(DecryptFailed) as info:
        dec.feed_packet(hs[0])
    assert info.value.reason == "decrypt-failed"
    assert str(info.value).endswith(
        "TLS_AES_256_GCM_SHA384 tag does not verify (wrong key log entry, or damaged bytes) "
        f"at quic.handshake+{hs[0].offset}"
    )
    assert dec.feed_datagram(grams[0].payload) == []
    assert dec.stats["packet_errors_decrypt-failed"] == 1
    assert isinstance(dec.last_error, DecryptFailed)
    assert dec.largest_pn is None


# ------------------------------------------------------------------ built packets


def dec_v1(suite: int = 0x1301, **kw: int) -> QuicHandshakeDecryptor:
    return QuicHandshakeDecryptor(1, suite, SECRET if suite != 0x1302 else bytes(range(48)), **kw)


@pytest.mark.parametrize("suite", [0x1301, 0x1302, 0x1303])
@pytest.mark.parametrize("version", [1, QUIC_V2])
def test_built_flight_in_two_packets_out_of_order(suite: int, version: int) -> None:
    secret = SECRET if suite != 0x1302 else bytes(range(48))
    stream = EE_H3 + FINISHED
    p0 = protect_handshake(secret, 0, crypto_frame(0, stream[:10]), suite=suite, version=version)
    p1 = protect_handshake(secret, 1, crypto_frame(10, stream[10:]), suite=suite, version=version)
    dec = QuicHandshakeDecryptor(version, suite, secret)
    assert dec.feed_packet(packet(p1)) == []
    events = dec.feed_packet(packet(p0))
    assert events == [HandshakeMessage(8, EE_H3[4:], 0), HandshakeMessage(20, bytes(32), 0)]
    ee = events[0]
    assert isinstance(ee, HandshakeMessage)
    assert parse_encrypted_extensions(ee.body).alpn == (b"h3",)
    assert dec.done and dec.largest_pn == 1


def test_v2_packet_under_v1_labels_is_opened_by_the_fallback() -> None:
    # A decryptor made for v1 meets v2 packets (compatible version negotiation). They open
    # with their own version's labels; a peer that kept its first version's labels (aioquic
    # 1.7 does so for Initials) is opened by the fallback, and counted.
    own_labels = protect_handshake(SECRET, 0, crypto_frame(0, EE_H3), version=QUIC_V2)
    dec = dec_v1()
    assert dec.feed_packet(packet(own_labels)) == [HandshakeMessage(8, EE_H3[4:], 0)]
    assert "opened_with_other_version_labels" not in dec.stats
    kept = protect_handshake(SECRET, 0, crypto_frame(0, EE_H3), version=QUIC_V2, labels=b"quic")
    dec = dec_v1()
    assert dec.feed_packet(packet(kept)) == [HandshakeMessage(8, EE_H3[4:], 0)]
    assert dec.stats["opened_with_other_version_labels"] == 1
    garbage = bytearray(kept)
    garbage[-1] ^= 1
    with pytest.raises(
        DecryptFailed, match=r"^Handshake packet: TLS_AES_128_GCM_SHA256 tag does not verify"
    ):
        dec_v1().feed_packet(packet(bytes(garbage)))


def test_packet_numbers_recovered_through_short_encodings() -> None:
    dec = dec_v1()
    for pn in range(0, 600):
        length = 1 + pn % 4
        dec.feed_packet(packet(protect_handshake(SECRET, pn, b"\x01", pn_length=length)))
        assert dec.largest_pn == pn
    assert dec.stats["packets"] == 600


def test_coalesced_datagram_and_other_packet_types() -> None:
    hs = protect_handshake(SECRET, 0, crypto_frame(0, EE_H3))
    initial = bytes.fromhex("c0 00000001 00 00 00 05") + bytes(5)  # an Initial: not ours
    dec = dec_v1()
    events = dec.feed_datagram(initial + hs + protect_handshake(SECRET, 1, b"\x01") + bytes(30))
    assert events == [HandshakeMessage(8, EE_H3[4:], 0)]
    assert dec.stats["packets_not_handshake"] == 1 and dec.stats["packets"] == 2
    assert dec.feed_packet(packet(initial)) == []
    assert dec.stats["packets_not_handshake"] == 2


def test_connection_close_is_reported() -> None:
    close = bytes.fromhex("1c 4178 06 03") + b"bye"  # 0x178: TLS alert 120
    events = dec_v1().feed_packet(packet(protect_handshake(SECRET, 0, close)))
    assert events == [
        ConnectionClose(error_code=0x178, frame_type=6, reason=b"bye", application=False)
    ]


def test_frames_a_handshake_packet_may_not_carry() -> None:
    stream_frame = b"\x08\x00\x03abc"
    with pytest.raises(Malformed) as info:
        dec_v1().feed_packet(packet(protect_handshake(SECRET, 7, stream_frame)))
    assert str(info.value) == (
        "Handshake packet 7: frame type 0x8 not allowed in an Initial packet at quic+0"
    )


def test_too_short_for_the_sample() -> None:
    good = protect_handshake(SECRET, 0, b"\x01")
    cut = bytearray(good[:-4])
    cut[good.index(b"\x22" * 8) + 8] -= 4  # shrink the Length field so the packet parses
    with pytest.raises(Truncated, match="too short for the header protection sample"):
        dec_v1().feed_packet(packet(bytes(cut)))


def test_reserved_bits_are_counted() -> None:
    dec = dec_v1()
    dec.feed_packet(packet(protect_handshake(SECRET, 0, b"\x01", reserved=2)))
    assert dec.stats["reserved_bits_set"] == 1


def test_after_finished_packets_are_counted() -> None:
    dec = dec_v1()
    dec.feed_packet(packet(protect_handshake(SECRET, 0, crypto_frame(0, FINISHED))))
    assert dec.done
    assert dec.feed_packet(packet(protect_handshake(SECRET, 1, b"\x01"))) == []
    assert dec.stats["packets_after_finished"] == 1


def test_crypto_stream_limit() -> None:
    dec = dec_v1(limit=100)
    big = b"\x0b\x00\x01\x00" + bytes(256)
    events = dec.feed_packet(packet(protect_handshake(SECRET, 0, crypto_frame(0, EE_H3 + big))))
    assert events == [HandshakeMessage(8, EE_H3[4:], 0)]
    assert dec.stats["crypto_error_quic-crypto-too-large"] == 1


def test_a_damaged_packet_leaves_the_decryptor_usable() -> None:
    dec = dec_v1()
    bad = bytearray(protect_handshake(SECRET, 0, crypto_frame(0, EE_H3)))
    bad[-1] ^= 1
    with pytest.raises(DecryptFailed):
        dec.feed_packet(packet(bytes(bad)))
    events = dec.feed_packet(packet(protect_handshake(SECRET, 0, crypto_frame(0, EE_H3))))
    assert events == [HandshakeMessage(8, EE_H3[4:], 0)]


@pytest.mark.parametrize(
    ("args", "exc", "message"),
    [
        ((1, 0x1305, SECRET), Unsupported, "TLS_AES_128_CCM_8_SHA256 is not usable with QUIC"),
        ((1, 0x00FF, SECRET), Unsupported, "TLS 1.3 cipher suite 0x00ff is not one"),
        ((0x12345678, 0x1301, SECRET), Unsupported, "QUIC version 0x12345678"),
        ((1, 0x1302, SECRET), Malformed, "of 32 bytes, TLS_AES_256_GCM_SHA384 needs 48"),
    ],
)
def test_construction_errors(args: tuple[int, int, bytes], exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        QuicHandshakeDecryptor(*args)


# ------------------------------------------------------------------ fuzz


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.integers(0, 255))
def test_fuzz_one_flipped_byte(pos: int, bit: int) -> None:
    data = bytearray(protect_handshake(SECRET, 0, crypto_frame(0, EE_H3 + FINISHED)))
    data[pos % len(data)] ^= bit or 1
    dec = dec_v1()
    try:
        dec.feed_datagram(bytes(data))
        p = split_datagram(bytes(data))[0]
        if isinstance(p, LongHeaderPacket):
            dec.feed_packet(p)
    except DissectError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_sealed_payloads(payload: bytes) -> None:
    # past the AEAD: any frames give events or a DissectError, nothing else
    dec = dec_v1()
    try:
        events = dec.feed_packet(packet(protect_handshake(SECRET, 0, payload)))
    except DissectError:
        return
    assert all(isinstance(e, HandshakeMessage | ConnectionClose) for e in events)


def test_no_key_material_in_repr_or_errors() -> None:
    keys = handshake_packet_keys(TLS13_SUITES[0x1303], CHACHA_SECRET, b"quic")
    dec = QuicHandshakeDecryptor(1, 0x1303, CHACHA_SECRET)
    shown = [repr(keys), str(keys), repr(dec)]
    try:
        dec.feed_packet(packet(protect_handshake(SECRET, 0, b"\x01", suite=0x1303)))
    except DecryptFailed as err:
        shown.append(str(err))
    assert len(shown) == 4
    for text in shown:
        for secret in (CHACHA_SECRET, V1_CHACHA_KEY, V1_CHACHA_HP, V1_CHACHA_IV):
            assert secret.hex()[:12] not in text
    assert repr(keys) == "HandshakePacketKeys(TLS_CHACHA20_POLY1305_SHA256, keys hidden)"
