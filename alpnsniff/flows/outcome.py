"""Turn a ClientHello and the server's answer into one :class:`Handshake` record.

Pure functions: what the server's answer means for ``selection`` lives here, once, for every
transport (TLS over TCP and QUIC; DTLS next). A ClientHello waits as an :class:`Offer` until
its answer is known (:mod:`.answers` keeps the waiting ones); the frozen record is built
once, at the end.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace

from ..errors import DissectError
from ..records import Handshake, Selection
from ..tls.alpn import alpn_text
from ..tls.extensions import EchInfo
from ..tls.fingerprint import ja3_fingerprint, ja4_fingerprint
from ..tls.hello import ClientHello, ServerHello
from ..tls.messages import parse_encrypted_extensions
from ..tls.registry import ALERT_NO_APPLICATION_PROTOCOL, version_name

_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Who is the client, who the server, as raw address bytes and ports."""

    ip_version: int
    client_ip: bytes
    client_port: int
    server_ip: bytes
    server_port: int


@dataclass(frozen=True, slots=True)
class ClientFacts:
    """What the record and the decryption stage need of a ClientHello, kept while it waits
    for the server. Its cipher suites, groups and signature algorithms are not kept: they
    are most of a parsed hello's memory (~1.6 KB for Chromium's), and a flood of stalled
    hellos holds tens of thousands of them."""

    random: bytes  # the key log's look-up key (zeros for an SSLv2-format hello)
    client_version: str  # highest version offered (TLS 1.3 above its drafts)
    sni: str | None  # escaped text
    alpn: tuple[bytes, ...]
    extensions: tuple[int, ...]
    alps: tuple[bytes, ...]
    ech: EchInfo | None
    npn: bool
    grease: bool
    sslv2: bool
    notes: tuple[str, ...]  # malformed extension bodies, empty protocol IDs
    ja4: str | None
    ja4_r: str | None
    ja3: str | None
    ja3_hash: str | None

    @classmethod
    def of(cls, ch: ClientHello, transport: str) -> ClientFacts:
        """``transport``: the record's (``tcp``, ``quic``, ``dtls``, ``udp``), for JA4's
        first character."""
        notes = list(ch.ext_errors)
        if ch.has_alpn and not ch.alpn:
            notes.append("alpn-extension-empty")
        if any(not p for p in ch.alpn):
            notes.append("alpn-empty-protocol-id")
        ja4, ja4_r = ja4_fingerprint(ch, transport)
        ja3, ja3_hash = ja3_fingerprint(ch)
        return cls(
            random=ch.random,
            client_version=version_name(ch.highest_version()),
            sni=None if ch.sni is None else alpn_text(ch.sni),
            alpn=ch.alpn,
            extensions=ch.extensions,
            alps=ch.alps,
            ech=ch.ech,
            npn=ch.npn,
            grease=ch.grease,
            sslv2=False,
            notes=tuple(notes),
            ja4=ja4,
            ja4_r=ja4_r,
            ja3=ja3,
            ja3_hash=ja3_hash,
        )

    @classmethod
    def of_sslv2(cls, version: int) -> ClientFacts:
        """An SSLv2-format ClientHello: no extensions, so no ALPN."""
        return cls(
            random=bytes(32),
            client_version=version_name(version),
            sni=None,
            alpn=(),
            extensions=(),
            alps=(),
            ech=None,
            npn=False,
            grease=False,
            sslv2=True,
            notes=(),
            ja4=None,
            ja4_r=None,
            ja3=None,
            ja3_hash=None,
        )


@dataclass(frozen=True, slots=True)
class ConnectFacts:
    """An HTTP CONNECT the connection began with (RFC 7639), and the proxy's status."""

    target: str  # escaped text
    alpn: tuple[bytes, ...] | None  # the ALPN header's IDs, decoded (None: no header)
    header: bytes | None  # the header's raw value
    canonical: bool | None
    status: int | None = None  # None until the proxy's answer is seen


@dataclass(slots=True)
class Offer:
    """A ClientHello (or an SSLv2-format one) waiting for the server's answer; or, with
    ``client`` None, the place of a ClientHello the capture does not hold (a one-sided
    capture: the server's answer alone; ``ts_ns`` and ``frame`` are then the answer's)."""

    ends: Endpoints
    ts_ns: int
    frame: int
    transport: str
    client: ClientFacts | None
    hello_retry: bool = False
    quic_version: str | None = None
    quic_dcid: bytes | None = None
    quic_scid: bytes | None = None
    quic_restarts: int | None = None
    connect: ConnectFacts | None = None  # the CONNECT before the TLS, if any
    upgraded_from: str | None = None  # what the connection carried before its TLS


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server said, reduced to the record's server-side columns."""

    selection: Selection
    selected: bytes | None = None
    tls_version: str | None = None
    cipher_suite: int | None = None
    npn_server: tuple[bytes, ...] = ()
    alert: int | None = None
    violation: str | None = None
    server_frame: int | None = None
    npn_selected: bytes | None = None  # the client's NextProtocol choice (TLS <= 1.2, decrypted)
    notes: tuple[str, ...] = ()


UNSEEN = Answer(Selection.UNSEEN)


def record(offer: Offer, answer: Answer = UNSEEN) -> Handshake:
    """The record of an offer and its answer (``unseen`` when there was none). An answer
    whose ClientHello was not seen (``offer.client`` None: a one-sided capture) has every
    ClientHello column None (``alpn_offered`` None: not seen, as against ``[]``: no ALPN)."""
    ends = offer.ends
    family = _FAMILY[ends.ip_version]
    client = offer.client
    ech = None if client is None else client.ech
    connect = offer.connect
    declared = None if connect is None else connect.alpn
    return Handshake(
        ts_ns=offer.ts_ns,
        frame=offer.frame,
        transport=offer.transport,
        ip_version=ends.ip_version,
        client_ip=socket.inet_ntop(family, ends.client_ip),
        client_port=ends.client_port,
        server_ip=socket.inet_ntop(family, ends.server_ip),
        server_port=ends.server_port,
        sni=None if client is None else client.sni,
        alpn_offered_raw=None if client is None else client.alpn,
        alpn_selected_raw=answer.selected,
        selection=answer.selection,
        tls_version=answer.tls_version,
        client_version=None if client is None else client.client_version,
        cipher_suite=answer.cipher_suite,
        ech=None if client is None else ech is not None,
        ech_config_id=None if ech is None else ech.config_id,
        ech_payload_len=None if ech is None else ech.payload_len,
        npn=None if client is None else client.npn,
        npn_server=answer.npn_server,
        npn_selected_raw=answer.npn_selected,
        alps=None if client is None else client.alps,
        extensions=None if client is None else client.extensions,
        grease=None if client is None else client.grease,
        sslv2=None if client is None else client.sslv2,
        hello_retry=offer.hello_retry,
        alert=answer.alert,
        violation=answer.violation,
        server_frame=answer.server_frame,
        quic_version=offer.quic_version,
        quic_dcid=None if offer.quic_dcid is None else offer.quic_dcid.hex(),
        quic_scid=None if offer.quic_scid is None else offer.quic_scid.hex(),
        quic_restarts=offer.quic_restarts,
        connect_target=None if connect is None else connect.target,
        connect_alpn_raw=declared,
        connect_alpn_header_raw=None if connect is None else connect.header,
        connect_alpn_canonical=None if connect is None else connect.canonical,
        connect_status=None if connect is None else connect.status,
        connect_alpn_agrees=None if declared is None or client is None else declared == client.alpn,
        upgraded_from=offer.upgraded_from,
        ja4=None if client is None else client.ja4,
        ja4_r=None if client is None else client.ja4_r,
        ja3=None if client is None else client.ja3,
        ja3_hash=None if client is None else client.ja3_hash,
        notes=answer.notes if client is None else client.notes + answer.notes,
    )


def server_hello_answer(offer: Offer, sh: ServerHello, *, frame: int) -> Answer:
    """What a ServerHello (or HelloRetryRequest) says about the offer's ALPN. Without the
    ClientHello (``offer.client`` None) nothing is known of the offer: an ALPN in the
    ServerHello is ``visible`` (not checked against the offer), none is ``encrypted`` in
    TLS 1.3 and ``none`` (the server selected none) below it."""
    version = sh.selected_version
    # TLS 1.3, its IETF drafts (0x7fXX) and Facebook's drafts (0xfbXX) hide the selection
    tls13 = version == 0x0304 or (version >> 8) in (0x7F, 0xFB)
    violations: list[str] = list(sh.ext_errors)
    selected: bytes | None = None
    offered = None if offer.client is None else offer.client.alpn
    if sh.is_hrr:
        selection = Selection.RETRIED
    elif sh.has_alpn:
        selection = Selection.VISIBLE
        selected = sh.alpn[0] if sh.alpn else None
        if len(sh.alpn) != 1:
            violations.append(f"serverhello-alpn-count-{len(sh.alpn)}")
        if selected is not None and offered is not None and selected not in offered:
            violations.append("selected-not-offered")
        if tls13:
            violations.append("alpn-in-tls13-serverhello")
    elif offered is not None and not offered:
        selection = Selection.NOT_OFFERED  # nothing to choose from
    elif tls13:
        selection = Selection.ENCRYPTED
    else:
        selection = Selection.NONE
    return Answer(
        selection=selection,
        selected=selected,
        tls_version=version_name(version),
        cipher_suite=sh.cipher_suite,
        npn_server=tuple(sh.npn_protocols),
        violation=";".join(violations) or None,
        server_frame=frame,
    )


def alert_answer(description: int, *, frame: int) -> Answer:
    """A plaintext alert instead of a ServerHello: 120 rejects, any other aborts."""
    rejected = description == ALERT_NO_APPLICATION_PROTOCOL
    return Answer(
        selection=Selection.REJECTED if rejected else Selection.ABORTED,
        alert=description,
        server_frame=frame,
    )


def sslv2_answer(*, frame: int) -> Answer:
    """An SSLv2 SERVER-HELLO: no ALPN exists there."""
    return Answer(selection=Selection.NOT_OFFERED, tls_version="ssl2", server_frame=frame)


def encrypted_extensions_answer(offer: Offer, answer: Answer, body: bytes) -> Answer:
    """The answer once the server's EncryptedExtensions (its body) was decrypted."""
    try:
        ee = parse_encrypted_extensions(body)
    except DissectError as err:
        return with_note(answer, f"encrypted-extensions: {err.reason}")
    offered = None if offer.client is None else offer.client.alpn
    violations = [v for v in (answer.violation or "").split(";") if v] + list(ee.errors)
    alpn = ee.alpn
    selected = alpn[0] if alpn else None
    if ee.has_alpn:
        if len(alpn) != 1:
            violations.append(f"encryptedextensions-alpn-count-{len(alpn)}")
        if selected is not None and offered is not None and selected not in offered:
            violations.append("selected-not-offered")
    return replace(
        answer,
        selection=(
            Selection.DECRYPTED
            if ee.has_alpn
            else Selection.NONE
            if offered is None or offered
            else Selection.NOT_OFFERED
        ),
        selected=selected,
        violation=";".join(violations) or None,
    )


def with_note(answer: Answer, note: str) -> Answer:
    return replace(answer, notes=(*answer.notes, note))
