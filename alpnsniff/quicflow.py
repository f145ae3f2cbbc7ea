"""One QUIC connection (one UDP 5-tuple) until its ClientHello's fate is known.

Sans-I/O, like :mod:`alpnsniff.tcpflow`: :meth:`QuicFlow.on_datagram` takes a UDP payload with
its direction, frame number and time, feeds it to the Initial-space decoder
(:class:`alpnsniff.quic.connection.QuicConnection`) and returns the records completed.

QUIC always runs TLS 1.3, so the server's ALPN choice sits in EncryptedExtensions in the
Handshake space: without keys the record says ``encrypted``. A CONNECTION_CLOSE carrying
CRYPTO_ERROR 0x178 (alert 120) in the server's Initial says ``rejected``. A connection that
restarts after a Retry or a Version Negotiation is one record, with its final ClientHello;
``quic_restarts`` counts the ClientHellos it superseded.
"""

from __future__ import annotations

from collections import Counter

from .errors import DissectError
from .keys.quic_handshake import QuicHandshakeDecryptor
from .keystore import KeyStore
from .net.segment import Segment
from .pairing import (
    Answer,
    Endpoints,
    Offer,
    alert_answer,
    encrypted_extensions_answer,
    record,
    server_hello_answer,
    with_note,
)
from .quic.connection import (
    ClientHelloEvent,
    ConnectionCloseEvent,
    QuicConnection,
    QuicSkipped,
    RetryEvent,
    ServerHelloEvent,
    VersionNegotiationEvent,
)
from .quic.versions import version_name
from .records import Handshake, Selection
from .tls.events import HandshakeMessage
from .tls.hello import parse_client_hello, parse_server_hello

HANDSHAKE_HEADER = 4
ENCRYPTED_EXTENSIONS = 8


class QuicFlow:
    """Initial-space state of one QUIC connection; the client sent the first Initial."""

    __slots__ = (
        "awaiting",
        "client_key",
        "conn",
        "done",
        "ends",
        "expect_restart",
        "first_dcid",
        "hs_dec",
        "keys",
        "known_dcids",
        "last_ts",
        "pending",
        "restarts",
        "retry",
        "stats",
    )

    def __init__(
        self, client_key: bytes, seg: Segment, stats: Counter[str], keys: KeyStore | None = None
    ) -> None:
        self.client_key = client_key
        self.ends = Endpoints(seg.ip_version, seg.src, seg.sport, seg.dst, seg.dport)
        self.conn = QuicConnection()
        self.pending: Offer | None = None
        self.restarts = 0
        self.retry = False  # a HelloRetryRequest was answered: the next ClientHello follows it
        self.expect_restart = False  # a Retry or Version Negotiation came: a new attempt follows
        self.first_dcid: bytes | None = None  # DCID of the client's first Initial (RFC 9000 §7.3)
        # every DCID the client may use in this connection's Initials: its first, a Retry's
        # SCID, the server's SCID (the client switches to it after the server's first Initial)
        self.known_dcids: set[bytes] = set()
        self.done = False
        self.last_ts = 0
        self.stats = stats
        self.keys = keys  # the run's secrets (None: no decryption, no cost)
        self.awaiting: tuple[Offer, Answer] | None = None  # answered, waiting for decryption
        self.hs_dec: QuicHandshakeDecryptor | None = None

    def on_datagram(self, key: bytes, seg: Segment, frame: int, ts_ns: int) -> list[Handshake]:
        self.last_ts = ts_ns
        from_client = key == self.client_key
        out: list[Handshake] = []
        stats = self.stats
        for event in self.conn.receive_datagram(seg.payload, from_client=from_client, ts_ns=ts_ns):
            if isinstance(event, ClientHelloEvent):
                out.extend(self._client_hello(event, frame, ts_ns))
            elif isinstance(event, ServerHelloEvent):
                out.extend(self._server_hello(event, frame))
            elif isinstance(event, ConnectionCloseEvent):
                if not event.from_client and self.pending is not None:
                    alert = event.close.tls_alert
                    answer = (
                        alert_answer(alert, frame=frame)
                        if alert is not None
                        else Answer(Selection.ABORTED, server_frame=frame)
                    )
                    out.append(record(self.pending, answer))
                    self.pending = None
                    self.done = True
                stats["quic_connection_closes"] += 1
            elif isinstance(event, RetryEvent):
                stats["quic_retries"] += 1
                self.known_dcids.add(event.scid)
                self.expect_restart = True
            elif isinstance(event, VersionNegotiationEvent):
                stats["quic_version_negotiations"] += 1
                self.expect_restart = True
            elif isinstance(event, QuicSkipped):
                stats["quic_skipped_" + event.reason] += 1
            if self.done:
                break
        if self.hs_dec is not None and not from_client and not self.done:
            out.extend(self._decrypt(seg.payload))
        return out

    def _decrypt(self, datagram: bytes) -> list[Handshake]:
        """The server's Handshake packets, opened with the key log: EncryptedExtensions."""
        assert self.hs_dec is not None and self.awaiting is not None
        offer, answer = self.awaiting
        for message in self.hs_dec.feed_datagram(datagram):
            if isinstance(message, HandshakeMessage) and message.msg_type == ENCRYPTED_EXTENSIONS:
                self.stats["quic_decrypted_encrypted_extensions"] += 1
                return self._settle(encrypted_extensions_answer(offer, answer, message.body))
        if self.hs_dec.last_error is not None and self.hs_dec.stats["packets"] == 0:
            self.stats["quic_decrypt_" + self.hs_dec.last_error.reason] += 1
        return []

    def _settle(self, answer: Answer) -> list[Handshake]:
        assert self.awaiting is not None
        offer = self.awaiting[0]
        self.awaiting = None
        self.hs_dec = None
        self.done = True
        return [record(offer, answer)]

    def _start_decryption(self, offer: Offer, event: ServerHelloEvent, suite: int) -> bool:
        assert self.keys is not None and offer.hello is not None
        secrets = self.keys.secrets_for(offer.hello.random)
        if secrets is None or secrets.server_handshake_traffic_secret is None:
            self.stats["keys_not_in_keylog"] += 1
            return False
        try:
            self.hs_dec = QuicHandshakeDecryptor(
                event.version, suite, secrets.server_handshake_traffic_secret
            )
        except DissectError as err:
            self.stats[f"keys_cannot_decrypt_{err.reason}"] += 1
            return False
        return True

    def _client_hello(self, event: ClientHelloEvent, frame: int, ts_ns: int) -> list[Handshake]:
        try:
            ch = parse_client_hello(event.message[HANDSHAKE_HEADER:])
        except DissectError as err:
            self.stats["quic_client_hello_" + err.reason] += 1
            return []
        self.stats["quic_client_hellos"] += 1
        out: list[Handshake] = []
        if self.pending is not None and not self.retry:
            if self.expect_restart:
                # a new attempt after Retry or Version Negotiation: this ClientHello replaces it
                self.restarts += 1
                self.stats["quic_client_hellos_superseded"] += 1
            else:
                # a new DCID without Retry or VN: another connection on the same 5-tuple; the
                # unanswered one is reported on its own
                out.extend(self.flush())
                self.restarts = 0
                self.first_dcid = None
        self.expect_restart = False
        if self.first_dcid is None:
            self.first_dcid = event.original_dcid
        self.known_dcids.add(event.original_dcid)
        self.pending = Offer(
            self.ends,
            ts_ns,
            frame,
            "quic",
            ch,
            hello_retry=self.retry,
            quic_version=version_name(event.version),
            quic_dcid=self.first_dcid,
            quic_scid=event.scid,
            quic_restarts=self.restarts,
        )
        return out

    def _server_hello(self, event: ServerHelloEvent, frame: int) -> list[Handshake]:
        offer = self.pending
        if offer is None:
            self.stats["quic_server_hello_without_client_hello"] += 1
            return []
        try:
            sh = parse_server_hello(event.message[HANDSHAKE_HEADER:])
        except DissectError as err:
            self.stats["quic_server_hello_" + err.reason] += 1
            return []
        self.pending = None
        self.known_dcids.add(event.scid)
        answer = server_hello_answer(offer, sh, frame=frame)
        if sh.is_hrr:
            self.retry = True
        elif self.keys is not None and self._start_decryption(offer, event, sh.cipher_suite):
            self.awaiting = (offer, answer)  # the record waits for EncryptedExtensions
            return []
        else:
            self.done = True
        return [record(offer, answer)]

    def flush(self) -> list[Handshake]:
        """The ClientHello still waiting leaves now, as ``unseen``."""
        out: list[Handshake] = []
        if self.awaiting is not None:
            offer, answer = self.awaiting
            self.awaiting = None
            self.stats["quic_decryption_unfinished"] += 1
            out.append(record(offer, with_note(answer, "keys-given-but-flight-not-seen")))
        if self.pending is not None:
            offer, self.pending = self.pending, None
            self.stats["quic_unanswered_client_hellos"] += 1
            out.append(record(offer))
        return out
