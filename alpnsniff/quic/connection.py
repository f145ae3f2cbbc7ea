"""Per-connection QUIC Initial state: datagrams in, hello messages and closes out.

Sans-I/O: the caller (the flow table) owns one :class:`QuicConnection` per UDP flow and
feeds it each datagram with its direction and timestamp; :meth:`receive_datagram`
returns the events that datagram completed. It never raises for wire bytes: whatever
cannot be read becomes a :class:`QuicSkipped` event carrying the error's ``reason``.

Keys (RFC 9001 §5.2): both directions' Initial keys come from the DCID of the client's
first Initial of the attempt, for every version the connection uses (compatible version
negotiation switches v1 → v2 with the same DCID). A Retry starts a new attempt whose DCID
is the Retry's SCID; after a Version Negotiation the client starts over too.

Rather than trusting either packet, a client Initial that fails to open with the current
keys is retried with keys from its own DCID: if that works, a new attempt has begun (this
also covers a new connection reusing the 5-tuple). A packet whose version differs from
the attempt's first one is also tried with the first version's keys (aioquic 1.7 does
that after compatible version negotiation; tshark 4.0 cannot open those packets).

Duplicates: CRYPTO bytes seen before add nothing, so a retransmitted ClientHello is not
emitted again; neither is a ClientHello identical to the previous attempt's (quic-go
resends the same one after a Retry). A client that builds a new ClientHello for a new
attempt (aioquic after a Retry, any client after Version Negotiation) gets a new
:class:`ClientHelloEvent` with the next ``attempt`` number.
"""

from __future__ import annotations

from dataclasses import dataclass

from alpnsniff.errors import DissectError
from alpnsniff.quic.crypto_stream import CryptoReassembler
from alpnsniff.quic.frames import (
    ConnectionClose,
    parse_google_initial_frames,
    parse_initial_frames,
)
from alpnsniff.quic.initial import (
    DecryptError,
    PacketKeys,
    initial_keys,
    open_initial,
    verify_retry,
)
from alpnsniff.quic.packets import (
    Junk,
    LongHeaderPacket,
    RetryPacket,
    VersionNegotiationPacket,
    split_datagram,
)
from alpnsniff.quic.versions import LongPacketType, version_info

#: TLS HandshakeType values expected first in each direction's Initial stream.
CLIENT_HELLO = 1
SERVER_HELLO = 2

#: Initial key sets cached per direction. A connection uses one version, two with
#: compatible version negotiation; a peer cycling through the 65536 reserved 0x?a?a?a?a
#: versions must not grow the cache, so it is emptied when full (keys are recomputable).
MAX_KEY_VERSIONS = 4

SKIP_NO_CLIENT_INITIAL = "quic-server-initial-before-client"
SKIP_NOT_A_HELLO = "quic-crypto-not-a-hello"
SKIP_VN_FROM_CLIENT = "quic-vn-from-client"
SKIP_RETRY_FROM_CLIENT = "quic-retry-from-client"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientHelloEvent:
    """A complete ClientHello (TLS handshake message type 1, 4-byte header included)."""

    message: bytes
    version: int
    #: The client's first DCID of the attempt: the Initial keys' input.
    original_dcid: bytes
    #: The client's Source Connection ID.
    scid: bytes
    #: Timestamp of the datagram that completed the message.
    ts_ns: int
    #: 1 for the first attempt, +1 after each Retry or Version Negotiation restart.
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHelloEvent:
    """A complete ServerHello or HelloRetryRequest (TLS handshake message type 2)."""

    message: bytes
    version: int
    original_dcid: bytes
    #: The server's Source Connection ID.
    scid: bytes
    ts_ns: int
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionCloseEvent:
    """A CONNECTION_CLOSE frame in an Initial (e.g. 0x178: TLS alert 120, no ALPN match)."""

    close: ConnectionClose
    from_client: bool
    version: int
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryEvent:
    """The server sent a Retry; the client's next Initial uses ``scid`` as its DCID."""

    version: int
    scid: bytes
    token: bytes
    #: Whether the Retry Integrity Tag matches the client's original DCID; None when it
    #: could not be checked (no client Initial seen, or a draft without a tag).
    integrity_ok: bool | None
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionNegotiationEvent:
    """The server does not speak the client's version; these are the ones it offers."""

    versions: tuple[int, ...]
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QuicSkipped:
    """Something that could not be read, to be counted under ``reason`` (never silent)."""

    reason: str
    detail: str
    from_client: bool
    ts_ns: int


QuicEvent = (
    ClientHelloEvent
    | ServerHelloEvent
    | ConnectionCloseEvent
    | RetryEvent
    | VersionNegotiationEvent
    | QuicSkipped
)


class _Direction:
    """One side's Initial-space state within one attempt."""

    __slots__ = ("keys", "largest_pn", "last_close", "read_offset", "stream")

    def __init__(self) -> None:
        #: Initial keys by version (bounded by :data:`MAX_KEY_VERSIONS`).
        self.keys: dict[int, PacketKeys] = {}
        self.largest_pn: int | None = None
        self.stream = CryptoReassembler()
        #: Stream offset of the next handshake message to hand out.
        self.read_offset = 0
        #: The last CONNECTION_CLOSE reported, so that retransmissions are not repeated.
        self.last_close: ConnectionClose | None = None


class QuicConnection:
    """The Initial-space view of one QUIC connection, fed datagram by datagram."""

    __slots__ = (
        "_client",
        "_last_client_hello",
        "_odcid",
        "_reported",
        "_server",
        "_version",
        "attempt",
    )

    def __init__(self) -> None:
        #: Attempt number: 0 before any client Initial, then 1, 2, …
        self.attempt = 0
        self._odcid: bytes | None = None
        #: Version of the client's first Initial in this attempt.
        self._version: int | None = None
        self._client = _Direction()
        self._server = _Direction()
        self._last_client_hello: bytes | None = None
        #: Stream error reasons already reported (each once per attempt and direction).
        self._reported: set[tuple[bool, str]] = set()

    @property
    def original_dcid(self) -> bytes | None:
        """The DCID the current attempt's Initial keys come from (None before any)."""
        return self._odcid

    @property
    def client_opened(self) -> bool:
        """A client Initial of this attempt decrypted (its packet number is known)."""
        return self._client.largest_pn is not None

    @property
    def buffered(self) -> int:
        """CRYPTO bytes held for both directions of this attempt."""
        return self._client.stream.buffered + self._server.stream.buffered

    def receive_datagram(
        self, datagram: bytes, *, from_client: bool, ts_ns: int
    ) -> list[QuicEvent]:
        """Process one UDP payload; return the events it completed, in order."""
        events: list[QuicEvent] = []
        try:
            packets = split_datagram(datagram)
        except DissectError as err:
            return [
                QuicSkipped(
                    reason=err.reason, detail=str(err), from_client=from_client, ts_ns=ts_ns
                )
            ]
        for packet in packets:
            if isinstance(packet, LongHeaderPacket):
                if packet.packet_type is LongPacketType.INITIAL:
                    self._on_initial(packet, from_client, ts_ns, events)
            elif isinstance(packet, RetryPacket):
                self._on_retry(packet, from_client, ts_ns, events)
            elif isinstance(packet, VersionNegotiationPacket):
                if from_client:
                    events.append(_skip(SKIP_VN_FROM_CLIENT, "", from_client, ts_ns))
                else:
                    events.append(VersionNegotiationEvent(versions=packet.versions, ts_ns=ts_ns))
                    self._new_attempt(None)
            elif isinstance(packet, Junk):
                events.append(_skip(packet.reason, packet.detail, from_client, ts_ns))
        return events

    # ------------------------------------------------------------------ internals

    def _new_attempt(self, odcid: bytes | None) -> None:
        self._odcid = odcid
        self._version = None
        self._client = _Direction()
        self._server = _Direction()
        self._reported.clear()
        if odcid is not None:
            self.attempt += 1

    def _keys(self, side: _Direction, version: int, *, server: bool) -> PacketKeys:
        keys = side.keys.get(version)
        if keys is None:
            if self._odcid is None:
                raise DecryptError("no client Initial yet: no keys", layer="quic")
            keys = initial_keys(version, self._odcid, server=server)
            if len(side.keys) >= MAX_KEY_VERSIONS:
                side.keys.clear()
            side.keys[version] = keys
        return keys

    def _open(self, packet: LongHeaderPacket, from_client: bool) -> tuple[int, bytes]:
        """Open a client or server Initial, trying the few keys that can explain it."""
        if from_client and self._odcid is None:
            self._new_attempt(packet.dcid)
        if from_client and self._version is None:
            self._version = packet.version
        side = self._client if from_client else self._server
        server = not from_client
        try:
            return open_initial(
                packet, self._keys(side, packet.version, server=server), largest_pn=side.largest_pn
            )
        except DecryptError as err:
            failure = err
        original = self._version
        if original is not None and original != packet.version:
            # After compatible version negotiation aioquic (1.7) keeps protecting its
            # Initials with the original version's keys under the new version number.
            try:
                keys = self._keys(side, original, server=server)
                return open_initial(packet, keys, largest_pn=side.largest_pn)
            except DecryptError:
                pass
        if from_client and packet.dcid != self._odcid:
            # A client Initial under a DCID that is not the attempt's: a restart after a
            # Retry or a Version Negotiation, or a new connection on the same 5-tuple.
            fresh = initial_keys(packet.version, packet.dcid, server=False)
            try:
                result = open_initial(packet, fresh, largest_pn=None)
            except DecryptError:
                raise failure from None
            self._new_attempt(packet.dcid)
            self._version = packet.version
            self._client.keys[packet.version] = fresh
            return result
        raise failure

    def _on_initial(
        self, packet: LongHeaderPacket, from_client: bool, ts_ns: int, events: list[QuicEvent]
    ) -> None:
        if not from_client and self._odcid is None:
            events.append(_skip(SKIP_NO_CLIENT_INITIAL, "", from_client, ts_ns))
            return
        try:
            pn, plaintext = self._open(packet, from_client)
            info = version_info(packet.version)
            if info is not None and info.google_frames:
                frames = parse_google_initial_frames(plaintext)
            else:
                frames = parse_initial_frames(plaintext)
        except DissectError as err:
            events.append(_skip(err.reason, str(err), from_client, ts_ns))
            return
        side = self._client if from_client else self._server
        if side.largest_pn is None or pn > side.largest_pn:
            side.largest_pn = pn
        for frame in frames.crypto:
            side.stream.add(frame.offset, frame.data)
        if frames.close is not None and frames.close != side.last_close:
            side.last_close = frames.close
            events.append(
                ConnectionCloseEvent(
                    close=frames.close, from_client=from_client, version=packet.version, ts_ns=ts_ns
                )
            )
        if frames.crypto:
            self._drain(side, packet, from_client, ts_ns, events)

    def _drain(
        self,
        side: _Direction,
        packet: LongHeaderPacket,
        from_client: bool,
        ts_ns: int,
        events: list[QuicEvent],
    ) -> None:
        """Hand out every handshake message the stream has completed."""
        stream = side.stream
        expected = CLIENT_HELLO if from_client else SERVER_HELLO
        while (message := stream.handshake_message(side.read_offset)) is not None:
            side.read_offset += len(message)
            if message[0] != expected:
                self._report(
                    SKIP_NOT_A_HELLO, f"handshake type {message[0]}", from_client, ts_ns, events
                )
                continue
            odcid = self._odcid or b""
            if from_client:
                if message == self._last_client_hello:
                    continue  # the same ClientHello resent after a Retry
                self._last_client_hello = message
                events.append(
                    ClientHelloEvent(
                        message=message,
                        version=packet.version,
                        original_dcid=odcid,
                        scid=packet.scid,
                        ts_ns=ts_ns,
                        attempt=self.attempt,
                    )
                )
            else:
                events.append(
                    ServerHelloEvent(
                        message=message,
                        version=packet.version,
                        original_dcid=odcid,
                        scid=packet.scid,
                        ts_ns=ts_ns,
                        attempt=self.attempt,
                    )
                )
        if stream.error is not None:
            self._report(
                stream.error, f"at stream offset {side.read_offset}", from_client, ts_ns, events
            )

    def _report(
        self, reason: str, detail: str, from_client: bool, ts_ns: int, events: list[QuicEvent]
    ) -> None:
        if (from_client, reason) not in self._reported:
            self._reported.add((from_client, reason))
            events.append(_skip(reason, detail, from_client, ts_ns))

    def _on_retry(
        self, packet: RetryPacket, from_client: bool, ts_ns: int, events: list[QuicEvent]
    ) -> None:
        if from_client:
            events.append(_skip(SKIP_RETRY_FROM_CLIENT, "", from_client, ts_ns))
            return
        ok = verify_retry(packet, self._odcid) if self._odcid is not None else None
        events.append(
            RetryEvent(
                version=packet.version,
                scid=packet.scid,
                token=packet.token,
                integrity_ok=ok,
                ts_ns=ts_ns,
            )
        )
        self._new_attempt(packet.scid)


def _skip(reason: str, detail: str, from_client: bool, ts_ns: int) -> QuicSkipped:
    return QuicSkipped(reason=reason, detail=detail, from_client=from_client, ts_ns=ts_ns)
