"""RFC 9001 Appendix A (QUIC v1) and RFC 9369 Appendix A (QUIC v2), every printed value.

A.1 labels and keys, A.2 client Initial (sample, mask, header, payload), A.3 server
Initial, A.4 Retry integrity tag. A.5 (ChaCha20 short header) is out of scope: Initial
packets always use AES-128-GCM.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import quic_rfc_vectors as v

from alpnsniff.quic.frames import parse_initial_frames
from alpnsniff.quic.initial import (
    PN_MAX_LENGTH,
    SAMPLE_LENGTH,
    hkdf_label,
    initial_keys,
    initial_secrets,
    keys_from_secret,
    open_initial,
    remove_header_protection,
    retry_integrity_tag,
    verify_retry,
)
from alpnsniff.quic.packets import LongHeaderPacket, RetryPacket, split_datagram
from alpnsniff.quic.versions import QUIC_V1, QUIC_V2, LongPacketType


@dataclass(frozen=True)
class Vectors:
    version: int
    label_key: bytes
    label_iv: bytes
    label_hp: bytes
    initial_secret: bytes
    client: tuple[bytes, bytes, bytes, bytes]  # secret, key, iv, hp
    server: tuple[bytes, bytes, bytes, bytes]
    client_header: bytes
    client_sample: bytes
    client_mask: bytes
    client_protected_header: bytes
    client_packet: bytes
    server_header: bytes
    server_sample: bytes
    server_mask: bytes
    server_protected_header: bytes
    server_packet: bytes
    retry: bytes


V1 = Vectors(
    QUIC_V1,
    v.V1_LABEL_KEY,
    v.V1_LABEL_IV,
    v.V1_LABEL_HP,
    v.V1_INITIAL_SECRET,
    (v.V1_CLIENT_SECRET, v.V1_CLIENT_KEY, v.V1_CLIENT_IV, v.V1_CLIENT_HP),
    (v.V1_SERVER_SECRET, v.V1_SERVER_KEY, v.V1_SERVER_IV, v.V1_SERVER_HP),
    v.V1_CLIENT_HEADER,
    v.V1_CLIENT_SAMPLE,
    v.V1_CLIENT_MASK,
    v.V1_CLIENT_PROTECTED_HEADER,
    v.V1_CLIENT_PACKET,
    v.V1_SERVER_HEADER,
    v.V1_SERVER_SAMPLE,
    v.V1_SERVER_MASK,
    v.V1_SERVER_PROTECTED_HEADER,
    v.V1_SERVER_PACKET,
    v.V1_RETRY,
)
V2 = Vectors(
    QUIC_V2,
    v.V2_LABEL_KEY,
    v.V2_LABEL_IV,
    v.V2_LABEL_HP,
    v.V2_INITIAL_SECRET,
    (v.V2_CLIENT_SECRET, v.V2_CLIENT_KEY, v.V2_CLIENT_IV, v.V2_CLIENT_HP),
    (v.V2_SERVER_SECRET, v.V2_SERVER_KEY, v.V2_SERVER_IV, v.V2_SERVER_HP),
    v.V2_CLIENT_HEADER,
    v.V2_CLIENT_SAMPLE,
    v.V2_CLIENT_MASK,
    v.V2_CLIENT_PROTECTED_HEADER,
    v.V2_CLIENT_PACKET,
    v.V2_SERVER_HEADER,
    v.V2_SERVER_SAMPLE,
    v.V2_SERVER_MASK,
    v.V2_SERVER_PROTECTED_HEADER,
    v.V2_SERVER_PACKET,
    v.V2_RETRY,
)
BOTH = pytest.mark.parametrize("vec", [V1, V2], ids=["rfc9001", "rfc9369"])


def test_a1_client_and_server_in_labels() -> None:
    assert hkdf_label(b"client in", 32) == v.V1_LABEL_CLIENT_IN
    assert hkdf_label(b"server in", 32) == v.V1_LABEL_SERVER_IN


@BOTH
def test_a1_key_labels(vec: Vectors) -> None:
    prefix = b"quic" if vec.version == QUIC_V1 else b"quicv2"
    assert hkdf_label(prefix + b" key", 16) == vec.label_key
    assert hkdf_label(prefix + b" iv", 12) == vec.label_iv
    assert hkdf_label(prefix + b" hp", 16) == vec.label_hp


@BOTH
def test_a1_secrets(vec: Vectors) -> None:
    initial, client, server = initial_secrets(vec.version, v.DCID)
    assert initial == vec.initial_secret
    assert client == vec.client[0]
    assert server == vec.server[0]


@BOTH
@pytest.mark.parametrize("server", [False, True], ids=["client", "server"])
def test_a1_keys(vec: Vectors, server: bool) -> None:
    secret, key, iv, hp = vec.server if server else vec.client
    keys = initial_keys(vec.version, v.DCID, server=server)
    assert (keys.secret, keys.key, keys.iv, keys.hp) == (secret, key, iv, hp)
    again = keys_from_secret(vec.version, secret)
    assert (again.key, again.iv, again.hp) == (key, iv, hp)


def _only_packet(datagram: bytes) -> LongHeaderPacket:
    packets = split_datagram(datagram)
    assert len(packets) == 1
    packet = packets[0]
    assert isinstance(packet, LongHeaderPacket)
    return packet


@BOTH
def test_a2_client_initial(vec: Vectors) -> None:
    packet = _only_packet(vec.client_packet)
    assert packet.packet_type is LongPacketType.INITIAL
    assert (packet.version, packet.dcid, packet.scid, packet.token) == (
        vec.version,
        v.DCID,
        b"",
        b"",
    )
    assert len(packet.data) == 1200
    # Header fields up to the Length are in clear: the Length says 1182 (0x449e).
    assert packet.pn_offset == 18
    assert packet.data[: packet.pn_offset] == vec.client_protected_header[:18]
    assert packet.data[: len(vec.client_protected_header)] == vec.client_protected_header

    sample_at = packet.pn_offset + PN_MAX_LENGTH
    sample = packet.data[sample_at : sample_at + SAMPLE_LENGTH]
    assert sample == vec.client_sample
    keys = initial_keys(vec.version, v.DCID, server=False)
    assert keys.mask(sample) == vec.client_mask

    header, truncated_pn, pn_length = remove_header_protection(packet, keys)
    assert header == vec.client_header
    assert (truncated_pn, pn_length) == (2, 4)

    pn, plaintext = open_initial(packet, keys, largest_pn=None)
    assert pn == 2
    assert len(plaintext) == v.CLIENT_PAYLOAD_LENGTH
    assert plaintext == v.CLIENT_CRYPTO_FRAME + bytes(v.CLIENT_PAYLOAD_LENGTH - 245)

    frames = parse_initial_frames(plaintext)
    assert [(f.offset, len(f.data)) for f in frames.crypto] == [(0, 241)]
    assert frames.crypto[0].data == v.CLIENT_CRYPTO_FRAME[4:]
    assert frames.padding_bytes == v.CLIENT_PAYLOAD_LENGTH - 245


@BOTH
def test_a3_server_initial(vec: Vectors) -> None:
    packet = _only_packet(vec.server_packet)
    assert packet.packet_type is LongPacketType.INITIAL
    assert (packet.dcid, packet.scid) == (b"", bytes.fromhex("f067a5502a4262b5"))
    sample_at = packet.pn_offset + PN_MAX_LENGTH
    sample = packet.data[sample_at : sample_at + SAMPLE_LENGTH]
    assert sample == vec.server_sample
    keys = initial_keys(vec.version, v.DCID, server=True)
    assert keys.mask(sample) == vec.server_mask
    assert packet.data[: len(vec.server_protected_header)] == vec.server_protected_header

    header, truncated_pn, pn_length = remove_header_protection(packet, keys)
    assert header == vec.server_header
    assert (truncated_pn, pn_length) == (1, 2)

    pn, plaintext = open_initial(packet, keys, largest_pn=None)
    assert (pn, plaintext) == (1, v.SERVER_PAYLOAD)
    frames = parse_initial_frames(plaintext)
    assert frames.ack_count == 1
    assert [(f.offset, len(f.data)) for f in frames.crypto] == [(0, 90)]
    assert frames.crypto[0].data[:4] == bytes.fromhex("02000056")  # ServerHello, 86 bytes


@BOTH
def test_a2_client_keys_do_not_open_the_server_packet(vec: Vectors) -> None:
    from alpnsniff.quic.initial import DecryptError

    packet = _only_packet(vec.server_packet)
    with pytest.raises(DecryptError):
        open_initial(packet, initial_keys(vec.version, v.DCID, server=False), largest_pn=None)


@BOTH
def test_a4_retry(vec: Vectors) -> None:
    packets = split_datagram(vec.retry)
    assert len(packets) == 1
    retry = packets[0]
    assert isinstance(retry, RetryPacket)
    assert retry.version == vec.version
    assert (retry.dcid, retry.scid) == (b"", bytes.fromhex("f067a5502a4262b5"))
    assert retry.token == b"token"
    assert retry.integrity_tag == vec.retry[-16:]
    assert retry_integrity_tag(retry, v.DCID) == vec.retry[-16:]
    assert verify_retry(retry, v.DCID) is True
    assert verify_retry(retry, bytes(8)) is False
