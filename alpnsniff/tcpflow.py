"""One TCP connection, from its first packet until its handshake facts are known.

Sans-I/O: :meth:`TcpConnection.on_segment` takes a decoded segment with its frame number and
time, and returns the :class:`Handshake` records it completed. Each direction is reassembled
(:mod:`alpnsniff.net.tcp`) and probed at segment starts for the beginning of TLS, so TLS is
found by its bytes on any port, after a STARTTLS or CONNECT preamble too, and never by port
number. Once the server has answered the (last) ClientHello, the connection is ``done`` and
the flow table forgets it.
"""

from __future__ import annotations

from .errors import DissectError
from .net.segment import Segment
from .net.tcp import StreamReassembler
from .pairing import (
    Endpoints,
    Offer,
    alert_answer,
    record,
    server_hello_answer,
    sslv2_answer,
)
from .records import Handshake
from .tls.detect import classify_stream_start
from .tls.hello import parse_client_hello, parse_server_hello
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
# Bytes of a direction kept while a TLS record header is incomplete at a segment start.
PROBE_PREFIX = 16
# A direction that stays inside one handshake longer than this is not a handshake we can use.
MAX_HANDSHAKE_STREAM = 256 * 1024

HANDSHAKE_CLIENT_HELLO = 1
HANDSHAKE_SERVER_HELLO = 2


class Direction:
    """One direction of a connection: reassembly, then TLS once it starts."""

    __slots__ = ("consumed", "parser", "prefix", "stream")

    def __init__(self) -> None:
        self.stream: StreamReassembler | None = None
        self.parser: TlsStreamParser | None = None
        self.prefix = b""  # a segment start too short to classify
        self.consumed = 0  # bytes fed to the TLS parser


class TcpConnection:
    """Handshake state of one TCP connection. ``key_a`` is the first direction seen."""

    __slots__ = (
        "client_key",
        "dirs",
        "done",
        "ended_early",
        "ends",
        "errors",
        "key_a",
        "last_ts",
        "not_tls",
        "pending",
        "probes_left",
        "retry",
        "stats",
    )

    def __init__(self, key_a: bytes, stats: dict[str, int]) -> None:
        self.key_a = key_a
        self.dirs: dict[bytes, Direction] = {}
        self.client_key: bytes | None = None  # the direction that sent the ClientHello (or SYN)
        self.ends: Endpoints | None = None
        self.pending: list[Offer] = []  # ClientHellos waiting for the server's answer
        self.retry = False  # a HelloRetryRequest was answered: the next ClientHello follows it
        self.probes_left = PROBE_SEGMENTS
        self.done = False  # facts known: forget this connection
        self.not_tls = False  # gave up: no TLS start seen within the probe budget
        self.ended_early = False
        self.last_ts = 0
        self.errors: list[str] = []
        self.stats = stats  # shared run counters

    # ---------------------------------------------------------------- input
    def on_segment(self, key: bytes, seg: Segment, frame: int, ts_ns: int) -> list[Handshake]:
        self.last_ts = ts_ns
        side = self.dirs.get(key)
        if side is None:
            side = self.dirs[key] = Direction()
        flags = seg.flags
        if flags & SYN:
            if side.stream is None:
                side.stream = StreamReassembler(seg.seq + 1)
            if not flags & ACK and self.client_key is None:
                self._set_client(key, seg)
            return []
        payload = seg.payload
        if not payload:
            return []
        if side.stream is None:
            side.stream = StreamReassembler(seg.seq)
        data = side.stream.add(seg.seq, payload)
        if not data:
            return []
        if side.parser is None:
            return self._probe(key, side, seg, data, frame, ts_ns)
        return self._feed(key, side, data, frame, ts_ns)

    def _set_client(self, key: bytes, seg: Segment) -> None:
        self.client_key = key
        self.ends = Endpoints(seg.ip_version, seg.src, seg.sport, seg.dst, seg.dport)

    def _probe(
        self, key: bytes, side: Direction, seg: Segment, data: bytes, frame: int, ts_ns: int
    ) -> list[Handshake]:
        if side.prefix:
            data = side.prefix + data
            side.prefix = b""
        kind = classify_stream_start(data)
        if kind is None:
            side.prefix = data[:PROBE_PREFIX]
            return []
        is_client_side = self.client_key is None or key == self.client_key
        if kind in ("tls-client-hello", "sslv2-client-hello") and not self.pending:
            if self.client_key != key:
                self._set_client(key, seg)
            side.parser = TlsStreamParser()
            return self._feed(key, side, data, frame, ts_ns)
        if kind in ("tls-handshake", "tls-alert") and self.pending and not is_client_side:
            side.parser = TlsStreamParser()
            return self._feed(key, side, data, frame, ts_ns)
        if not self.pending and data[:2] == b"\x17\x03":
            # TLS application data at a segment start: the handshake happened before the
            # capture began. Nothing to learn here.
            self.stats["tcp_tls_midstream"] += 1
            self.done = True
            return []
        if (
            self.pending
            and not is_client_side
            and len(data) >= 3
            and data[0] & 0x80
            and data[2] == 4
        ):
            # SSLv2 SERVER-HELLO answering an SSLv2-format ClientHello.
            self.done = True
            return [record(self.pending.pop(0), sslv2_answer(frame=frame))]
        self.probes_left -= 1
        if self.probes_left <= 0 and not self.pending:
            self.not_tls = True
        return []

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
                self._client_event(event, frame, ts_ns)
            else:
                out.extend(self._server_event(event, frame))
            if self.done:
                break
        return out

    # ---------------------------------------------------------------- client side
    def _client_event(self, event: object, frame: int, ts_ns: int) -> None:
        ends = self.ends
        assert ends is not None
        if isinstance(event, HandshakeMessage):
            if event.msg_type != HANDSHAKE_CLIENT_HELLO:
                return
            try:
                ch = parse_client_hello(event.body)
            except DissectError as err:
                self._error("client_hello", err, frame)
                return
            self.stats["tcp_client_hellos"] += 1
            self.pending.append(Offer(ends, ts_ns, frame, "tcp", ch, hello_retry=self.retry))
        elif isinstance(event, SSLv2ClientHello):
            self.stats["tcp_sslv2_client_hellos"] += 1
            self.pending.append(Offer(ends, ts_ns, frame, "tcp", None, event.version))
        elif isinstance(event, StreamError):
            self._error("client_stream", event.error, frame)

    # ---------------------------------------------------------------- server side
    def _server_event(self, event: object, frame: int) -> list[Handshake]:
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
            done = record(offer, server_hello_answer(offer, sh, frame=frame))
            if sh.is_hrr:
                self.retry = True
                return [done]
            self.done = True
            return [done, *self.flush()]
        if isinstance(event, AlertRecord):
            if not self.pending:
                return []
            self.done = True
            answer = alert_answer(event.description, frame=frame)
            return [record(self.pending.pop(0), answer), *self.flush()]
        if isinstance(event, StreamError):
            self._error("server_stream", event.error, frame)
            self.done = True
            return self.flush()
        if isinstance(event, ChangeCipherSpec | EncryptedRecord):
            return []
        return []

    # ---------------------------------------------------------------- end
    def _error(self, where: str, err: DissectError, frame: int) -> None:
        self.stats[f"tcp_{where}_{err.reason}"] += 1
        self.errors.append(f"frame {frame}: {where}: {err}")

    def flush(self) -> list[Handshake]:
        """Records still waiting for an answer leave now, as ``unseen``."""
        waiting = self.pending
        self.pending = []
        if waiting:
            self.stats["tcp_unanswered_client_hellos"] += len(waiting)
        return [record(offer) for offer in waiting]
