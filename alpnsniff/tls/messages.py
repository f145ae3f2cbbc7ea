"""Bodies of the handshake messages that only keys reveal: EncryptedExtensions, NextProtocol.

Pure parsers, like :mod:`alpnsniff.tls.hello`: each takes a handshake message body (after
the 4-byte handshake header), already decrypted by :mod:`alpnsniff.keys`, and raises a
:class:`~alpnsniff.errors.DissectError` when its framing is wrong.

* :func:`parse_encrypted_extensions`: the TLS 1.3 server's EncryptedExtensions
  (RFC 8446 §4.3.1), where its ALPN choice is (RFC 7301 §3.1);
* :func:`parse_next_protocol`: the TLS ≤ 1.2 client's NextProtocol message
  (draft-agl-tls-nextprotoneg-04 §3), where its NPN choice is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from alpnsniff.errors import DissectError
from alpnsniff.tls.cursor import Cursor
from alpnsniff.tls.extensions import EXT_ALPN, read_protocol_name_list
from alpnsniff.tls.registry import extension_name

__all__ = [
    "EE_LAYER",
    "NPN_LAYER",
    "EncryptedExtensionsInfo",
    "parse_encrypted_extensions",
    "parse_next_protocol",
]

#: The ``layer`` of the errors each parser raises.
EE_LAYER: Final = "tls13.ee"
NPN_LAYER: Final = "tls12.npn"


@dataclass(frozen=True, slots=True, kw_only=True)
class EncryptedExtensionsInfo:
    """What the server's EncryptedExtensions (RFC 8446 §4.3.1) says."""

    #: The ALPN protocol IDs the server selected (RFC 7301 §3.1: exactly one), raw octets.
    alpn: tuple[bytes, ...]
    #: The ALPN extension is present (alpn may still be empty when its body is broken).
    has_alpn: bool
    #: Extension types in wire order.
    extensions: tuple[int, ...]
    #: Extension bodies that did not parse; protocol violations seen.
    errors: tuple[str, ...]


def parse_encrypted_extensions(body: bytes) -> EncryptedExtensionsInfo:
    """Parse an EncryptedExtensions body (after the 4-byte handshake header).

    ``Extension extensions<0..2^16-1>``: the block must fill the body and each extension
    fit in it, else :class:`DissectError`. An ALPN body that does not parse is noted in
    ``errors`` and keeps the names read before the break, as for the ServerHello.
    """
    c = Cursor(body, EE_LAYER)
    block = c.pull_block(2)
    c.finish("EncryptedExtensions")
    types: list[int] = []
    alpn: list[bytes] = []
    has_alpn = False
    notes: list[str] = []
    while not block.eof():
        ext_type = block.pull_uint16()
        ext = block.pull_block(2)
        if ext_type in types:
            notes.append(
                f"{extension_name(ext_type)}({ext_type}): repeated, first one read (RFC 8446 §4.2)"
            )
            types.append(ext_type)
            continue
        types.append(ext_type)
        if ext_type == EXT_ALPN:
            has_alpn = True
            try:
                read_protocol_name_list(ext, alpn, notes, "alpn")
            except DissectError as err:
                notes.append(f"{extension_name(ext_type)}({ext_type}): {err}")
            if len(alpn) > 1:
                notes.append(
                    f"alpn: server selected {len(alpn)} protocols "
                    "(RFC 7301 §3.1 requires exactly one)"
                )
    return EncryptedExtensionsInfo(
        alpn=tuple(alpn), has_alpn=has_alpn, extensions=tuple(types), errors=tuple(notes)
    )


def parse_next_protocol(body: bytes) -> bytes:
    """The NextProtocol message body (draft-agl-tls-nextprotoneg-04 §3): the selected
    protocol's raw octets. ``opaque selected_protocol<0..255>; opaque padding<0..255>``,
    both exactly; raises :class:`DissectError` otherwise."""
    c = Cursor(body, NPN_LAYER)
    selected = c.pull_opaque(1)
    c.pull_opaque(1)  # padding: 32 - ((len(selected_protocol) + 2) % 32) zero bytes
    c.finish("NextProtocol")
    return selected
