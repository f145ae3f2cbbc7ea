"""TLS 1.3 over TCP: decrypt the server's handshake flight, for its EncryptedExtensions.

Sans-I/O. After the ServerHello (not a HelloRetryRequest) the server protects every
handshake record with keys from its ``SERVER_HANDSHAKE_TRAFFIC_SECRET`` (RFC 8446 §7.3):
:class:`Tls13ServerFlightDecryptor` takes those records one by one, in stream order,
opens them (RFC 8446 §5.2-5.4: nonce = iv XOR sequence number, AAD = the record header,
zero padding and the inner content type stripped), reassembles handshake messages across
records and hands them out: EncryptedExtensions first, then the certificate messages and
Finished. The compatibility ChangeCipherSpec (RFC 8446 §D.4) is skipped: it is plaintext
and takes no sequence number. After the server's Finished the key changes; later records
are counted and ignored. The messages' bodies are read elsewhere: EncryptedExtensions
by :func:`alpnsniff.tls.messages.parse_encrypted_extensions`.

Errors. ``feed_record`` never raises for wire bytes: the first :class:`DissectError` (a tag
that does not verify is :class:`~alpnsniff.keys.aead.DecryptFailed`, reason
``decrypt-failed``) becomes a final :class:`StreamError` event after the messages the
same record completed, and the decryptor stops. Record sequence numbers cannot be
recovered past a record that did not open.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from cryptography.exceptions import InvalidTag

from alpnsniff.errors import DissectError, Malformed
from alpnsniff.keys.aead import (
    DecryptFailed,
    TrafficKeys,
    check_secret,
    tls13_suite,
    traffic_keys,
)
from alpnsniff.keys.messages import HandshakeAssembler, RecordDecryptor
from alpnsniff.tls.events import AlertRecord, HandshakeMessage, StreamError
from alpnsniff.tls.stream import MAX_HANDSHAKE_MESSAGE

__all__ = [
    "MAX_CIPHERTEXT_LENGTH",
    "MAX_PLAINTEXT_LENGTH",
    "Tls13Event",
    "Tls13ServerFlightDecryptor",
    "server_handshake_keys",
]

LAYER: Final = "tls13.decrypt"

#: RFC 8446 §5.2: TLSCiphertext.length MUST NOT exceed 2^14 + 256 (record_overflow).
MAX_CIPHERTEXT_LENGTH: Final = 2**14 + 256
#: RFC 8446 §5.4: TLSInnerPlaintext (content, type, padding) MUST NOT exceed 2^14 + 1.
MAX_PLAINTEXT_LENGTH: Final = 2**14 + 1
RECORD_HEADER_LENGTH: Final = 5

CT_CHANGE_CIPHER_SPEC: Final = 20
CT_ALERT: Final = 21
CT_HANDSHAKE: Final = 22
CT_APPLICATION_DATA: Final = 23

Tls13Event = HandshakeMessage | AlertRecord | StreamError


def server_handshake_keys(cipher_suite: int, secret: bytes) -> TrafficKeys:
    """RFC 8446 §7.3: the server's handshake write key and iv from its traffic secret.

    key = HKDF-Expand-Label(secret, "key", "", key_length), iv = …("iv", 12), with the
    suite's hash (SHA-384 for TLS_AES_256_GCM_SHA384, SHA-256 otherwise). Raises
    :class:`~alpnsniff.errors.Unsupported` for a suite outside RFC 8446 Appendix B.4 and
    :class:`~alpnsniff.errors.Malformed` for a secret that is not one hash long.
    """
    suite = tls13_suite(cipher_suite, layer=LAYER)
    check_secret(suite, secret, "server handshake traffic secret", layer=LAYER)
    return traffic_keys(suite, secret)


class Tls13ServerFlightDecryptor(RecordDecryptor):
    """Opens one TLS 1.3 server's encrypted handshake records and yields its messages.

    Construct it when the ServerHello selected TLS 1.3 (raises like
    :func:`server_handshake_keys`), then feed every server record after that ServerHello.
    ``stats`` counts ``records`` opened, ``ccs_skipped``, ``padding_bytes``,
    ``messages``, ``messages_too_large`` (skipped unbuffered) and ``records_after_finished``.
    """

    __slots__ = ("_assembler", "_keys", "_seq", "error", "stats")

    def __init__(
        self, cipher_suite: int, secret: bytes, *, max_message: int = MAX_HANDSHAKE_MESSAGE
    ) -> None:
        self._keys = server_handshake_keys(cipher_suite, secret)
        self._seq = 0
        #: The error that stopped the decryptor (also returned once as a StreamError).
        self.error: DissectError | None = None
        self.stats: Counter[str] = Counter()
        self._assembler = HandshakeAssembler(max_message, self.stats, LAYER)

    def __repr__(self) -> str:
        return (
            f"Tls13ServerFlightDecryptor({self._keys.suite.name}, records={self._seq}, "
            f"done={self.done}, error={self.error is not None})"
        )

    def _record(
        self, content_type: int, header: bytes, payload: bytes, events: list[Tls13Event]
    ) -> None:
        if content_type == CT_CHANGE_CIPHER_SPEC:
            if payload != b"\x01":
                raise Malformed(f"ChangeCipherSpec of {len(payload)} bytes", layer=LAYER)
            self.stats["ccs_skipped"] += 1
            return
        if content_type == CT_ALERT and len(payload) == 2 and not self._assembler.in_message:
            self.stats["plaintext_alerts"] += 1
            events.append(AlertRecord(payload[0], payload[1]))
            return
        if content_type != CT_APPLICATION_DATA:
            raise Malformed(
                f"plaintext record of type {content_type} after the ServerHello "
                "(RFC 8446 §5: protected records have type 23)",
                layer=LAYER,
            )
        if len(header) != RECORD_HEADER_LENGTH:
            raise Malformed(f"record header of {len(header)} bytes", layer=LAYER)
        n = len(payload)
        if (header[3] << 8) | header[4] != n:
            raise Malformed(
                f"record header says {(header[3] << 8) | header[4]} bytes, body has {n}",
                layer=LAYER,
            )
        if n > MAX_CIPHERTEXT_LENGTH:
            raise Malformed(
                f"encrypted record of {n} bytes (RFC 8446 §5.2: at most {MAX_CIPHERTEXT_LENGTH})",
                layer=LAYER,
            )
        keys = self._keys
        if n <= keys.suite.tag_length:
            raise Malformed(
                f"encrypted record of {n} bytes: no room for a content type and the tag",
                layer=LAYER,
            )
        seq = self._seq
        try:
            plaintext = keys.open(seq, payload, header)
        except InvalidTag:
            raise DecryptFailed(
                f"server handshake record {seq}: {keys.suite.name} tag does not verify "
                "(wrong key log entry, or damaged bytes)",
                layer=LAYER,
            ) from None
        self._seq = seq + 1
        self.stats["records"] += 1
        if len(plaintext) > MAX_PLAINTEXT_LENGTH:
            raise Malformed(
                f"record {seq}: inner plaintext of {len(plaintext)} bytes "
                f"(RFC 8446 §5.4: at most {MAX_PLAINTEXT_LENGTH})",
                layer=LAYER,
            )
        content = plaintext.rstrip(b"\x00")
        if not content:
            raise Malformed(
                f"record {seq}: inner plaintext is all zeros, no content type (RFC 8446 §5.4)",
                layer=LAYER,
            )
        self.stats["padding_bytes"] += len(plaintext) - len(content)
        inner_type = content[-1]
        content = content[:-1]
        version = (header[1] << 8) | header[2]
        if inner_type == CT_HANDSHAKE:
            if not content:
                raise Malformed(
                    f"record {seq}: empty handshake content (RFC 8446 §5.4)", layer=LAYER
                )
            self._assembler.add(content, version, f"record {seq}", events.append)
        elif inner_type == CT_ALERT:
            if self._assembler.in_message:
                raise Malformed(
                    f"record {seq}: alert inside a fragmented handshake message", layer=LAYER
                )
            if len(content) != 2:
                raise Malformed(f"record {seq}: alert of {len(content)} bytes", layer=LAYER)
            events.append(AlertRecord(content[0], content[1]))
        else:
            raise Malformed(
                f"record {seq}: inner content type {inner_type} under the handshake keys",
                layer=LAYER,
            )
