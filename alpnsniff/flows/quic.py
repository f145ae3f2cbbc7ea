"""One QUIC connection (one UDP 5-tuple) until its ClientHello's fate is known.

Sans-I/O, like :mod:`.tcp`: :meth:`QuicFlow.on_packet` takes a UDP datagram with its
direction, frame number and time, feeds it to the Initial-space decoder
(:class:`alpnsniff.quic.connection.QuicConnection`) and returns the records completed.

QUIC always runs TLS 1.3, so the server's ALPN choice sits in EncryptedExtensions in the
Handshake space: without keys the record says ``encrypted``. A CONNECTION_CLOSE carrying
CRYPTO_ERROR 0x178 (alert 120) in the server's Initial says ``rejected``. A connection that
restarts after a Retry or a Version Negotiation is one record, with its final ClientHello;
``quic_restarts`` counts the ClientHellos it superseded. A flow whose first client Initial
does not decrypt (not QUIC after all, or a flood of random Initials) gives up at once: the
table forgets it rather than hold it until the idle timeout.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from ..errors import DissectError
from ..keys.quic_handshake import QuicHandshakeDecryptor
from ..keys.stage import quic_decryptor
from ..keys.store import KeyStore
from ..net.segment import Segment
from ..quic.connection import (
    ClientHelloEvent,
    ConnectionCloseEvent,
    QuicConnection,
    QuicSkipped,
    RetryEvent,
    ServerHelloEvent,
    VersionNegotiationEvent,
)
from ..quic.initial import DecryptError
from ..quic.packets import LongHeaderPacket, split_datagram
from ..quic.versions import LongPacketType, version_info, version_name
from ..records import Handshake, Selection
from ..tls.events import HandshakeMessage
from ..tls.hello import parse_client_hello, parse_server_hello
from .answers import AnswerBook, OfferLedger
from .outcome import (
    Answer,
    ClientFacts,
    Endpoints,
    Offer,
    alert_answer,
    encrypted_extensions_answer,
    server_hello_answer,
)
from .state import DECRYPTING, DONE, GAVE_UP, HANDSHAKE, NOT_TLS, FlowState

HANDSHAKE_HEADER = 4
ENCRYPTED_EXTENSIONS = 8
# Remembered for the server's key of a finished connection: its datagrams never reopen it.
SERVER_SIDE = "quic-server-side"


class QuicFlow:
    """Initial-space state of one QUIC connection; the client sent the first Initial."""

    transport: ClassVar[str] = "quic"
    __slots__ = (
        "book",
        "charged",
        "conn",
        "ends",
        "errors",
        "expect_restart",
        "first_dcid",
        "hs_dec",
        "key",
        "keys",
        "known_dcids",
        "last_ts",
        "opened",
        "restarts",
        "state",
        "stats",
    )

    def __init__(
        self,
        key: bytes,
        seg: Segment,
        stats: Counter[str],
        keys: KeyStore | None = None,
        ledger: OfferLedger | None = None,
    ) -> None:
        self.key = key  # the client's direction
        self.state = HANDSHAKE
        self.ends = Endpoints(seg.ip_version, seg.src, seg.sport, seg.dst, seg.dport)
        self.conn = QuicConnection()
        self.book = AnswerBook("quic", stats, ledger)  # at most one ClientHello waits at a time
        self.restarts = 0
        self.expect_restart = False  # a Retry or Version Negotiation came: a new attempt follows
        self.first_dcid: bytes | None = None  # DCID of the client's first Initial (RFC 9000 §7.3)
        # every DCID the client may use in this connection's Initials: its first, a Retry's
        # SCID, the server's SCID (the client switches to it after the server's first Initial)
        self.known_dcids: set[bytes] = set()
        self.opened = False  # a client Initial decrypted
        self.last_ts = 0
        self.charged = 0  # bytes buffered, as last told to the flow table's budget
        self.errors: list[str] = []
        self.stats = stats
        self.keys = keys  # the run's secrets (None: no decryption, no cost)
        self.hs_dec: QuicHandshakeDecryptor | None = None

    def _set_state(self, state: FlowState) -> None:
        self.state = state

    # ---------------------------------------------------------------- the table's questions
    def remembered(self) -> tuple[frozenset[bytes], str]:
        """What the table remembers of a finished connection, client's key then server's:
        the DCIDs its client used or may use (a client Initial with another DCID is a new
        connection), and that the other key is its server's side."""
        return frozenset(self.known_dcids), SERVER_SIDE

    def buffered(self) -> int:
        hs_dec = self.hs_dec
        return self.conn.buffered + (0 if hs_dec is None else hs_dec.buffered)

    # ---------------------------------------------------------------- input
    def on_packet(self, key: bytes, seg: Segment, frame: int, ts_ns: int) -> list[Handshake]:
        self.last_ts = ts_ns
        from_client = key == self.key
        out: list[Handshake] = []
        stats = self.stats
        book = self.book
        undecryptable = False  # a client Initial of this datagram did not decrypt
        for event in self.conn.receive_datagram(seg.payload, from_client=from_client, ts_ns=ts_ns):
            if isinstance(event, ClientHelloEvent):
                out.extend(self._client_hello(event, frame, ts_ns))
            elif isinstance(event, ServerHelloEvent):
                out.extend(self._server_hello(event, frame))
            elif isinstance(event, ConnectionCloseEvent):
                if not event.from_client and book.pending:
                    alert = event.close.tls_alert
                    answer = (
                        alert_answer(alert, frame=frame)
                        if alert is not None
                        else Answer(Selection.ABORTED, server_frame=frame)
                    )
                    out.append(book.answer(answer))
                    self._set_state(DONE)
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
                if event.from_client and event.reason == DecryptError.reason:
                    undecryptable = True
            if self.state is DONE:
                break
        if from_client and not self.opened:
            if self.conn.client_opened:
                self.opened = True
            elif undecryptable and not book.waiting:
                if _carries_handshake_packet(seg.payload):
                    # a server's Initial (a client has no Handshake keys before the server's
                    # first Initial, so it never coalesces a Handshake packet): the client's
                    # side is not in the capture. Its keys come from the DCID of the client's
                    # first Initial, which only that packet carries: it cannot be decrypted
                    # (nor by tshark), and no ALPN is known. No record (there is no
                    # ClientHello, nor a readable answer); counted once per connection, and
                    # its 5-tuple remembered so that the server's next packets cost nothing
                    stats["quic_server_only_undecryptable"] += 1
                    self._set_state(NOT_TLS)
                    return out
                # the client's first Initial does not decrypt: nothing to wait for (a datagram
                # without an Initial, 0-RTT before its Initial say, keeps the flow waiting)
                stats["quic_initial_undecryptable"] += 1
                self._set_state(GAVE_UP)
                return out
        hs_dec = self.hs_dec
        if hs_dec is not None and not from_client and self.state is DECRYPTING:
            out.extend(self._decrypt(hs_dec, seg.payload))
        return out

    def _decrypt(self, dec: QuicHandshakeDecryptor, datagram: bytes) -> list[Handshake]:
        """The server's Handshake packets, opened with the key log: EncryptedExtensions."""
        offer, answer = self.book.settled_answer()
        for message in dec.feed_datagram(datagram):
            if isinstance(message, HandshakeMessage) and message.msg_type == ENCRYPTED_EXTENSIONS:
                self.stats["quic_decrypted_encrypted_extensions"] += 1
                self.hs_dec = None
                self._set_state(DONE)
                return self.book.settle(encrypted_extensions_answer(offer, answer, message.body))
        if dec.last_error is not None and dec.stats["packets"] == 0:
            self.stats["quic_decrypt_" + dec.last_error.reason] += 1
        return []

    def _client_hello(self, event: ClientHelloEvent, frame: int, ts_ns: int) -> list[Handshake]:
        try:
            ch = parse_client_hello(event.message[HANDSHAKE_HEADER:])
        except DissectError as err:
            self.stats["quic_client_hello_" + err.reason] += 1
            self.errors.append(f"frame {frame}: quic client_hello: {err}")
            return []
        self.stats["quic_client_hellos"] += 1
        out: list[Handshake] = []
        book = self.book
        if book.pending and not book.retry:
            if self.expect_restart:
                # a new attempt after Retry or Version Negotiation: this ClientHello replaces it
                book.supersede()
                self.restarts += 1
                self.stats["quic_client_hellos_superseded"] += 1
            else:
                # a new DCID without Retry or VN: another connection on the same 5-tuple; the
                # unanswered one (and one waiting for decryption) is reported on its own
                out.extend(book.flush())
                self.hs_dec = None
                self._set_state(HANDSHAKE)
                self.restarts = 0
                self.first_dcid = None
        elif book.pending:
            book.supersede()  # the ClientHello after a HelloRetryRequest replaces it
        self.expect_restart = False
        if self.first_dcid is None:
            self.first_dcid = event.original_dcid
        self.known_dcids.add(event.original_dcid)
        book.offer(
            Offer(
                self.ends,
                ts_ns,
                frame,
                "quic",
                ClientFacts.of(ch, "quic"),
                hello_retry=book.retry,
                quic_version=version_name(event.version),
                quic_dcid=self.first_dcid,
                quic_scid=event.scid,
                quic_restarts=self.restarts,
            )
        )
        return out

    def _server_hello(self, event: ServerHelloEvent, frame: int) -> list[Handshake]:
        book = self.book
        if not book.pending:
            self.stats["quic_server_hello_without_client_hello"] += 1
            return []
        try:
            sh = parse_server_hello(event.message[HANDSHAKE_HEADER:])
        except DissectError as err:
            self.stats["quic_server_hello_" + err.reason] += 1
            self.errors.append(f"frame {frame}: quic server_hello: {err}")
            return []
        offer = book.pending[0]
        self.known_dcids.add(event.scid)
        answer = server_hello_answer(offer, sh, frame=frame)
        if sh.is_hrr:
            book.retry = True
            return [book.answer(answer)]
        if self.keys is not None and offer.client is not None:  # (QUIC offers always have one)
            random = offer.client.random
            dec = quic_decryptor(self.keys, random, event.version, sh.cipher_suite, self.stats)
            if dec is not None:
                self.hs_dec = dec
                book.await_decryption(answer)  # the record waits for EncryptedExtensions
                self._set_state(DECRYPTING)
                return []
        self._set_state(DONE)
        return [book.answer(answer)]

    # ---------------------------------------------------------------- end
    def flush(self) -> list[Handshake]:
        """The ClientHello still waiting leaves now, as ``unseen``."""
        return self.book.flush()

    def abandon(self, *, at_end: bool) -> list[Handshake]:
        """The flow leaves the table before its facts are known (evicted, or at the end)."""
        return self.flush()


def _carries_handshake_packet(datagram: bytes) -> bool:
    """The datagram coalesces a Handshake packet (only a server's first flight does so
    beside an Initial)."""
    try:
        packets = split_datagram(datagram)
    except DissectError:
        return False
    return any(
        isinstance(p, LongHeaderPacket) and p.packet_type is LongPacketType.HANDSHAKE
        for p in packets
    )


def quic_reopens(remembered: object, payload: bytes) -> bool:
    """A client Initial with a new DCID on the 5-tuple of a finished QUIC connection
    (``remembered``: the DCIDs that connection's client used or may use)."""
    if not isinstance(remembered, frozenset) or len(payload) < 7:
        return False  # the server's side, or too short for a long header
    info = version_info(int.from_bytes(payload[1:5], "big"))
    if info is None or payload[0] & 0x30 != info.initial_type_bits:
        return False
    dcid = payload[6 : 6 + payload[5]]
    # a DCID it knows: a late Initial (an ACK, a retransmission) of the finished connection
    return dcid not in remembered
