"""Turn parsed hellos and the server's answer into :class:`Handshake` records.

Pure functions: what the server's answer means for ``selection`` lives here, once, for every
transport (TLS over TCP now; QUIC and DTLS feed the same functions).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from .records import Handshake, Selection
from .tls.alpn import alpn_text
from .tls.hello import ClientHello, ServerHello
from .tls.registry import ALERT_NO_APPLICATION_PROTOCOL, is_grease, version_name


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Who is the client, who the server, as raw address bytes and ports."""

    ip_version: int
    client_ip: bytes
    client_port: int
    server_ip: bytes
    server_port: int

    def texts(self) -> tuple[str, str]:
        return (str(ipaddress.ip_address(self.client_ip)), str(ipaddress.ip_address(self.server_ip)))


def _client_version(ch: ClientHello) -> str:
    versions = [v for v in ch.supported_versions if not is_grease(v)]
    return version_name(max(versions) if versions else ch.legacy_version)


def offered(
    ch: ClientHello,
    *,
    ends: Endpoints,
    ts_ns: int,
    frame: int,
    transport: str,
    hello_retry: bool,
    quic_version: str | None = None,
) -> Handshake:
    """The record of a ClientHello whose answer is not known yet (``selection=unseen``)."""
    client_ip, server_ip = ends.texts()
    ech = ch.ech
    notes: list[str] = list(ch.ext_errors)
    if ch.has_alpn and not ch.alpn:
        notes.append("alpn-extension-empty")
    if any(not p for p in ch.alpn):
        notes.append("alpn-empty-protocol-id")
    return Handshake(
        ts_ns=ts_ns,
        frame=frame,
        transport=transport,
        ip_version=ends.ip_version,
        client_ip=client_ip,
        client_port=ends.client_port,
        server_ip=server_ip,
        server_port=ends.server_port,
        sni=None if ch.sni is None else alpn_text(ch.sni),
        alpn_offered_raw=tuple(ch.alpn),
        alpn_selected_raw=None,
        selection=Selection.UNSEEN,
        tls_version=None,
        client_version=_client_version(ch),
        cipher_suite=None,
        ech=ech is not None,
        ech_config_id=None if ech is None else ech.config_id,
        ech_payload_len=None if ech is None else ech.payload_len,
        npn=ch.npn,
        npn_server=(),
        alps=tuple(ch.alps),
        extensions=tuple(ch.extensions),
        grease=ch.grease,
        sslv2=False,
        hello_retry=hello_retry,
        alert=None,
        violation=None,
        server_frame=None,
        quic_version=quic_version,
        notes=tuple(notes),
    )


def offered_sslv2(
    *, version: int, ends: Endpoints, ts_ns: int, frame: int
) -> Handshake:
    """An SSLv2-format ClientHello: no extensions, so no ALPN, no SNI."""
    client_ip, server_ip = ends.texts()
    return Handshake(
        ts_ns=ts_ns,
        frame=frame,
        transport="tcp",
        ip_version=ends.ip_version,
        client_ip=client_ip,
        client_port=ends.client_port,
        server_ip=server_ip,
        server_port=ends.server_port,
        sni=None,
        alpn_offered_raw=(),
        alpn_selected_raw=None,
        selection=Selection.UNSEEN,
        tls_version=None,
        client_version=version_name(version),
        cipher_suite=None,
        ech=False,
        ech_config_id=None,
        ech_payload_len=None,
        npn=False,
        npn_server=(),
        alps=(),
        extensions=(),
        grease=False,
        sslv2=True,
        hello_retry=False,
        alert=None,
        violation=None,
        server_frame=None,
    )


def answered(record: Handshake, sh: ServerHello, *, frame: int) -> Handshake:
    """Join the server's ServerHello (or HelloRetryRequest) to the record of its ClientHello."""
    tls13 = sh.selected_version == 0x0304 or (sh.selected_version >> 8) == 0x7F
    violations: list[str] = list(sh.ext_errors)
    selected: bytes | None = None
    if sh.is_hrr:
        selection = Selection.RETRIED
    elif sh.has_alpn:
        selection = Selection.VISIBLE
        selected = sh.alpn[0] if sh.alpn else None
        if len(sh.alpn) != 1:
            violations.append(f"serverhello-alpn-count-{len(sh.alpn)}")
        if selected is not None and selected not in record.alpn_offered_raw:
            violations.append("selected-not-offered")
        if tls13:
            violations.append("alpn-in-tls13-serverhello")
    elif tls13 and record.alpn_offered_raw:
        selection = Selection.ENCRYPTED
    else:
        selection = Selection.NONE
    return replace(
        record,
        alpn_selected_raw=selected,
        selection=selection,
        tls_version=version_name(sh.selected_version),
        cipher_suite=sh.cipher_suite,
        npn_server=tuple(sh.npn_protocols),
        violation=";".join(violations) or None,
        server_frame=frame,
    )


def alerted(record: Handshake, description: int, *, frame: int) -> Handshake:
    """The server answered the ClientHello with a plaintext alert instead of a ServerHello."""
    rejected = description == ALERT_NO_APPLICATION_PROTOCOL
    return replace(
        record,
        selection=Selection.REJECTED if rejected else Selection.ABORTED,
        alert=description,
        server_frame=frame,
    )


def answered_sslv2(record: Handshake, *, frame: int) -> Handshake:
    """The server answered in SSLv2: no ALPN exists there."""
    return replace(record, selection=Selection.NONE, tls_version="ssl2", server_frame=frame)
