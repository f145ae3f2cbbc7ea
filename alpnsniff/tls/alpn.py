"""ALPN protocol IDs as text and as names.

An ALPN protocol ID is an opaque octet string (RFC 7301 §3.1): anything may arrive, so
the text form escapes every octet that could confuse a terminal, a CSV reader or a
``,``-joined list.

Names come from the IANA registry (:data:`~alpnsniff.tls.registry.ALPN_PROTOCOLS`), then
from a table of well-known unregistered IDs (draft tokens, vendor experiments:
:data:`~alpnsniff.tls.registry.ALPN_UNREGISTERED`), which are marked ``(unregistered)``.
"""

from __future__ import annotations

from typing import Final

from alpnsniff.tls.registry import ALPN_PROTOCOLS, ALPN_UNREGISTERED

__all__ = ["alpn_name", "alpn_text", "is_grease_alpn"]

# Octets kept as they are: printable ASCII 0x21-0x7e except the backslash (the escape).
_SAFE: Final = bytes(b for b in range(0x21, 0x7F) if b != 0x5C)
_ESCAPES: Final = tuple(chr(b) if b in _SAFE else f"\\x{b:02x}" for b in range(256))


def alpn_text(raw: bytes) -> str:
    r"""Printable form of an ALPN ID: octets 0x21-0x7e kept except the backslash; every
    other octet written ``\xNN`` (lowercase hex). ``b"a b"`` -> ``a\x20b``, ``b"\\"`` ->
    ``\x5c``. Safe for terminals and CSV. The comma is kept as it is, so a list of IDs
    joined with ``,`` can be ambiguous: keep lists as lists, or as the raw octets.
    """
    if not raw.translate(None, _SAFE):  # every octet is safe: the common case, one C call
        return raw.decode("ascii")
    esc = _ESCAPES
    return "".join([esc[b] for b in raw])


def is_grease_alpn(raw: bytes) -> bool:
    """True for the GREASE ALPN IDs of RFC 8701 §3: two equal octets 0x?A (0x0A0A..0xFAFA)."""
    return len(raw) == 2 and raw[0] == raw[1] and (raw[0] & 0x0F) == 0x0A


def offered_protocols(offers: tuple[bytes, ...]) -> list[bytes]:
    """The protocols a ClientHello's ALPN list offers, in its order: each ID once, GREASE IDs
    left out (they are never protocols). Empty: no ALPN, or only GREASE."""
    return [raw for raw in dict.fromkeys(offers) if not is_grease_alpn(raw)]


def alpn_name(raw: bytes) -> str:
    """Display name of an ALPN ID: the IANA registry's (``h2`` -> ``HTTP/2 over TLS``); for a
    well-known unregistered ID its name and ``(unregistered)`` (``h3-29`` -> ``HTTP/3 draft 29
    (unregistered)``); ``GREASE`` for the RFC 8701 IDs; else ``unknown``. IDs are octets:
    no case folding (``H2`` is unknown).
    """
    name = ALPN_PROTOCOLS.get(raw)
    if name is not None:
        return name
    name = ALPN_UNREGISTERED.get(raw)
    if name is not None:
        return f"{name} (unregistered)"
    return "GREASE" if is_grease_alpn(raw) else "unknown"
