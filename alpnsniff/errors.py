"""One error family for everything read from the wire or from a file.

Decoders raise a subclass of :class:`DissectError`; the pipeline catches it, counts it
under its ``reason`` and goes on with the next packet or flow. Nothing from the wire may
raise anything else.
"""

from __future__ import annotations

from typing import ClassVar


class DissectError(Exception):
    """Bytes that could not be dissected. ``layer`` names the decoder, ``offset`` the byte."""

    reason: ClassVar[str] = "dissect-error"

    def __init__(self, message: str, *, layer: str = "", offset: int = -1) -> None:
        super().__init__(message)
        self.layer = layer
        self.offset = offset

    def __str__(self) -> str:
        where = f" at {self.layer}+{self.offset}" if self.layer and self.offset >= 0 else ""
        base = super().__str__()
        return f"{base}{where}"


class Truncated(DissectError):
    """The bytes end before a length field says they should."""

    reason: ClassVar[str] = "truncated"


class Malformed(DissectError):
    """The bytes contradict the protocol (a length that does not add up, a bad value)."""

    reason: ClassVar[str] = "malformed"


class Unsupported(DissectError):
    """Well-formed, but a variant this dissector does not handle."""

    reason: ClassVar[str] = "unsupported"


class CaptureError(Exception):
    """A capture file that cannot be read at all (not a capture, unreadable, bad header).

    Its message is one line meant for the user; the CLI prints it and exits with status 2.
    """
