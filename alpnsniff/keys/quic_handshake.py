"""QUIC Handshake packet space: open the server's Handshake packets, read its CRYPTO stream.

Sans-I/O. With the server's ``SERVER_HANDSHAKE_TRAFFIC_SECRET`` from a key log,
:class:`QuicHandshakeDecryptor` derives the packet protection keys (RFC 9001 §5.1: labels
"quic key", "quic iv", "quic hp"; RFC 9369 §3.3.2: "quicv2 …" for QUIC v2) with the hash
of the negotiated TLS 1.3 suite, removes header protection (RFC 9001 §5.4.3 AES-ECB for
the AES suites, §5.4.4 ChaCha20 for TLS_CHACHA20_POLY1305_SHA256), recovers packet
numbers (RFC 9000 Appendix A.3), opens the AEAD, and reassembles the CRYPTO frames by
offset into TLS handshake messages: EncryptedExtensions first, then the certificate
messages and Finished.

Reused from :mod:`alpnsniff.quic`: the packet split (``split_datagram``), packet number
recovery (``decode_packet_number``), the frame parser (a Handshake packet may carry the same
frame types as an Initial, RFC 9000 §12.4 Table 3) and ``CryptoReassembler``. Header
protection is written here: ``quic.initial.remove_header_protection`` is typed to the
AES-128 Initial keys.

Errors. :meth:`QuicHandshakeDecryptor.feed_packet` raises :class:`DissectError` for a
packet it cannot open or parse (``decrypt-failed`` for a tag that does not verify); such a
packet contributes nothing and the decryptor stays usable for the next one.
:meth:`~QuicHandshakeDecryptor.feed_datagram` counts those errors instead of raising.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from alpnsniff.errors import DissectError, Truncated, Unsupported
from alpnsniff.keys.aead import (
    DecryptFailed,
    Tls13Suite,
    TrafficKeys,
    check_secret,
    hkdf_expand_label,
    tls13_suite,
    traffic_keys,
)
from alpnsniff.quic.crypto_stream import CryptoReassembler
from alpnsniff.quic.frames import ConnectionClose, parse_google_initial_frames, parse_initial_frames
from alpnsniff.quic.initial import decode_packet_number
from alpnsniff.quic.packets import LongHeaderPacket, split_datagram
from alpnsniff.quic.versions import LongPacketType, version_info
from alpnsniff.tls.events import HandshakeMessage

__all__ = [
    "MAX_HANDSHAKE_CRYPTO_BYTES",
    "HandshakePacketKeys",
    "QuicHandshakeDecryptor",
    "QuicHandshakeEvent",
    "handshake_packet_keys",
]

LAYER: Final = "quic.handshake"

#: Bytes of Handshake-space CRYPTO stream kept. The stream opens with EncryptedExtensions
#: (tens of bytes), then Certificate: real chains are 2-8 KiB, rarely over 16 KiB. Past
#: 64 KiB the messages after EncryptedExtensions are given up (counted), never buffered.
MAX_HANDSHAKE_CRYPTO_BYTES: Final = 64 * 1024
#: RFC 9001 §5.4.2: the header protection sample is 16 bytes, taken 4 bytes after the
#: start of the Packet Number field (its longest encoding).
SAMPLE_LENGTH: Final = 16
PN_MAX_LENGTH: Final = 4
HT_FINISHED: Final = 20
#: Key sets cached (one per label prefix: "quic" and "quicv2" are all there are).
MAX_KEY_SETS: Final = 2

QuicHandshakeEvent = HandshakeMessage | ConnectionClose

_MASK_ZEROS: Final = bytes(5)


class HandshakePacketKeys:
    """AEAD key and iv plus the header protection key of one direction and label prefix.

    Its ``repr`` names the suite only: the keys are secrets.
    """

    __slots__ = ("_chacha_hp", "_hp_ecb", "traffic")

    def __init__(self, traffic: TrafficKeys, hp: bytes) -> None:
        self.traffic = traffic
        self._hp_ecb: CipherContext | None = None
        self._chacha_hp: bytes | None = None
        if traffic.suite.header_protection == "chacha20":
            self._chacha_hp = hp
        else:
            # ECB keeps no state between blocks: one encryptor serves every sample.
            self._hp_ecb = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()

    def __repr__(self) -> str:
        return f"HandshakePacketKeys({self.traffic.suite.name}, keys hidden)"

    def __str__(self) -> str:
        return self.__repr__()

    def mask(self, sample: bytes) -> bytes:
        """The 5-byte header protection mask for a 16-byte sample (RFC 9001 §5.4.3-5.4.4)."""
        if self._hp_ecb is not None:
            return self._hp_ecb.update(sample)[:5]
        assert self._chacha_hp is not None
        # RFC 9001 §5.4.4: counter = sample[0:4] (little-endian), nonce = sample[4:16];
        # cryptography's ChaCha20 takes exactly that 16-byte layout as its "nonce".
        chacha = Cipher(algorithms.ChaCha20(self._chacha_hp, sample), mode=None).encryptor()
        return chacha.update(_MASK_ZEROS)


def handshake_packet_keys(
    suite: Tls13Suite, secret: bytes, label_prefix: bytes
) -> HandshakePacketKeys:
    """RFC 9001 §5.1: key, iv and hp from a traffic secret with the version's labels."""
    traffic = traffic_keys(
        suite, secret, key_label=label_prefix + b" key", iv_label=label_prefix + b" iv"
    )
    hp = hkdf_expand_label(suite.hash_name, secret, label_prefix + b" hp", suite.key_length)
    return HandshakePacketKeys(traffic, hp)


class QuicHandshakeDecryptor:
    """The server's Handshake packet space of one QUIC connection.

    ``version`` is the negotiated QUIC version, ``cipher_suite`` the ServerHello's, and
    ``server_hs_secret`` the key log's ``SERVER_HANDSHAKE_TRAFFIC_SECRET`` (construction
    raises :class:`Unsupported` for an unknown version or a suite QUIC cannot use and
    :class:`~alpnsniff.errors.Malformed` for a secret of the wrong length). ``stats``
    counts ``packets`` opened, ``packets_not_handshake``, ``packets_after_finished``,
    ``reserved_bits_set``, ``messages``, ``crypto_error_*`` and, from
    :meth:`feed_datagram`, ``packet_errors_<reason>``.
    """

    __slots__ = (
        "_keys",
        "_prefix",
        "_read",
        "_secret",
        "_stream",
        "_suite",
        "done",
        "largest_pn",
        "last_error",
        "stats",
    )

    def __init__(
        self,
        version: int,
        cipher_suite: int,
        server_hs_secret: bytes,
        *,
        limit: int = MAX_HANDSHAKE_CRYPTO_BYTES,
    ) -> None:
        suite = tls13_suite(cipher_suite, layer=LAYER)
        if not suite.quic_ok:
            raise Unsupported(f"{suite.name} is not usable with QUIC (RFC 9001 §5.3)", layer=LAYER)
        check_secret(suite, server_hs_secret, "server handshake traffic secret", layer=LAYER)
        info = version_info(version)
        if info is None:
            raise Unsupported(f"QUIC version 0x{version:08x}", layer=LAYER)
        self._suite = suite
        self._secret = server_hs_secret
        self._prefix = info.label_prefix
        self._keys: dict[bytes, HandshakePacketKeys] = {}
        self._stream = CryptoReassembler(limit)
        self._read = 0  # stream offset of the next handshake message
        #: The largest packet number opened so far (None before the first).
        self.largest_pn: int | None = None
        #: True once the server's Finished was handed out.
        self.done = False
        #: The last error :meth:`feed_datagram` counted (None if none).
        self.last_error: DissectError | None = None
        self.stats: Counter[str] = Counter()

    @property
    def buffered(self) -> int:
        """Bytes of the Handshake-space CRYPTO stream held (bounded by its limit)."""
        return self._stream.buffered

    def __repr__(self) -> str:
        return (
            f"QuicHandshakeDecryptor({self._suite.name}, packets={self.stats['packets']}, "
            f"done={self.done})"
        )

    def _keys_for(self, prefix: bytes) -> HandshakePacketKeys:
        keys = self._keys.get(prefix)
        if keys is None:
            if len(self._keys) >= MAX_KEY_SETS:
                self._keys.clear()
            keys = self._keys[prefix] = handshake_packet_keys(self._suite, self._secret, prefix)
        return keys

    def feed_datagram(self, datagram: bytes) -> list[QuicHandshakeEvent]:
        """Every Handshake packet of one server datagram; errors are counted, not raised."""
        try:
            packets = split_datagram(datagram)
        except DissectError as err:
            self._count_error(err)
            return []
        events: list[QuicHandshakeEvent] = []
        for packet in packets:
            if not isinstance(packet, LongHeaderPacket):
                continue
            if packet.packet_type is not LongPacketType.HANDSHAKE:
                self.stats["packets_not_handshake"] += 1
                continue
            try:
                events.extend(self.feed_packet(packet))
            except DissectError as err:
                self._count_error(err)
        return events

    def _count_error(self, err: DissectError) -> None:
        self.stats[f"packet_errors_{err.reason}"] += 1
        self.last_error = err

    def feed_packet(self, packet: LongHeaderPacket) -> list[QuicHandshakeEvent]:
        """Open one Handshake packet; return the messages (and closes) it completed."""
        if packet.packet_type is not LongPacketType.HANDSHAKE:
            self.stats["packets_not_handshake"] += 1
            return []
        if self.done:
            self.stats["packets_after_finished"] += 1
            return []
        info = version_info(packet.version)
        if info is None:
            raise Unsupported(f"QUIC version 0x{packet.version:08x}", layer=LAYER)
        pn, plaintext = self._open(packet, info.label_prefix)
        try:
            if info.google_frames:
                frames = parse_google_initial_frames(plaintext)
            else:
                frames = parse_initial_frames(plaintext)
        except DissectError as err:
            raise type(err)(f"Handshake packet {pn}: {err}", layer=LAYER) from err
        if self.largest_pn is None or pn > self.largest_pn:
            self.largest_pn = pn
        self.stats["packets"] += 1
        events: list[QuicHandshakeEvent] = []
        if frames.close is not None:
            events.append(frames.close)
        if frames.crypto:
            stream = self._stream
            for frame in frames.crypto:
                stream.add(frame.offset, frame.data)
            while (message := stream.handshake_message(self._read)) is not None:
                self._read += len(message)
                events.append(HandshakeMessage(message[0], message[4:], 0))
                self.stats["messages"] += 1
                if message[0] == HT_FINISHED:
                    self.done = True
                    break
            if stream.error is not None and not self.stats[f"crypto_error_{stream.error}"]:
                self.stats[f"crypto_error_{stream.error}"] += 1
        return events

    def _open(self, packet: LongHeaderPacket, prefix: bytes) -> tuple[int, bytes]:
        """Open with the packet's version labels, then with the constructor's version's.

        aioquic 1.7 keeps its first version's Initial keys after compatible version
        negotiation (see quic.connection); the second try covers the same habit here.
        """
        try:
            return self._open_with(packet, self._keys_for(prefix))
        except DecryptFailed as err:
            if prefix == self._prefix:
                raise
            failure = err
        try:
            result = self._open_with(packet, self._keys_for(self._prefix))
        except DecryptFailed:
            raise failure from None
        self.stats["opened_with_other_version_labels"] += 1
        return result

    def _open_with(self, packet: LongHeaderPacket, keys: HandshakePacketKeys) -> tuple[int, bytes]:
        data = packet.data
        pn_offset = packet.pn_offset
        sample_start = pn_offset + PN_MAX_LENGTH
        if sample_start + SAMPLE_LENGTH > len(data):
            raise Truncated(
                f"Handshake packet of {len(data)} bytes: too short for the header protection "
                "sample",
                layer=LAYER,
                offset=packet.offset,
            )
        mask = keys.mask(data[sample_start : sample_start + SAMPLE_LENGTH])
        first = data[0] ^ (mask[0] & 0x0F)  # long header: the low 4 bits are protected
        pn_length = (first & 0x03) + 1
        truncated = int.from_bytes(data[pn_offset : pn_offset + pn_length], "big") ^ int.from_bytes(
            mask[1 : 1 + pn_length], "big"
        )
        header = bytes((first,)) + data[1:pn_offset] + truncated.to_bytes(pn_length, "big")
        pn = decode_packet_number(truncated, pn_length * 8, self.largest_pn)
        try:
            plaintext = keys.traffic.open(pn, data[pn_offset + pn_length :], header)
        except InvalidTag:
            raise DecryptFailed(
                # no packet number here: with wrong keys the one unmasked is noise
                f"Handshake packet: {keys.traffic.suite.name} tag does not verify "
                "(wrong key log entry, or damaged bytes)",
                layer=LAYER,
                offset=packet.offset,
            ) from None
        if first & 0x0C:
            # RFC 9000 §17.2: the reserved bits must be 0 (a PROTOCOL_VIOLATION): counted.
            self.stats["reserved_bits_set"] += 1
        return pn, plaintext
