"""ClientHello and ServerHello bodies (RFC 8446 §4.1.2-4.1.4, RFC 5246 §7.4.1).

``parse_client_hello`` and ``parse_server_hello`` take a handshake message body (after
the 4-byte handshake header) and return a frozen record of what it says. The fixed part
and the framing of the extensions block must be exact: anything else raises
:class:`~alpnsniff.errors.DissectError` for the whole hello. Inside that framing, an
extension whose body does not parse is named in ``ext_errors`` and the rest of the hello
is still read, as tshark does; violations that do not stop the reading (an empty ALPN
name, a repeated extension) are listed there too. A field whose extension did not parse
keeps its empty value (``()``, ``b""``, None), except the ALPN and ALPS lists, which keep
the names read before the break. Of a repeated extension the first one is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from alpnsniff.errors import DissectError, Malformed, Truncated
from alpnsniff.tls.cursor import Cursor
from alpnsniff.tls.extensions import (
    EXT_ALPN,
    EXT_ALPS,
    EXT_ALPS_OLD,
    EXT_EC_POINT_FORMATS,
    EXT_ECH,
    EXT_ESNI,
    EXT_NPN,
    EXT_SERVER_NAME,
    EXT_SIGNATURE_ALGORITHMS,
    EXT_SUPPORTED_GROUPS,
    EXT_SUPPORTED_VERSIONS,
    EchInfo,
    read_ech,
    read_npn_list,
    read_protocol_name_list,
    read_server_name,
)
from alpnsniff.tls.registry import extension_name, version_rank

__all__ = [
    "GREASE_VALUES",
    "HRR_RANDOM",
    "ClientHello",
    "EchInfo",
    "ServerHello",
    "parse_client_hello",
    "parse_server_hello",
]

LAYER: Final = "tls.hello"

# SHA-256("HelloRetryRequest"): the ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3).
HRR_RANDOM: Final = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

# The 16 GREASE values of RFC 8701 §2 for cipher suites, extensions, groups, versions.
GREASE_VALUES: Final = frozenset(0x0A0A + 0x1010 * i for i in range(16))


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientHello:
    """What a ClientHello says. Raw wire values; lists in wire order, GREASE included."""

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: tuple[int, ...]
    compression_methods: bytes
    extensions: tuple[int, ...]  # extension types, wire order
    sni: bytes | None  # first host_name of server_name, raw octets (None: no host_name)
    alpn: tuple[bytes, ...]  # ALPN protocol IDs, client order, raw octets
    has_alpn: bool  # the ALPN extension is present (alpn may still be empty)
    supported_versions: tuple[int, ...]
    supported_groups: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    ec_point_formats: bytes
    npn: bool  # next_protocol_negotiation (13172) present
    ech: EchInfo | None  # encrypted_client_hello (0xfe0d); None: absent or unreadable
    esni: bool  # encrypted_server_name (0xffce) present
    alps: tuple[bytes, ...]  # ALPS (17513, 17613) protocol IDs, wire order
    grease: bool  # a GREASE value in ciphers, extensions, groups, sig algs, versions, ALPN
    ext_errors: tuple[str, ...]  # extension bodies that did not parse; violations seen

    def highest_version(self) -> int:
        """The highest version offered: from supported_versions (GREASE skipped) when the
        extension lists one, else legacy_version. TLS 1.3 ranks above its drafts."""
        offered = [v for v in self.supported_versions if v not in GREASE_VALUES]
        if not offered:
            return self.legacy_version
        return max(offered, key=version_rank)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHello:
    """What a ServerHello (or HelloRetryRequest) says."""

    legacy_version: int
    random: bytes
    session_id: bytes  # b"" in the TLS 1.3 draft <= 21 format, which has none
    cipher_suite: int
    compression_method: int  # 0 in the TLS 1.3 draft <= 21 format, which has none
    extensions: tuple[int, ...]
    selected_version: int  # supported_versions if present, else legacy_version
    alpn: tuple[bytes, ...]  # RFC 7301 §3.1: exactly one; every name kept to flag violations
    has_alpn: bool
    npn_protocols: tuple[bytes, ...]  # the server's NPN list (TLS <= 1.2)
    is_hrr: bool  # random is the HelloRetryRequest magic
    ext_errors: tuple[str, ...]


# Extension bodies read (the others are kept as their type only).
_CH_READ: Final = frozenset(
    {
        EXT_SERVER_NAME,
        EXT_ALPN,
        EXT_SUPPORTED_VERSIONS,
        EXT_SUPPORTED_GROUPS,
        EXT_SIGNATURE_ALGORITHMS,
        EXT_EC_POINT_FORMATS,
        EXT_ECH,
        EXT_ALPS,
        EXT_ALPS_OLD,
    }
)
_SH_READ: Final = frozenset({EXT_ALPN, EXT_SUPPORTED_VERSIONS, EXT_NPN})


def _repeated(types: list[int]) -> list[str]:
    """A note for each extension type that occurs more than once (RFC 8446 §4.2)."""
    seen: set[int] = set()
    notes: list[str] = []
    for t in types:
        if t in seen:
            notes.append(f"{extension_name(t)}({t}): repeated, first one read (RFC 8446 §4.2)")
        seen.add(t)
    return notes


def _first_of_each(spans: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    seen: set[int] = set()
    first: list[tuple[int, int, int]] = []
    for span in spans:
        if span[0] not in seen:
            seen.add(span[0])
            first.append(span)
    return first


def _ext_error(ext_type: int, err: DissectError) -> str:
    return f"{extension_name(ext_type)}({ext_type}): {err}"


def _extensions(c: Cursor, what: str) -> list[tuple[int, int, int]]:
    """The extensions block after the fixed part, as (type, start, end) spans of ``body``.

    Absent (SSL 3.0 / TLS 1.0 hellos may end after the fixed part, RFC 5246 §7.4.1.2):
    an empty list. Otherwise the block must fill the rest of the body exactly and each
    extension must fit in it; this walk uses plain integers, not a cursor per extension,
    because it runs over every extension of every hello.
    """
    if c.eof():
        return []
    block = c.pull_block(2)
    c.finish(what)
    data = block.data
    pos = block.tell()
    end = pos + block.remaining
    spans: list[tuple[int, int, int]] = []
    while pos < end:
        if pos + 4 > end:
            raise Truncated(
                f"extension header: {end - pos} bytes left in the extensions block",
                layer=LAYER,
                offset=pos,
            )
        start = pos + 4
        stop = start + ((data[pos + 2] << 8) | data[pos + 3])
        if stop > end:
            raise Truncated(
                f"extension of {stop - start} bytes, {end - start} left in the block",
                layer=LAYER,
                offset=pos + 2,
            )
        spans.append(((data[pos] << 8) | data[pos + 1], start, stop))
        pos = stop
    return spans


def parse_client_hello(body: bytes) -> ClientHello:
    """Parse a ClientHello body. Raises DissectError when its framing is broken."""
    c = Cursor(body, LAYER)
    legacy_version = c.pull_uint16()
    random = c.pull_bytes(32)
    session_id = c.pull_opaque(1)
    if len(session_id) > 32:
        raise Malformed(f"session_id of {len(session_id)} bytes", layer=LAYER, offset=34)
    cipher_suites = c.pull_uint16_list(2)
    compression_methods = c.pull_opaque(1)
    spans = _extensions(c, "ClientHello")

    notes: list[str] = []
    sni: bytes | None = None
    alpn: list[bytes] = []
    has_alpn = False
    versions: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    sigalgs: tuple[int, ...] = ()
    point_formats = b""
    ech: EchInfo | None = None
    alps: list[bytes] = []
    types = [t for t, _, _ in spans]
    if len(set(types)) != len(types):
        notes.extend(_repeated(types))
        spans = _first_of_each(spans)
    for t, start, stop in spans:
        if t in _CH_READ:
            d = Cursor(body, LAYER, start=start, end=stop)
            try:
                if t == EXT_SERVER_NAME:
                    sni = read_server_name(d, notes)
                elif t == EXT_ALPN:
                    has_alpn = True
                    read_protocol_name_list(d, alpn, notes, "alpn")
                elif t == EXT_SUPPORTED_VERSIONS:
                    vs = d.pull_uint16_list(1)
                    d.finish("supported_versions")
                    versions = vs
                elif t == EXT_SUPPORTED_GROUPS:
                    gs = d.pull_uint16_list(2)
                    d.finish("supported_groups")
                    groups = gs
                elif t == EXT_SIGNATURE_ALGORITHMS:
                    sas = d.pull_uint16_list(2)
                    d.finish("signature_algorithms")
                    sigalgs = sas
                elif t == EXT_EC_POINT_FORMATS:
                    pfs = d.pull_opaque(1)
                    d.finish("ec_point_formats")
                    point_formats = pfs
                elif t == EXT_ECH:
                    ech = read_ech(d, notes)
                elif t in (EXT_ALPS, EXT_ALPS_OLD):
                    read_protocol_name_list(d, alps, notes, "alps")
            except DissectError as err:
                notes.append(_ext_error(t, err))

    grease = not (
        GREASE_VALUES.isdisjoint(cipher_suites)
        and GREASE_VALUES.isdisjoint(types)
        and GREASE_VALUES.isdisjoint(groups)
        and GREASE_VALUES.isdisjoint(versions)
        and GREASE_VALUES.isdisjoint(sigalgs)
    ) or any(len(p) == 2 and p[0] == p[1] and (p[0] & 0x0F) == 0x0A for p in alpn)
    return ClientHello(
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        cipher_suites=cipher_suites,
        compression_methods=compression_methods,
        extensions=tuple(types),
        sni=sni,
        alpn=tuple(alpn),
        has_alpn=has_alpn,
        supported_versions=versions,
        supported_groups=groups,
        signature_algorithms=sigalgs,
        ec_point_formats=point_formats,
        npn=EXT_NPN in types,
        ech=ech,
        esni=EXT_ESNI in types,
        alps=tuple(alps),
        grease=grease,
        ext_errors=tuple(notes),
    )


def _is_old_draft(version: int) -> bool:
    """TLS 1.3 drafts before -22 had a ServerHello without session_id and compression,
    its version field the draft (0x7f00 + n) or, up to draft-15, 0x0304 itself; final
    TLS 1.3 puts 0x0303 there (RFC 8446 §4.1.3)."""
    return version == 0x0304 or (version >> 8 == 0x7F and (version & 0xFF) < 22)


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse a ServerHello or HelloRetryRequest body. Raises DissectError on bad framing."""
    c = Cursor(body, LAYER)
    legacy_version = c.pull_uint16()
    random = c.pull_bytes(32)
    if _is_old_draft(legacy_version):
        session_id = b""
        cipher_suite = c.pull_uint16()
        compression_method = 0
    else:
        session_id = c.pull_opaque(1)
        if len(session_id) > 32:
            raise Malformed(f"session_id of {len(session_id)} bytes", layer=LAYER, offset=34)
        cipher_suite = c.pull_uint16()
        compression_method = c.pull_uint8()
    spans = _extensions(c, "ServerHello")

    notes: list[str] = []
    selected_version = legacy_version
    alpn: list[bytes] = []
    has_alpn = False
    npn: list[bytes] = []
    types = [t for t, _, _ in spans]
    if len(set(types)) != len(types):
        notes.extend(_repeated(types))
        spans = _first_of_each(spans)
    for t, start, stop in spans:
        if t in _SH_READ:
            d = Cursor(body, LAYER, start=start, end=stop)
            try:
                if t == EXT_ALPN:
                    has_alpn = True
                    read_protocol_name_list(d, alpn, notes, "alpn")
                    if len(alpn) > 1:
                        notes.append(
                            f"alpn: server selected {len(alpn)} protocols "
                            "(RFC 7301 §3.1 requires exactly one)"
                        )
                elif t == EXT_SUPPORTED_VERSIONS:
                    v = d.pull_uint16()
                    d.finish("supported_versions")
                    selected_version = v
                elif t == EXT_NPN:
                    read_npn_list(d, npn)
            except DissectError as err:
                notes.append(_ext_error(t, err))

    return ServerHello(
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        cipher_suite=cipher_suite,
        compression_method=compression_method,
        extensions=tuple(types),
        selected_version=selected_version,
        alpn=tuple(alpn),
        has_alpn=has_alpn,
        npn_protocols=tuple(npn),
        is_hrr=random == HRR_RANDOM,
        ext_errors=tuple(notes),
    )
