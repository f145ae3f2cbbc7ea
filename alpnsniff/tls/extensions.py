"""Bodies of the hello extensions this tool reads: SNI, ALPN, ALPS, NPN, ECH.

Each reader takes a :class:`Cursor` over exactly one extension body, and raises a
:class:`DissectError` when the body does not fit its syntax. Protocol violations that do
not stop the reading (an empty ALPN protocol name, an empty list) are appended to
``notes`` as text and the values are kept as they came.
"""

from __future__ import annotations

from dataclasses import dataclass

from alpnsniff.errors import Malformed
from alpnsniff.tls.cursor import Cursor

__all__ = [
    "EXT_ALPN",
    "EXT_ALPS",
    "EXT_ALPS_OLD",
    "EXT_ECH",
    "EXT_EC_POINT_FORMATS",
    "EXT_ESNI",
    "EXT_NPN",
    "EXT_SERVER_NAME",
    "EXT_SIGNATURE_ALGORITHMS",
    "EXT_SUPPORTED_GROUPS",
    "EXT_SUPPORTED_VERSIONS",
    "EchInfo",
    "read_ech",
    "read_npn_list",
    "read_protocol_name_list",
    "read_server_name",
]

EXT_SERVER_NAME = 0  # RFC 6066 §3
EXT_SUPPORTED_GROUPS = 10  # RFC 8422 §5.1.1, RFC 8446 §4.2.7
EXT_EC_POINT_FORMATS = 11  # RFC 8422 §5.1.2
EXT_SIGNATURE_ALGORITHMS = 13  # RFC 8446 §4.2.3
EXT_ALPN = 16  # RFC 7301
EXT_SUPPORTED_VERSIONS = 43  # RFC 8446 §4.2.1
EXT_NPN = 13172  # draft-agl-tls-nextprotoneg
EXT_ALPS_OLD = 17513  # draft-vvv-tls-alps, the code point Chrome used until 2024
EXT_ALPS = 17613  # draft-vvv-tls-alps, the current code point (0x44cd)
EXT_ECH = 0xFE0D  # draft-ietf-tls-esni-13 and later (RFC 9849)
EXT_ESNI = 0xFFCE  # draft-ietf-tls-esni up to -02: encrypted_server_name


@dataclass(frozen=True, slots=True, kw_only=True)
class EchInfo:
    """The encrypted_client_hello extension of a ClientHello.

    ``ech_type`` 0 is the outer form (on the wire: real ECH and GREASE ECH look the same),
    1 the inner form (only inside an encrypted ClientHelloInner; carries nothing else).
    The other fields are those of the outer form, None for the inner one.
    """

    ech_type: int
    kdf_id: int | None = None
    aead_id: int | None = None
    config_id: int | None = None
    enc_len: int | None = None
    payload_len: int | None = None


def read_protocol_name_list(c: Cursor, out: list[bytes], notes: list[str], what: str) -> None:
    """``ProtocolName protocol_name_list<2..2^16-1>``, ``opaque ProtocolName<1..2^8-1>``.

    The names are appended to ``out`` as they are read, so a list broken half-way keeps
    the names before the break (as tshark shows them).
    """
    lst = c.pull_block(2)
    c.finish(f"{what} protocol_name_list")
    if lst.eof():
        notes.append(f"{what}: empty protocol_name_list (RFC 7301 §3.1 requires one name)")
        return
    while not lst.eof():
        name = lst.pull_opaque(1)
        if not name:
            notes.append(f"{what}: empty ProtocolName (RFC 7301 §3.1 forbids it)")
        out.append(name)


def read_npn_list(c: Cursor, out: list[bytes]) -> None:
    """The server's NPN list: 8-bit length-prefixed names filling the extension body."""
    while not c.eof():
        out.append(c.pull_opaque(1))


def read_server_name(c: Cursor, notes: list[str]) -> bytes | None:
    """The first host_name of a ``ServerNameList`` (RFC 6066 §3), raw octets.

    An empty extension body is what a server sends to acknowledge SNI; from a client it
    is a violation, noted. Returns None when the list holds no host_name.
    """
    if c.eof():
        notes.append("server_name: empty extension body")
        return None
    lst = c.pull_block(2)
    c.finish("server_name list")
    if lst.eof():
        notes.append("server_name: empty server_name_list")
        return None
    host: bytes | None = None
    while not lst.eof():
        name_type = lst.pull_uint8()
        name = lst.pull_opaque(2)
        if name_type == 0:
            if host is None:
                host = name
                if not name:
                    notes.append("server_name: empty HostName")
            else:
                notes.append("server_name: more than one host_name (RFC 6066 §3 forbids it)")
    return host


def read_ech(c: Cursor, notes: list[str]) -> EchInfo:
    """``ECHClientHello`` (draft-ietf-tls-esni-13+ §5): outer fields, or the inner type."""
    ech_type = c.pull_uint8()
    if ech_type == 1:
        c.finish("inner ECHClientHello")
        return EchInfo(ech_type=1)
    if ech_type != 0:
        raise Malformed(f"ECHClientHelloType {ech_type}", layer=c.layer, offset=c.tell() - 1)
    kdf_id = c.pull_uint16()
    aead_id = c.pull_uint16()
    config_id = c.pull_uint8()
    enc = c.pull_block(2)
    payload = c.pull_block(2)
    c.finish("outer ECHClientHello")
    if payload.remaining == 0:
        notes.append("encrypted_client_hello: payload of 0 bytes (payload<1..2^16-1>)")
    return EchInfo(
        ech_type=0,
        kdf_id=kdf_id,
        aead_id=aead_id,
        config_id=config_id,
        enc_len=enc.remaining,
        payload_len=payload.remaining,
    )
