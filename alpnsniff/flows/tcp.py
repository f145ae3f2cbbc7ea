"""One TCP connection, from its first packet until its handshake facts are known.

Sans-I/O: :meth:`TcpFlow.on_packet` takes a decoded segment with its frame number and time,
and returns the :class:`Handshake` records it completed. Each direction is reassembled
(:mod:`alpnsniff.net.tcp`) and probed at segment starts for the beginning of TLS, so TLS is
found by its bytes on any port, after a STARTTLS or CONNECT preamble too (and after a PROXY
header, :mod:`alpnsniff.http.preamble`), and never by port number. The connection's state is
one :class:`~.state.FlowState`; the ClientHellos waiting for their answer are in an
:class:`~.answers.AnswerBook`. Once the server has answered the (last) ClientHello, the
flow is ``DONE`` and the flow table forgets it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import ClassVar

from ..errors import DissectError
from ..http.connect import (
    ConnectRequest,
    ConnectResponse,
    is_connect_start,
    parse_connect_request,
    parse_connect_response,
)
from ..http.preamble import has_proxy_header, plaintext_protocol, proxy_header_length
from ..keys.stage import tls_decryptor
from ..keys.store import KeyStore
from ..keys.tls12 import Tls12HandshakeDecryptor
from ..keys.tls13 import Tls13ServerFlightDecryptor
from ..net.segment import Segment
from ..net.tcp import StreamReassembler
from ..records import Handshake, Selection
from ..tls.alpn import alpn_text
from ..tls.detect import NOT_TLS as START_NOT_TLS
from ..tls.detect import classify_stream_start
from ..tls.hello import parse_client_hello, parse_server_hello
from ..tls.messages import parse_next_protocol
from ..tls.stream import (
    AlertRecord,
    ChangeCipherSpec,
    EncryptedRecord,
    HandshakeMessage,
    SSLv2ClientHello,
    StreamError,
    TlsStreamParser,
)
from ..tls.upgrade import STRONG, better_hint, upgrade_hint
from .answers import AnswerBook, OfferLedger
from .loss import AckWatch
from .outcome import (
    Answer,
    ClientFacts,
    ConnectFacts,
    Endpoints,
    Offer,
    alert_answer,
    encrypted_extensions_answer,
    record,
    server_hello_answer,
    sslv2_answer,
    with_note,
)
from .state import DECRYPTING, DONE, HANDSHAKE, NOT_TLS, PROBING, FlowState
from .table import reverse_key

SYN = 0x02
ACK = 0x10

# Segments with payload inspected at their start before a connection is declared not TLS.
# A STARTTLS exchange (SMTP banner, EHLO, capabilities, STARTTLS, 220) or an HTTP CONNECT
# takes 4-10 segments before the ClientHello; more than this is bulk data of another protocol.
PROBE_SEGMENTS = 24
# Segments held per direction while probing, so that the start of a ClientHello arriving
# after its continuation (reordering) or after junk at the same sequence number (bare ACKs
# with 2 bytes, as some stacks send) is reassembled whole. A ClientHello spans 1-5 segments.
PROBE_HOLD_SEGMENTS = 8
PROBE_HOLD_BYTES = 16 * 1024
# A direction that stays inside one handshake longer than this is not a handshake we can use.
MAX_HANDSHAKE_STREAM = 256 * 1024

ALERT_LEVEL_FATAL = 2

HANDSHAKE_CLIENT_HELLO = 1
HANDSHAKE_SERVER_HELLO = 2
HANDSHAKE_ENCRYPTED_EXTENSIONS = 8
HANDSHAKE_FINISHED = 20
HANDSHAKE_NEXT_PROTOCOL = 67
CCS_HEADER = b"\x14\x03\x03\x00\x01"

_HELLO_STARTS = ("tls-client-hello", "sslv2-client-hello")
_SERVER_STARTS = ("tls-handshake", "tls-alert")


def _first(side: Direction, seq: int) -> bool:
    """No segment held in this direction starts before ``seq``: what came before was its
    continuation (reordered) or junk at the same sequence number, so a TLS start here is the
    first byte of the direction seen."""
    return all((held_seq - seq) & 0xFFFFFFFF < 0x80000000 for held_seq, _ in side.held)


class TlsDirection:
    """One direction from the first byte of TLS on: reassembly and the TLS parser."""

    __slots__ = ("consumed", "parser", "stream")

    def __init__(self, start_seq: int) -> None:
        self.stream = StreamReassembler(start_seq)
        self.parser = TlsStreamParser()
        self.consumed = 0  # bytes fed to the TLS parser


class Direction:
    """One direction of a connection: probing at segment starts, then reassembly and TLS."""

    __slots__ = ("held", "held_bytes", "maybe_seq", "tls")

    def __init__(self) -> None:
        self.tls: TlsDirection | None = None  # from the first byte of TLS on
        # Segments seen while probing, kept (bounded) so that a ClientHello whose segments
        # arrive out of order, or after junk at the same sequence number, is still whole.
        self.held: list[tuple[int, bytes]] = []
        self.held_bytes = 0
        self.maybe_seq: int | None = None  # a held segment too short to classify alone

    def buffered(self) -> int:
        """Bytes this direction holds now (probe segments, out-of-order data, partial
        records and messages)."""
        tls = self.tls
        if tls is None:
            return self.held_bytes
        return self.held_bytes + tls.stream.pending_bytes + tls.parser.buffered


class TcpFlow:
    """Handshake state of one TCP connection. ``key`` is the first direction seen."""

    transport: ClassVar[str] = "tcp"
    __slots__ = (
        "book",
        "charged",
        "client_dec",
        "client_isn",
        "client_key",
        "connect",
        "connect_frame",
        "connect_open",
        "connect_refused",
        "connect_ts",
        "dir_a",
        "dir_b",
        "ends",
        "errors",
        "key",
        "keys",
        "last_ts",
        "probes_left",
        "server_dec",
        "server_only",
        "state",
        "stats",
        "upgrade",
        "watch",
    )

    def __init__(
        self,
        key: bytes,
        stats: Counter[str],
        keys: KeyStore | None = None,
        ledger: OfferLedger | None = None,
    ) -> None:
        self.key = key
        self.state = PROBING
        # the directions: ``key``'s (the first packet's) and the other's, made when they
        # first send (two slots, not a dict: a flood holds tens of thousands of flows)
        self.dir_a: Direction | None = None
        self.dir_b: Direction | None = None
        self.client_key: bytes | None = None  # the direction that sent the ClientHello (or SYN)
        self.client_isn = -1  # the client's SYN sequence number, -1 when no SYN was seen
        self.ends: Endpoints | None = None
        self.book = AnswerBook("tcp", stats, ledger)
        self.probes_left = PROBE_SEGMENTS
        self.last_ts = 0
        self.charged = 0  # bytes buffered, as last told to the flow table's budget
        self.errors: list[str] = []
        self.stats = stats  # shared run counters
        self.keys = keys  # the run's secrets (None: no key log, no DSB: no decryption)
        self.server_dec: Tls13ServerFlightDecryptor | None = None
        self.client_dec: Tls12HandshakeDecryptor | None = None
        # the server's flight began without a ClientHello before it (a one-sided capture, or
        # one begun late): its ServerHello (or fatal alert) gives a record without an offer
        self.server_only = False
        self.watch = AckWatch()  # the upstream loss estimate (flows/loss.py)
        # an HTTP CONNECT the connection began with (RFC 7639), its packet and time; its
        # frame stays open in the ledger until the proxy answers (records in frame order)
        self.connect: ConnectFacts | None = None
        self.connect_frame = 0
        self.connect_ts = 0
        self.connect_open = False  # its frame is open in the ledger
        self.connect_refused = False  # a CONNECT on this connection was refused
        # what the connection carried before its TLS (tls/upgrade.py): name and certainty
        self.upgrade: tuple[str, int] | None = None

    def _set_state(self, state: FlowState) -> None:
        self.state = state

    # ---------------------------------------------------------------- the table's questions
    def remembered(self) -> int:
        """What the table remembers of a finished connection: the client's SYN sequence
        number (-1 unknown), so that a new SYN on the same 5-tuple is told from a resent one."""
        return self.client_isn

    def buffered(self) -> int:
        a = self.dir_a
        b = self.dir_b
        n = 0 if a is None else a.buffered()
        if b is not None:
            n += b.buffered()
        if self.server_dec is not None:
            n += self.server_dec.buffered
        if self.client_dec is not None:
            n += self.client_dec.buffered
        return n

    def carried_data(self) -> bool:
        """TLS was found, or a ClientHello waits: a SYN now opens a new connection."""
        return self.state is not PROBING or bool(self.book.pending)

    # ---------------------------------------------------------------- input
    def on_packet(self, key: bytes, seg: Segment, frame: int, ts_ns: int) -> list[Handshake]:
        self.last_ts = ts_ns
        forward = key == self.key
        self.watch.on_segment(forward, seg, self.stats)
        if forward:
            side = self.dir_a
            if side is None:
                side = self.dir_a = Direction()
        else:
            side = self.dir_b
            if side is None:
                side = self.dir_b = Direction()
        flags = seg.flags
        seq = seg.seq
        if flags & SYN:
            if not flags & ACK and self.client_key is None:
                self._set_client(key, seg)
                self.client_isn = seg.seq
            seq += 1  # data on a SYN (TCP Fast Open) starts after the SYN's sequence number
        payload = seg.payload
        if not payload:
            return []
        tls = side.tls
        if tls is not None:
            if tls.parser.stopped:
                # the direction's TLS stream broke (counted once, with its reason): the
                # rest of it cannot be parsed, and it still counts against the stream's cap
                self.stats["tcp_segments_after_stream_error"] += 1
                tls.consumed += len(payload)
                if tls.consumed > MAX_HANDSHAKE_STREAM:
                    self.stats["tcp_handshake_stream_too_long"] += 1
                    self._set_state(DONE)
                    return self.flush()
                return []
            data = tls.stream.add(seq, payload)
            return self._feed(key, tls, data, frame, ts_ns) if data else []
        return self._probe(key, side, seg, seq, payload, frame, ts_ns)

    def _set_client(self, key: bytes, seg: Segment) -> None:
        self.client_key = key
        self.ends = Endpoints(seg.ip_version, seg.src, seg.sport, seg.dst, seg.dport)

    # ---------------------------------------------------------------- probing
    def _probe(
        self,
        key: bytes,
        side: Direction,
        seg: Segment,
        seq: int,
        payload: bytes,
        frame: int,
        ts_ns: int,
    ) -> list[Handshake]:
        """Look for the start of TLS at this segment's start (after a PROXY header)."""
        start = payload
        if has_proxy_header(payload):
            cut = proxy_header_length(payload)
            if cut:
                self.stats["tcp_proxy_protocol_headers"] += 1
                start = payload[cut:]
                seq = (seq + cut) & 0xFFFFFFFF
                self.upgrade = better_hint(self.upgrade, ("proxy-protocol", STRONG))
        from_server = self.client_key is not None and key != self.client_key
        if self.connect is None:
            if not from_server and is_connect_start(start):
                self._connect_request(key, seg, start, frame, ts_ns)
                self.upgrade = better_hint(self.upgrade, ("http-connect", STRONG))
        elif self.connect.status is None and from_server:
            refused = self._connect_response(start, frame)
            if refused is not None:
                return refused
        kind, seq, start = self._classify(side, seq, start, payload)
        if kind == START_NOT_TLS and (self.upgrade is None or self.upgrade[1] != STRONG):
            hint = upgrade_hint(start, from_server)
            if hint is None and self.client_key is None:  # (no SYN seen: either side)
                hint = upgrade_hint(start, True)
            self.upgrade = better_hint(self.upgrade, hint)
        pending = bool(self.book.pending)
        if kind in _HELLO_STARTS and not pending:
            if self.client_key != key:
                self._set_client(key, seg)
            return self._start_tls(key, side, seq, start, frame, ts_ns)
        if kind in _SERVER_STARTS and pending and from_server:
            return self._start_tls(key, side, seq, start, frame, ts_ns)
        if kind in _SERVER_STARTS and not pending and self.client_key != key and _first(side, seq):
            # the server's flight, no ClientHello before it (the other direction is not in
            # the capture, or the capture began late): its answer alone makes a record
            self.server_only = True
            if self.client_key is None:  # (else the client's SYN set the endpoints)
                self.client_key = reverse_key(key)
                self.ends = Endpoints(seg.ip_version, seg.dst, seg.dport, seg.src, seg.sport)
            return self._start_tls(key, side, seq, start, frame, ts_ns)
        verdict = self._probe_verdict(kind, start, pending, from_server, side)
        if verdict is not None:
            return self._conclude_probe(verdict, frame)
        self._hold(side, seq, payload)
        self.probes_left -= 1
        if self.probes_left <= 0 and not pending:
            self.stats["tcp_not_tls"] += 1
            self._set_state(NOT_TLS)
        return []

    def _connect_request(
        self, key: bytes, seg: Segment, start: bytes, frame: int, ts_ns: int
    ) -> None:
        """An HTTP CONNECT request at a segment start: its facts are kept for the records
        of the TLS that follows (or of the proxy's refusal). Its head must be in this one
        segment (a real client sends it whole); a head cut short is counted, not read."""
        request = parse_connect_request(start)
        if not isinstance(request, ConnectRequest):
            reason = "head_incomplete" if request is None else request.reason
            self.stats[f"tcp_connect_{reason}"] += 1
            return
        self.stats["tcp_connect_requests"] += 1
        if request.alpn_truncated:
            self.stats["tcp_connect_alpn_truncated"] += 1
        if self.client_key != key:
            self._set_client(key, seg)
        self.connect = ConnectFacts(
            target=alpn_text(request.target),
            alpn=request.alpn_raw,
            header=request.alpn_header,
            canonical=request.alpn_canonical,
        )
        self.connect_frame = frame
        self.connect_ts = ts_ns
        if self.book.ledger is not None:
            self.book.ledger.opened(frame)
            self.connect_open = True

    def _connect_response(self, start: bytes, frame: int) -> list[Handshake] | None:
        """The proxy's answer to the CONNECT: its status joins the facts; a refusal (any
        final status but 2xx) is a record of its own, without a ClientHello, and a later
        CONNECT on the connection is read afresh."""
        connect = self.connect
        response = parse_connect_response(start)
        if connect is None or response is None:
            return None  # (the head continues in a later segment: not read)
        self._close_connect()
        if not isinstance(response, ConnectResponse):
            self.stats[f"tcp_connect_response_{response.reason}"] += 1
            return None
        self.connect = connect = replace(connect, status=response.status)
        if 200 <= response.status < 300:
            return None
        self.stats["tcp_connect_refused"] += 1
        # the client may ask again on the same connection (a 407, then credentials): the
        # next CONNECT is read as this one was
        self.connect = None
        self.connect_refused = True
        offer = Offer(self._ends(), self.connect_ts, self.connect_frame, "tcp", None)
        offer.connect = connect
        offer.upgraded_from = self._upgraded_from()
        refused = Answer(Selection.UNSEEN, server_frame=frame, notes=("connect-refused",))
        return [record(offer, refused)]

    def _upgraded_from(self) -> str | None:
        """The ``upgraded_from`` of the connection's records (None: TLS from its first byte)."""
        upgrade = self.upgrade
        return None if upgrade is None else upgrade[0]

    def _close_connect(self) -> None:
        """The CONNECT's frame leaves the ledger (answered, or the flow is leaving)."""
        if self.connect_open and self.book.ledger is not None:
            self.book.ledger.closed(self.connect_frame)
        self.connect_open = False

    def _classify(
        self, side: Direction, seq: int, start: bytes, payload: bytes
    ) -> tuple[str | None, int, bytes]:
        """What this segment start is, with the held segments' help: the kind, and where the
        TLS start (if any) is."""
        kind = classify_stream_start(start)
        if kind is None:
            # too short to tell: maybe the first bytes of a record split across segments
            kind = self._classify_with_held(side, seq, start)
            if kind is None:
                side.maybe_seq = seq
        elif kind == START_NOT_TLS and side.maybe_seq is not None:
            # an earlier short segment may have begun a record this segment continues
            self._hold(side, seq, payload)
            maybe = side.maybe_seq
            first = next((p for q, p in side.held if q == maybe), b"")
            kind = self._classify_with_held(side, maybe, first)
            if kind is not None and kind != START_NOT_TLS:
                return kind, maybe, first
            side.held.pop()
            side.held_bytes -= len(payload)
            kind = START_NOT_TLS
        return kind, seq, start

    @staticmethod
    def _probe_verdict(
        kind: str | None, start: bytes, pending: bool, from_server: bool, side: Direction
    ) -> str | None:
        """The segment start ends probing: why (a stats name), else None (keep probing)."""
        if not pending:
            if kind in _SERVER_STARTS and not side.held:
                # a TLS flight without a ClientHello before it from the side that sent the
                # SYN (the client): not a handshake we can read (the server's: _probe)
                return "tcp_client_flight_without_client_hello"
            if start[:2] == b"\x17\x03" and not side.held:
                # TLS application data at the first segment seen: the handshake happened
                # before the capture began
                return "tcp_tls_midstream"
            if plaintext_protocol(start) is not None:
                return "tcp_plaintext_protocol"  # SSH or a plain HTTP request
        elif from_server and len(start) >= 3 and start[0] & 0x80 and start[2] == 4:
            return "sslv2-server-hello"  # answering an SSLv2-format ClientHello
        return None

    def _conclude_probe(self, verdict: str, frame: int) -> list[Handshake]:
        if verdict == "sslv2-server-hello":
            self._set_state(DONE)
            return [self.book.answer(sslv2_answer(frame=frame))]
        self.stats[verdict] += 1
        if verdict == "tcp_plaintext_protocol":
            self.stats["tcp_not_tls"] += 1
        self._set_state(NOT_TLS)
        return []

    def _hold(self, side: Direction, seq: int, payload: bytes) -> None:
        side.held.append((seq, payload))
        side.held_bytes += len(payload)
        while len(side.held) > PROBE_HOLD_SEGMENTS or side.held_bytes > PROBE_HOLD_BYTES:
            side.held_bytes -= len(side.held.pop(0)[1])

    @staticmethod
    def _classify_with_held(side: Direction, seq: int, start: bytes) -> str | None:
        """Classify a short segment start together with the held segments that follow it."""
        stream = StreamReassembler(seq)
        data = stream.add(seq, start)
        for held_seq, held in sorted(side.held, key=lambda h: (h[0] - seq) & 0xFFFFFFFF):
            data += stream.add(held_seq, held)
        return classify_stream_start(data)

    def _start_tls(
        self, key: bytes, side: Direction, seq: int, start: bytes, frame: int, ts_ns: int
    ) -> list[Handshake]:
        """TLS begins at ``seq``: reassemble from there, with what was held while probing."""
        if self.state is PROBING:
            self._set_state(HANDSHAKE)
        tls = side.tls = TlsDirection(seq)
        stream = tls.stream
        data = stream.add(seq, start)
        for held_seq, held in side.held:
            if held_seq != seq:  # the same start again: junk or this segment's first copy
                data += stream.add(held_seq, held)
        side.held = []
        side.held_bytes = 0
        return self._feed(key, tls, data, frame, ts_ns)

    # ---------------------------------------------------------------- TLS
    def _feed(
        self, key: bytes, tls: TlsDirection, data: bytes, frame: int, ts_ns: int
    ) -> list[Handshake]:
        tls.consumed += len(data)
        if tls.consumed > MAX_HANDSHAKE_STREAM:
            self.stats["tcp_handshake_stream_too_long"] += 1
            self._set_state(DONE)
            return self.flush()
        out: list[Handshake] = []
        from_client = key == self.client_key
        for event in tls.parser.feed(data):
            if from_client:
                out.extend(self._client_event(event, frame, ts_ns))
            else:
                out.extend(self._server_event(event, frame, ts_ns))
            if self.state is DONE:
                break
        return out

    def _client_event(self, event: object, frame: int, ts_ns: int) -> list[Handshake]:
        client_dec = self.client_dec
        if client_dec is not None and isinstance(event, ChangeCipherSpec | EncryptedRecord):
            return self._client_decrypt(client_dec, event)
        ends = self.ends
        assert ends is not None  # set with client_key, before any client event
        book = self.book
        if isinstance(event, HandshakeMessage):
            if event.msg_type != HANDSHAKE_CLIENT_HELLO:
                return []
            try:
                ch = parse_client_hello(event.body)
            except DissectError as err:
                self._error("client_hello", err, frame)
                return []
            self.stats["tcp_client_hellos"] += 1
            facts = ClientFacts.of(ch, "tcp")
            # the TLS began: no refusal can follow, and the row carries the ClientHello's frame
            self._close_connect()
            book.offer(
                Offer(
                    ends,
                    ts_ns,
                    frame,
                    "tcp",
                    facts,
                    hello_retry=book.retry,
                    connect=self.connect,
                    upgraded_from=self._upgraded_from(),
                )
            )
        elif isinstance(event, SSLv2ClientHello):
            self.stats["tcp_sslv2_client_hellos"] += 1
            self._close_connect()
            sslv2 = ClientFacts.of_sslv2(event.version)
            book.offer(
                Offer(
                    ends,
                    ts_ns,
                    frame,
                    "tcp",
                    sslv2,
                    connect=self.connect,
                    upgraded_from=self._upgraded_from(),
                )
            )
        elif isinstance(event, StreamError):
            self._error("client_stream", event.error, frame)
        return []

    def _server_event(self, event: object, frame: int, ts_ns: int) -> list[Handshake]:
        server_dec = self.server_dec
        if server_dec is not None and isinstance(event, EncryptedRecord):
            return self._server_decrypt(server_dec, event)
        book = self.book
        if self.server_only and not book.pending:
            return self._server_only_event(event, frame, ts_ns)
        if isinstance(event, HandshakeMessage):
            if event.msg_type != HANDSHAKE_SERVER_HELLO or not book.pending:
                return []
            try:
                sh = parse_server_hello(event.body)
            except DissectError as err:
                self._error("server_hello", err, frame)
                self._set_state(DONE)
                return self.flush()
            offer = book.pending[0]
            answer = server_hello_answer(offer, sh, frame=frame)
            if sh.is_hrr:
                book.retry = True
                return [book.answer(answer)]
            client = offer.client
            if self.keys is not None and client is not None and not client.sslv2:
                dec = tls_decryptor(self.keys, client.random, client.extensions, sh, self.stats)
                if dec is not None:
                    if isinstance(dec, Tls13ServerFlightDecryptor):
                        self.server_dec = dec
                    else:
                        self.client_dec = dec
                    book.await_decryption(answer)  # the record waits for the decrypted facts
                    self._set_state(DECRYPTING)
                    return []
            self._set_state(DONE)
            return [book.answer(answer), *self.flush()]
        if isinstance(event, AlertRecord):
            if not book.pending:
                return []
            if event.level != ALERT_LEVEL_FATAL:
                # a warning (e.g. 112 unrecognized_name) does not end the handshake
                self.stats["tcp_server_warning_alerts"] += 1
                return []
            self._set_state(DONE)
            return [book.answer(alert_answer(event.description, frame=frame)), *self.flush()]
        if isinstance(event, StreamError):
            self._error("server_stream", event.error, frame)
            self._set_state(DONE)
            return self.flush()
        return []

    def _server_only_event(self, event: object, frame: int, ts_ns: int) -> list[Handshake]:
        """The server's flight without a ClientHello before it: its ServerHello (or
        HelloRetryRequest, or fatal alert) is recorded with every ClientHello column None.
        A key log cannot help here: its secrets are looked up by the client random, which
        only the ClientHello carries (counted as ``tcp_server_only_keylog_unusable``)."""
        book = self.book
        unseen = Offer(
            self._ends(),
            ts_ns,
            frame,
            "tcp",
            None,
            hello_retry=book.retry,
            upgraded_from=self._upgraded_from(),
        )
        if isinstance(event, AlertRecord):
            if event.level != ALERT_LEVEL_FATAL:
                self.stats["tcp_server_warning_alerts"] += 1
                return []
            self._set_state(DONE)
            return [book.answer_unoffered(unseen, alert_answer(event.description, frame=frame))]
        if isinstance(event, StreamError):
            self._error("server_stream", event.error, frame)
            self._set_state(DONE)
            return []
        if not isinstance(event, HandshakeMessage):
            return []  # a ChangeCipherSpec (after a HelloRetryRequest, say)
        if event.msg_type != HANDSHAKE_SERVER_HELLO:
            # the flight began after its ServerHello (lost, or before the capture began)
            self.stats["tcp_server_flight_without_server_hello"] += 1
            self._set_state(NOT_TLS)
            return []
        try:
            sh = parse_server_hello(event.body)
        except DissectError as err:
            self._error("server_hello", err, frame)
            self._set_state(DONE)
            return []
        answer = server_hello_answer(unseen, sh, frame=frame)
        if sh.is_hrr:
            book.retry = True  # the next ServerHello answers the retried ClientHello
            return [book.answer_unoffered(unseen, answer)]
        if answer.selection is Selection.ENCRYPTED:
            self.stats["tcp_server_only_encrypted"] += 1
            if self.keys is not None:
                self.stats["tcp_server_only_keylog_unusable"] += 1
        self._set_state(DONE)
        return [book.answer_unoffered(unseen, answer)]

    def _ends(self) -> Endpoints:
        ends = self.ends
        if ends is None:  # set with client_key, before any event of either side
            raise RuntimeError("a TCP flow's endpoints are not known")
        return ends

    # ---------------------------------------------------------------- decryption stage
    def _server_decrypt(
        self, dec: Tls13ServerFlightDecryptor, event: EncryptedRecord
    ) -> list[Handshake]:
        offer, answer = self.book.settled_answer()
        for out in dec.feed_record(event.content_type, event.header, event.payload):
            if isinstance(out, StreamError):
                self.stats[f"tcp_decrypt_{out.error.reason}"] += 1
                return self._settle(with_note(answer, f"decrypt-failed: {out.error.reason}"))
            if isinstance(out, HandshakeMessage) and out.msg_type == HANDSHAKE_ENCRYPTED_EXTENSIONS:
                self.stats["tcp_decrypted_encrypted_extensions"] += 1
                return self._settle(encrypted_extensions_answer(offer, answer, out.body))
        return []

    def _client_decrypt(
        self, dec: Tls12HandshakeDecryptor, event: ChangeCipherSpec | EncryptedRecord
    ) -> list[Handshake]:
        if self.book.awaiting is None:
            return []
        _, answer = self.book.awaiting
        if isinstance(event, ChangeCipherSpec):
            outs = dec.feed_record(20, CCS_HEADER, b"\x01")
        else:
            outs = dec.feed_record(event.content_type, event.header, event.payload)
        for out in outs:
            if isinstance(out, StreamError):
                self.stats[f"tcp_decrypt_{out.error.reason}"] += 1
                return self._settle(with_note(answer, f"decrypt-failed: {out.error.reason}"))
            if isinstance(out, HandshakeMessage) and out.msg_type == HANDSHAKE_NEXT_PROTOCOL:
                try:
                    chosen = parse_next_protocol(out.body)
                except DissectError as err:
                    return self._settle(with_note(answer, f"next-protocol: {err.reason}"))
                self.stats["tcp_decrypted_next_protocol"] += 1
                return self._settle(replace(answer, npn_selected=chosen))
            if isinstance(out, HandshakeMessage) and out.msg_type == HANDSHAKE_FINISHED:
                return self._settle(answer)  # no NextProtocol: the client chose none
        return []

    def _settle(self, answer: Answer) -> list[Handshake]:
        """The awaited facts are in: the record leaves and the connection is done."""
        self.server_dec = self.client_dec = None
        self._set_state(DONE)
        return self.book.settle(answer)

    # ---------------------------------------------------------------- end
    def _error(self, where: str, err: DissectError, frame: int) -> None:
        self.stats[f"tcp_{where}_{err.reason}"] += 1
        self.errors.append(f"frame {frame}: {where}: {err}")

    def flush(self) -> list[Handshake]:
        """Records still waiting for an answer leave now, as ``unseen``."""
        self._close_connect()
        return self.book.flush()

    def abandon(self, *, at_end: bool) -> list[Handshake]:
        """The flow leaves the table before its facts are known (evicted, or ``at_end`` of
        the input): count what was left unfinished, then flush."""
        stats = self.stats
        if self.state is PROBING:
            if not at_end:
                stats["tcp_evicted_while_probing"] += 1
            elif not self.connect_refused and any(
                d is not None and d.held for d in (self.dir_a, self.dir_b)
            ):
                # data seen, no TLS found yet, budget not spent: say so rather than vanish
                stats["tcp_still_probing_at_end"] += 1
        elif not self.book.waiting and self.client_key is not None:
            client = self.dir_a if self.client_key == self.key else self.dir_b
            if client is not None and client.tls is not None and client.tls.parser.buffered:
                # a ClientHello begun but never completed (segments lost, or it stalled)
                stats["tcp_client_hello_incomplete"] += 1
        return self.flush()
