"""The record of one handshake: one ClientHello joined with the server's answer.

Every field maps one-to-one to a DataFrame column (``alpnsniff.read``), an ndjson key and a
CSV column. Raw wire values are kept (``alpn_offered_raw``); text forms are derived with
:func:`alpnsniff.tls.alpn.alpn_text` (printable ASCII kept, every other octet ``\\xNN``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Selection(StrEnum):
    """How the server's ALPN choice was learnt (column ``selection``)."""

    VISIBLE = "visible"  # in a cleartext ServerHello (TLS <= 1.2, or a 1.3 stack that echoes it)
    ENCRYPTED = "encrypted"  # TLS 1.3 / QUIC: in EncryptedExtensions, no key to read it
    DECRYPTED = "decrypted"  # read from EncryptedExtensions with a key log
    NONE = "none"  # the server answered and selected no protocol (or none was offered)
    REJECTED = "rejected"  # the server sent alert 120 no_application_protocol
    ABORTED = "aborted"  # the server sent another fatal alert instead of a ServerHello
    RETRIED = "retried"  # the server answered with HelloRetryRequest; the next row continues
    UNSEEN = "unseen"  # no answer from the server in the capture


@dataclass(frozen=True, slots=True, kw_only=True)
class Handshake:
    """One ClientHello and what became of it. Field order = column order."""

    ts_ns: int  # capture time of the packet that completed the ClientHello, ns since epoch (UTC)
    frame: int  # 1-based number of that packet, as Wireshark numbers it
    transport: str  # "tcp" now; "quic", "dtls" later
    ip_version: int  # 4 or 6 (of the innermost IP header)
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    sni: str | None  # server_name host_name, escaped text (None: no SNI extension)
    alpn_offered_raw: tuple[bytes, ...]  # ALPN protocol IDs, client order, raw octets
    alpn_selected_raw: bytes | None  # the server's choice, raw octets (None: not known / none)
    selection: Selection
    tls_version: str | None  # negotiated: "1.3", "1.2", ..., None when the server never answered
    client_version: str  # highest version the client offers (supported_versions, else legacy)
    cipher_suite: int | None  # the server's choice
    ech: bool  # ClientHello carries encrypted_client_hello (0xfe0d): real or GREASE
    ech_config_id: int | None
    ech_payload_len: int | None
    npn: bool  # ClientHello carries next_protocol_negotiation (13172)
    npn_server: tuple[bytes, ...]  # the server's NPN list (TLS <= 1.2 ServerHello)
    npn_selected_raw: bytes | None = None  # the client's encrypted NextProtocol choice (keys)
    alps: tuple[bytes, ...]  # ALPS (17513/17613) protocol IDs the client offers
    extensions: tuple[int, ...]  # ClientHello extension types, wire order, GREASE included
    grease: bool  # ClientHello carries any GREASE value (RFC 8701)
    sslv2: bool  # the ClientHello was in SSLv2 format (no extensions, so no ALPN)
    hello_retry: bool  # this ClientHello follows a HelloRetryRequest on the same connection
    alert: int | None  # the server's plaintext alert description, if it sent one
    violation: str | None  # protocol violation seen in the server's answer, else None
    server_frame: int | None  # frame that completed the server's answer
    quic_version: str | None = None  # QUIC only: "1", "2", "draft-29", …
    quic_dcid: str | None = (
        None  # QUIC: DCID of the client's first Initial (RFC 9000 §7.3 "original"), hex
    )
    quic_scid: str | None = None  # QUIC: the client's Source Connection ID, hex
    quic_restarts: int | None = (
        None  # QUIC: ClientHellos superseded after Retry / Version Negotiation
    )
    notes: tuple[str, ...] = field(default=())  # anomalies worth a human look


COLUMNS: tuple[str, ...] = tuple(Handshake.__dataclass_fields__)
