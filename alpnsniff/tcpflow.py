"""One TCP connection, from its first packet until its handshake facts are known.

Sans-I/O: :meth:`TcpConnection.on_segment` takes a decoded segment with its frame number and
time, and returns the :class:`Handshake` records it completed. Each direction is reassembled
(:mod:`alpnsniff.net.tcp`) and probed at segment starts for the beginning of TLS, so TLS is
found by its bytes on any port, after a STARTTLS or CONNECT preamble too, and never by port
number. Once the server has answered the (last) ClientHello, the connection is ``done`` and
the flow table forgets it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from .errors import DissectError
from .keys.tls12 import Tls12HandshakeDecryptor, parse_next_protocol
from .keys.tls13 import Tls13ServerFlightDecryptor
from .keystore import KeyStore
from .net.segment import Segment
from .net.tcp import StreamReassembler
from .pairing import (
    Answer,
    Endpoints,
    Offer,
    alert_answer,
    encrypted_extensions_answer,
    record,
    server_hello_answer,
    sslv2_answer,
    with_note,
)
from .records import Handshake
from .tls.detect import NOT_TLS, classify_stream_start
from .tls.hello import ServerHello, parse_client_hello, parse_server_hello
from .tls.stream import (
    AlertRecord,
    ChangeCipherSpec,
    EncryptedRecord,
    HandshakeMessage,
    SSLv2ClientHello,
    StreamError,
    TlsStreamParser,
)

SYN = 0x02
ACK = 0x10

# Segments with payload inspected at their start before a connection is declared not TLS.
# A STARTTLS exchange (SMTP banner, EHLO, capabilities, STARTTLS, 220) or an HTTP CONNECT
# takes 4-10 segments before the ClientHello; more than this is bulk data of another protocol.
PROBE_SEGMENTS = 24
# A segment start shorter than this may be the first bytes of a record split across segments.
PROBE_PREFIX = 16
# Segments held per direction while probing, so that the start of a ClientHello arriving
# after its continuation (reordering) or after junk at the same sequence number (bare ACKs
# with 2 bytes, as some stacks send) is reassembled whole. A ClientHello spans 1-5 segments.
PROBE_HOLD_SEGMENTS = 8
PROBE_HOLD_BYTES = 16 * 1024
# Segment starts of protocols that never switch to TLS on the same connection: SSH and
# HTTP/1 requests other than CONNECT (RFC 2817's Upgrade to TLS is not seen in practice).
# Seeing one ends probing at once instead of after PROBE_SEGMENTS segments.
PLAINTEXT_STARTS = (
    b"SSH-",
    b"GET /",
    b"POST /",
    b"HEAD /",
    b"PUT /",
    b"DELETE /",
    b"OPTIONS /",
    b"PATCH /",
    b"GET http://",
    b"POST http://",
)
# HAProxy PROXY protocol v2 signature (v1 is the text line "PROXY ...\r\n").
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PROXY_V1_MAX = 107  # the v1 line is at most 107 bytes with its CRLF
# A direction that stays inside one handshake longer than this is not a handshake we can use.
MAX_HANDSHAKE_STREAM = 256 * 1024

ALERT_LEVEL_FATAL = 2

HANDSHAKE_CLIENT_HELLO = 1
HANDSHAKE_SERVER_HELLO = 2
HANDSHAKE_ENCRYPTED_EXTENSIONS = 8
HANDSHAKE_FINISHED = 20
HANDSHAKE_NEXT_PROTOCOL = 67
TLS13 = 0x0304
EXT_ENCRYPT_THEN_MAC = 22
CCS_HEADER = b"\x14\x03\x03\x00\x01"


class Direction:
    """One direction of a connection: probing at segment starts, then reassembly and TLS."""

    __slots__ = ("consumed", "held", "held_bytes", "maybe_seq", "parser", "stream")

    def __init__(self) -> None:
        self.stream: StreamReassembler | None = None  # from the first byte of TLS on
        self.parser: TlsStreamParser | None = None
        # Segments seen while probing, kept (bounded) so that a ClientHello whose segments
        # arrive out of order, or after junk at the same sequence number, is still whole.
        self.held: list[tuple[int, bytes]] = []
        self.held_bytes = 0
        self.consumed = 0  # bytes fed to the TLS parser
        self.maybe_seq: int | None = None  # a held segment too short to classify alone


class TcpConnection:
    """Handshake state of one TCP connection. ``key_a`` is the first direction seen."""

    __slots__ = (
        "awaiting",
        "client_dec",
        "client_isn",
        "client_key",
        "dirs",
        "done",
        "ends",
        "errors",
        "key_a",
        "keys",
        "last_ts",
        "not_tls",
        "pending",
        "probes_left",
        "retry",
        "server_dec",
        "stats",
    )

    def __init__(self, key_a: bytes, stats: Counter[str], keys: KeyStore | None = None) -> None:
        self.key_a = key_a
        self.dirs: dict[bytes, Direction] = {}
        self.client_key: bytes | None = None  # the direction that sent the ClientHello (or SYN)
        self.client_isn = -1  # the client's SYN sequence number, -1 when no SYN was seen
        self.ends: Endpoints | None = None
        self.pending: list[Offer] = []  # ClientHellos waiting for the server's answer
        self.retry = False  # a HelloRetryRequest was answered: the next ClientHello follows it
        self.probes_left = PROBE_SEGMENTS
        self.done = False  # facts known: forget this connection
        self.not_tls = False  # gave up: no TLS start seen within the probe budget
        self.last_ts = 0
        self.errors: list[str] = []
        self.stats = stats  # shared run counters
        self.keys = keys  # the run's secrets (None: no key log, no DSB: no decryption)
        self.awaiting: tuple[Offer, Answer] | None = None  # answered, waiting for decryption
        self.server_dec: Tls13ServerFlightDecryptor | None = None
        self.client_dec: Tls12HandshakeDecryptor | None = None

    @property
    def probing(self) -> bool:
        """No TLS found yet in either direction."""
        return all(d.parser is None for d in self.dirs.values())

    # ---------------------------------------------------------------- input
    def on_segment(self, key: bytes, seg: Segment, frame: int, ts_ns: int) -> list[Handshake]:
        self.last_ts = ts_ns
        side = self.dirs.get(key)
        if side is None:
            side = self.dirs[key] = Direction()
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
        if side.parser is not None:
            assert side.stream is not None
            data = side.stream.add(seq, payload)
            return self._feed(key, side, data, frame, ts_ns) if data else []
        return self._probe(key, side, seg, seq, payload, frame, ts_ns)

    def _set_client(self, key: bytes, seg: Segment) -> None:
        self.client_key = key
        self.ends = Endpoints(seg.ip_version, seg.src, seg.sport, seg.dst, seg.dport)

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
        if payload[:6] == b"PROXY " or payload[:12] == PROXY_V2_SIGNATURE:
            cut = proxy_header_length(payload)
            if cut:
                self.stats["tcp_proxy_protocol_headers"] += 1
                start = payload[cut:]
                seq = (seq + cut) & 0xFFFFFFFF
        kind = classify_stream_start(start)
        if kind is None:
            # too short to tell: maybe the first bytes of a record split across segments
            kind = self._classify_with_held(side, seq, start)
            if kind is None:
                side.maybe_seq = seq
        elif kind == NOT_TLS and side.maybe_seq is not None:
            # an earlier short segment may have begun a record this segment continues
            self._hold(side, seq, payload)
            maybe = side.maybe_seq
            first = next((p for q, p in side.held if q == maybe), b"")
            kind = self._classify_with_held(side, maybe, first)
            if kind is not None and kind != NOT_TLS:
                seq, start = maybe, first
            else:
                side.held.pop()
                side.held_bytes -= len(payload)
                kind = NOT_TLS
        is_client_side = self.client_key is None or key == self.client_key
        if kind in ("tls-client-hello", "sslv2-client-hello") and not self.pending:
            if self.client_key != key:
                self._set_client(key, seg)
            return self._start_tls(key, side, seq, start, frame, ts_ns)
        if kind in ("tls-handshake", "tls-alert") and self.pending and not is_client_side:
            return self._start_tls(key, side, seq, start, frame, ts_ns)
        if kind in ("tls-handshake", "tls-alert") and not self.pending and not side.held:
            # the server's flight, but no ClientHello before it: the capture started late or
            # sees one direction only. A record needs the ClientHello: count and forget.
            self.stats["tcp_server_hello_without_client_hello"] += 1
            self.done = True
            return []
        if not self.pending and start[:2] == b"\x17\x03" and not side.held:
            # TLS application data at the first segment seen: the handshake happened before
            # the capture began. Nothing to learn here.
            self.stats["tcp_tls_midstream"] += 1
            self.done = True
            return []
        if (
            self.pending
            and not is_client_side
            and len(start) >= 3
            and start[0] & 0x80
            and start[2] == 4
        ):
            # SSLv2 SERVER-HELLO answering an SSLv2-format ClientHello.
            self.done = True
            return [record(self.pending.pop(0), sslv2_answer(frame=frame))]
        if not self.pending and start.startswith(PLAINTEXT_STARTS):
            # SSH or a plain HTTP request: a protocol that never turns into TLS later
            # (HTTP CONNECT, which can, is not among these)
            self.stats["tcp_plaintext_protocol"] += 1
            self.not_tls = True
            return []
        self._hold(side, seq, payload)
        self.probes_left -= 1
        if self.probes_left <= 0 and not self.pending:
            self.not_tls = True
        return []

    def _hold(self, side: Direction, seq: int, payload: bytes) -> None:
        side.held.append((seq, payload))
        side.held_bytes += len(payload)
        while len(side.held) > PROBE_HOLD_SEGMENTS or side.held_bytes > PROBE_HOLD_BYTES:
            side.held_bytes -= len(side.held.pop(0)[1])

    def _classify_with_held(self, side: Direction, seq: int, start: bytes) -> str | None:
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
        stream = side.stream = StreamReassembler(seq)
        side.parser = TlsStreamParser()
        data = stream.add(seq, start)
        for held_seq, held in side.held:
            if held_seq != seq:  # the same start again: junk or this segment's first copy
                data += stream.add(held_seq, held)
        side.held = []
        side.held_bytes = 0
        return self._feed(key, side, data, frame, ts_ns)

    def _feed(
        self, key: bytes, side: Direction, data: bytes, frame: int, ts_ns: int
    ) -> list[Handshake]:
        parser = side.parser
        assert parser is not None
        side.consumed += len(data)
        if side.consumed > MAX_HANDSHAKE_STREAM:
            self.stats["tcp_handshake_stream_too_long"] += 1
            self.done = True
            return self.flush()
        out: list[Handshake] = []
        from_client = key == self.client_key
        for event in parser.feed(data):
            if from_client:
                out.extend(self._client_event(event, frame, ts_ns))
            else:
                out.extend(self._server_event(event, frame))
            if self.done:
                break
        return out

    # ---------------------------------------------------------------- client side
    def _client_event(self, event: object, frame: int, ts_ns: int) -> list[Handshake]:
        ends = self.ends
        assert ends is not None
        if self.client_dec is not None and isinstance(event, ChangeCipherSpec | EncryptedRecord):
            return self._client_decrypt(event, frame)
        if isinstance(event, HandshakeMessage):
            if event.msg_type != HANDSHAKE_CLIENT_HELLO:
                return []
            try:
                ch = parse_client_hello(event.body)
            except DissectError as err:
                self._error("client_hello", err, frame)
                return []
            self.stats["tcp_client_hellos"] += 1
            self.pending.append(Offer(ends, ts_ns, frame, "tcp", ch, hello_retry=self.retry))
        elif isinstance(event, SSLv2ClientHello):
            self.stats["tcp_sslv2_client_hellos"] += 1
            self.pending.append(Offer(ends, ts_ns, frame, "tcp", None, event.version))
        elif isinstance(event, StreamError):
            self._error("client_stream", event.error, frame)
        return []

    # ---------------------------------------------------------------- server side
    def _server_event(self, event: object, frame: int) -> list[Handshake]:
        if self.server_dec is not None and isinstance(event, EncryptedRecord):
            return self._server_decrypt(event, frame)
        if isinstance(event, HandshakeMessage):
            if event.msg_type != HANDSHAKE_SERVER_HELLO or not self.pending:
                return []
            try:
                sh = parse_server_hello(event.body)
            except DissectError as err:
                self._error("server_hello", err, frame)
                self.done = True
                return self.flush()
            offer = self.pending.pop(0)
            answer = server_hello_answer(offer, sh, frame=frame)
            if sh.is_hrr:
                self.retry = True
                return [record(offer, answer)]
            if self.keys is not None and self._start_decryption(offer, sh):
                self.awaiting = (offer, answer)  # the record waits for the decrypted facts
                return []
            self.done = True
            return [record(offer, answer), *self.flush()]
        if isinstance(event, AlertRecord):
            if not self.pending:
                return []
            if event.level != ALERT_LEVEL_FATAL:
                # a warning (e.g. 112 unrecognized_name) does not end the handshake
                self.stats["tcp_server_warning_alerts"] += 1
                return []
            self.done = True
            answer = alert_answer(event.description, frame=frame)
            return [record(self.pending.pop(0), answer), *self.flush()]
        if isinstance(event, StreamError):
            self._error("server_stream", event.error, frame)
            self.done = True
            return self.flush()
        return []

    # ---------------------------------------------------------------- decryption stage
    def _start_decryption(self, offer: Offer, sh: ServerHello) -> bool:
        """With keys for this ClientHello, decrypt what hides the rest of the answer."""
        assert self.keys is not None and offer.hello is not None
        secrets = self.keys.secrets_for(offer.hello.random)
        stats = self.stats
        if secrets is None:
            stats["keys_not_in_keylog"] += 1
            return False
        try:
            if sh.selected_version == TLS13:
                secret = secrets.server_handshake_traffic_secret
                if secret is None:
                    stats["keys_no_server_handshake_secret"] += 1
                    return False
                self.server_dec = Tls13ServerFlightDecryptor(sh.cipher_suite, secret)
                return True
            if sh.npn_protocols and secrets.master_secret is not None:
                etm = EXT_ENCRYPT_THEN_MAC in offer.hello.extensions and (
                    EXT_ENCRYPT_THEN_MAC in sh.extensions
                )
                self.client_dec = Tls12HandshakeDecryptor(
                    sh.cipher_suite,
                    secrets.master_secret,
                    offer.hello.random,
                    sh.random,
                    version=sh.selected_version,
                    encrypt_then_mac=etm,
                )
                return True
        except DissectError as err:
            stats[f"keys_cannot_decrypt_{err.reason}"] += 1
        return False

    def _server_decrypt(self, event: EncryptedRecord, frame: int) -> list[Handshake]:
        assert self.server_dec is not None and self.awaiting is not None
        offer, answer = self.awaiting
        for out in self.server_dec.feed_record(event.content_type, event.header, event.payload):
            if isinstance(out, StreamError):
                self.stats[f"tcp_decrypt_{out.error.reason}"] += 1
                return self._settle(with_note(answer, f"decrypt-failed: {out.error.reason}"))
            if isinstance(out, HandshakeMessage) and out.msg_type == HANDSHAKE_ENCRYPTED_EXTENSIONS:
                self.stats["tcp_decrypted_encrypted_extensions"] += 1
                return self._settle(encrypted_extensions_answer(offer, answer, out.body))
        return []

    def _client_decrypt(
        self, event: ChangeCipherSpec | EncryptedRecord, frame: int
    ) -> list[Handshake]:
        assert self.client_dec is not None
        if self.awaiting is None:
            return []
        _, answer = self.awaiting
        if isinstance(event, ChangeCipherSpec):
            outs = self.client_dec.feed_record(20, CCS_HEADER, b"\x01")
        else:
            outs = self.client_dec.feed_record(event.content_type, event.header, event.payload)
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
        assert self.awaiting is not None
        offer = self.awaiting[0]
        self.awaiting = None
        self.server_dec = self.client_dec = None
        self.done = True
        return [record(offer, answer), *self.flush()]

    # ---------------------------------------------------------------- end
    def _error(self, where: str, err: DissectError, frame: int) -> None:
        self.stats[f"tcp_{where}_{err.reason}"] += 1
        self.errors.append(f"frame {frame}: {where}: {err}")

    def flush(self) -> list[Handshake]:
        """Records still waiting for an answer leave now, as ``unseen``."""
        out: list[Handshake] = []
        if self.awaiting is not None:
            offer, answer = self.awaiting
            self.awaiting = None
            self.stats["tcp_decryption_unfinished"] += 1
            out.append(record(offer, with_note(answer, "keys-given-but-flight-not-seen")))
        waiting = self.pending
        self.pending = []
        if waiting:
            self.stats["tcp_unanswered_client_hellos"] += len(waiting)
        out.extend(record(offer) for offer in waiting)
        return out


def proxy_header_length(data: bytes) -> int:
    """Length of a PROXY protocol v1/v2 header at the start of ``data`` (0: none)."""
    if data[:6] == b"PROXY ":
        end = data.find(b"\r\n", 0, PROXY_V1_MAX)
        return end + 2 if end > 0 else 0
    if data[:12] == PROXY_V2_SIGNATURE and len(data) >= 16:
        return 16 + (data[14] << 8 | data[15])
    return 0
