"""Handshake message reassembly over decrypted records (TLS 1.2 and 1.3 alike).

Handshake messages (RFC 8446 §4, RFC 5246 §7.4: type, uint24 length, body) may span
records and records may hold several. :class:`HandshakeAssembler` takes each record's
decrypted handshake bytes in order and returns the messages they complete, up to and
including Finished, after which the keys change (RFC 8446 §5.1) and it takes no more.
A message longer than the limit is passed over without being buffered, and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Final

from alpnsniff.errors import DissectError, Malformed
from alpnsniff.tls.events import AlertRecord, HandshakeMessage, StreamError

__all__ = ["HT_FINISHED", "HandshakeAssembler", "RecordDecryptor"]

#: RFC 8446 §4 / RFC 5246 §7.4: HandshakeType finished.
HT_FINISHED: Final = 20
HEADER_LENGTH: Final = 4


class HandshakeAssembler:
    """Messages out of a sequence of handshake fragments; stops after Finished."""

    __slots__ = ("_buf", "_max", "_skip", "_version", "finished", "layer", "stats")

    def __init__(self, max_message: int, stats: Counter[str], layer: str) -> None:
        self._buf = bytearray()  # an incomplete message
        self._version = 0  # record version where the message in _buf started
        self._skip = 0  # bytes left of a message over the limit, passed over unbuffered
        self._max = max_message
        #: True once Finished was handed out.
        self.finished = False
        self.stats = stats
        self.layer = layer

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete message held."""
        return len(self._buf)

    @property
    def in_message(self) -> bool:
        """True while a message is incomplete (an alert may not come now)."""
        return bool(self._buf) or self._skip > 0

    def clear(self) -> None:
        self._buf = bytearray()
        self._skip = 0

    def add(
        self, content: bytes, version: int, where: str, emit: Callable[[HandshakeMessage], None]
    ) -> None:
        """One record's handshake bytes; ``emit`` each message they complete, in order.

        Raises :class:`Malformed` for bytes after Finished in the same record (a message
        may not span a key change, RFC 8446 §5.1), after emitting what came before.
        """
        if self._skip:
            used = min(self._skip, len(content))
            self._skip -= used
            content = content[used:]
            if not content:
                return
        buf = self._buf
        if not buf:
            self._version = version
        buf += content
        start = 0
        have = len(buf)
        while have - start >= HEADER_LENGTH:
            msg_type = buf[start]
            length = (buf[start + 1] << 16) | (buf[start + 2] << 8) | buf[start + 3]
            end = start + HEADER_LENGTH + length
            if length > self._max:
                self.stats["messages_too_large"] += 1
                if end <= have:
                    start = end
                    continue
                self._skip = end - have
                start = have
                break
            if end > have:
                break
            emit(HandshakeMessage(msg_type, bytes(buf[start + HEADER_LENGTH : end]), self._version))
            self.stats["messages"] += 1
            self._version = version
            start = end
            if msg_type == HT_FINISHED:
                self.finished = True
                break
        if start:
            del buf[:start]
        if self.finished and buf:
            extra = len(buf)
            self._buf = bytearray()
            raise Malformed(
                f"{where}: {extra} bytes after Finished (a message may not span a key change)",
                layer=self.layer,
            )


RecordEvent = HandshakeMessage | AlertRecord | StreamError


class RecordDecryptor:
    """What the TLS 1.2 and 1.3 record decryptors share: feed records in order, get the
    handshake messages they complete; the first error stops it (returned once as a
    StreamError after the messages before it); nothing is taken after Finished.

    Subclasses set ``_assembler``, ``stats`` and ``error`` and implement :meth:`_record`.
    """

    _assembler: HandshakeAssembler
    stats: Counter[str]
    error: DissectError | None

    @property
    def done(self) -> bool:
        """True once Finished went by: these keys are done."""
        return self._assembler.finished

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete handshake message held."""
        return self._assembler.buffered

    def feed_record(
        self, content_type: int, record_header: bytes, payload: bytes
    ) -> list[RecordEvent]:
        """One record (its 5-byte header and its body); the events it completed."""
        if self.error is not None:
            return []
        if self.done:
            self.stats["records_after_finished"] += 1
            return []
        events: list[RecordEvent] = []
        try:
            self._record(content_type, record_header, payload, events)
        except DissectError as err:
            self.error = err
            self._assembler.clear()
            events.append(StreamError(err))
        return events

    def _record(
        self, content_type: int, header: bytes, payload: bytes, events: list[RecordEvent]
    ) -> None:
        raise NotImplementedError
