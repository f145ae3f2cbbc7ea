"""Suricata EVE JSON lines: one ``tls`` or ``quic`` event per handshake, as Suricata 8 names
its fields, so that an EVE pipeline (Elastic's and Splunk's Suricata inputs, jq scripts)
takes them as they are.

Each event is written from the row :func:`alpnsniff.sinks.rows.row` makes:

- the common part as Suricata's ``CreateEveHeader`` (src/output-json.c) orders it:
  ``timestamp`` (``2026-11-22T00:54:32.086361+0000``: microseconds and a numeric UTC offset,
  as Suricata writes packet times; alpnsniff's nanoseconds are cut), ``event_type``,
  ``src_ip``/``src_port`` the client and ``dest_ip``/``dest_port`` the server (Suricata's
  flow direction: the side that opened the connection), ``proto`` (``TCP``; ``UDP`` for QUIC
  and DTLS), ``community_id``. IPv6 addresses are written as Suricata prints them, every
  group in four digits (``fd00:0099:0000:…:0001``, src/util-print.c ``PrintInetIPv6``);
  IPv4 as usual.
- ``tls`` (TCP, and DTLS, which Suricata does not dissect): ``sni``, ``version`` with
  Suricata's spellings (``TLS 1.3``, ``TLS 1.2``, ``TLS 1.1``, ``TLSv1`` for 1.0, ``SSLv3``,
  ``TLS 1.3 draft-28``, ``0x…`` otherwise; ``UNDETERMINED`` when no server version was
  seen), ``client_alpns`` (the offered IDs; empty IDs left out, as Suricata 8 does) and
  ``server_alpns`` (the server's choice when known: in clear text, or decrypted with a key
  log — the server's ALPN either way). A list Suricata would not write (no ALPN) is left
  out, as Suricata leaves it out.
- ``quic`` (QUIC): ``version`` as Suricata writes the long header's version (lower-case hex
  without leading zeros: ``1``, ``6b3343cf`` for v2, ``ff00001d`` for draft-29), ``sni``,
  and ``extensions``: every ClientHello extension in wire order, ``{"name", "type",
  "values"}``, ``name`` only for the types Suricata names (rust/src/quic/logger.rs; "alpn"
  for 16), ``values`` for server_name and alpn.

What Suricata writes and alpnsniff cannot know is left out: ``flow_id`` (Suricata's own flow
hash), ``pcap_cnt`` (the packet Suricata logs at is a later one than the ClientHello's),
``tx_id``, ``pkt_src``, certificate fields, JA3/JA4. What alpnsniff knows beyond Suricata is
under one key of its own, ``alpnsniff``: ``selection`` (how the choice was learnt),
``alpn_selected`` (also for QUIC, where Suricata has no field for it), ``capture``, and
``frame`` (the ClientHello's packet number, as Wireshark numbers it). Suricata's schema
(etc/schema.json) allows no top-level key it does not know: a validator run with Suricata's
schema must allow that one.

Wire text is written escaped, as in every other format (``\\xNN``: README, Escaping), where
Suricata writes the bytes as lossy UTF-8; printable ASCII, nearly every real SNI and ALPN, is
the same in both.
"""

from __future__ import annotations

import json
from socket import AF_INET6, inet_pton
from typing import Any, TextIO

from ..quic.versions import KNOWN_VERSIONS, version_name
from .rows import IP_PROTOCOLS

# alpnsniff's version text (registry.version_name) -> Suricata's (SCTlsVersion::as_str).
_TLS_VERSIONS: dict[str, str] = {
    "ssl2": "SSLv2",
    "ssl3": "SSLv3",
    "1.0": "TLSv1",
    "1.1": "TLS 1.1",
    "1.2": "TLS 1.2",
    "1.3": "TLS 1.3",
}
_TLS_DRAFTS = range(16, 29)  # Suricata names TLS 1.3 draft-16 to draft-28
_FB_DRAFTS = (20, 21, 22, 23, 26)  # and Facebook's fizz drafts 20-23, 26 ("…-fb")
# (alpnsniff's dtls1.x are the codes 0xfeff, 0xfefd, 0xfefc, which Suricata prints in hex)
_DTLS_CODES = {"dtls1.0": 0xFEFF, "dtls1.2": 0xFEFD, "dtls1.3": 0xFEFC}

# The QUIC version names alpnsniff gives (quic.versions.version_name) -> Suricata's hex text.
_QUIC_VERSIONS: dict[str, str] = {version_name(v): f"{v:x}" for v in KNOWN_VERSIONS}

_ALPN = 16
_SERVER_NAME = 0
# The extension types Suricata names in quic.extensions (rust/src/quic/logger.rs,
# quic_tls_extension_name: IANA's names, "alpn" for 16); others have no "name".
_EXTENSION_NAMES: dict[int, str] = {
    0: "server_name",
    1: "max_fragment_length",
    2: "client_certificate_url",
    3: "trusted_ca_keys",
    4: "truncated_hmac",
    5: "status_request",
    6: "user_mapping",
    7: "client_authz",
    8: "server_authz",
    9: "cert_type",
    10: "supported_groups",
    11: "ec_point_formats",
    12: "srp",
    13: "signature_algorithms",
    14: "use_srtp",
    15: "heartbeat",
    16: "alpn",
    17: "status_request_v2",
    18: "signed_certificate_timestamp",
    19: "client_certificate_type",
    20: "server_certificate_type",
    21: "padding",
    22: "encrypt_then_mac",
    23: "extended_master_secret",
    24: "token_binding",
    25: "cached_info",
    26: "tls_lts",
    27: "compress_certificate",
    28: "record_size_limit",
    29: "pwd_protect",
    30: "pwd_clear",
    31: "password_salt",
    32: "ticket_pinning",
    33: "tls_cert_with_extern_psk",
    34: "delegated_credentials",
    35: "session_ticket",
    36: "tlmsp",
    37: "tlmsp_proxying",
    38: "tlmsp_delegate",
    39: "supported_ekt_ciphers",
    41: "pre_shared_key",
    42: "early_data",
    43: "supported_versions",
    44: "cookie",
    45: "psk_key_exchange_modes",
    47: "certificate_authorities",
    48: "oid_filters",
    49: "post_handshake_auth",
    50: "signature_algorithms_cert",
    51: "key_share",
    52: "transparency_info",
    53: "connection_id_deprecated",
    54: "connection_id",
    55: "external_id_hash",
    56: "external_session_id",
    57: "quic_transport_parameters",
    58: "ticket_request",
    59: "dnssec_chain",
    13172: "next_protocol_negotiation",
    65281: "renegotiation_info",
}


def eve_timestamp(iso: str) -> str:
    """``2026-11-22T00:54:32.086361000Z`` (a row's ``ts``) as Suricata writes it in UTC:
    ``2026-11-22T00:54:32.086361+0000``."""
    return f"{iso[:-4]}+0000"  # the last three of nine fraction digits and the Z


def eve_ip(ip: str) -> str:
    """An address as Suricata prints it: IPv4 as is, IPv6 with all eight groups of four."""
    if ":" not in ip:
        return ip
    digits = inet_pton(AF_INET6, ip).hex()
    return ":".join(digits[i : i + 4] for i in range(0, 32, 4))


def tls_version(version: str | None) -> str:
    """Suricata's text for the negotiated version (alpnsniff's text, None: not seen)."""
    if version is None:
        return "UNDETERMINED"
    known = _TLS_VERSIONS.get(version)
    if known is not None:
        return known
    if version.startswith("1.3-draft"):
        draft = int(version[9:])
        if draft in _TLS_DRAFTS:
            return f"TLS 1.3 draft-{draft}"
        return "TLS 1.3 draft-<16" if draft < 16 else f"0x{0x7F00 + draft:04x}"
    if version.startswith("1.3-fb"):
        draft = int(version[6:])
        return f"TLS 1.3 draft-{draft}-fb" if draft in _FB_DRAFTS else f"0x{0xFB00 + draft:04x}"
    if version in _DTLS_CODES:
        return f"0x{_DTLS_CODES[version]:04x}"
    return version  # "0x…" already (or "grease": a code alpnsniff did not keep)


def quic_version(version: str) -> str:
    """Suricata's text for a QUIC version (alpnsniff's name: ``1``, ``draft-29``, ``0x…``)."""
    known = _QUIC_VERSIONS.get(version)
    if known is not None:
        return known
    return f"{int(version, 16):x}" if version.startswith("0x") else version


def _quic_extensions(row: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for ext in row["extensions"]:
        entry: dict[str, Any] = {}
        name = _EXTENSION_NAMES.get(ext)
        if name is not None:
            entry["name"] = name
        entry["type"] = ext
        if ext == _ALPN and row["alpn_offered"]:
            entry["values"] = row["alpn_offered"]
        elif ext == _SERVER_NAME and row["sni"] is not None:
            entry["values"] = [row["sni"]]
        out.append(entry)
    return out


def _fingerprints(app: dict[str, Any], row: dict[str, Any]) -> None:
    """Suricata's ``ja3`` object and ``ja4`` string (tls and quic events), when known."""
    if row["ja3_hash"] is not None:
        app["ja3"] = {"hash": row["ja3_hash"], "string": row["ja3"]}
    if row["ja4"] is not None:
        app["ja4"] = row["ja4"]


def eve_event(row: dict[str, Any]) -> dict[str, Any]:
    """The EVE event of one row (:func:`alpnsniff.sinks.rows.row`), keys in Suricata's order."""
    quic = row["transport"] == "quic"
    event: dict[str, Any] = {
        "timestamp": eve_timestamp(row["ts"]),
        "event_type": "quic" if quic else "tls",
        "src_ip": eve_ip(row["client_ip"]),
        "src_port": row["client_port"],
        "dest_ip": eve_ip(row["server_ip"]),
        "dest_port": row["server_port"],
        "proto": "TCP" if IP_PROTOCOLS[row["transport"]] == 6 else "UDP",
        "community_id": row["community_id"],
    }
    app: dict[str, Any] = {}
    if quic:
        if row["quic_version"] is not None:
            app["version"] = quic_version(row["quic_version"])
        if row["sni"] is not None:
            app["sni"] = row["sni"]
        _fingerprints(app, row)
        if row["extensions"]:
            app["extensions"] = _quic_extensions(row)
        event["quic"] = app
    else:
        if row["sni"] is not None:
            app["sni"] = row["sni"]
        app["version"] = tls_version(row["tls_version"])
        _fingerprints(app, row)
        offered = [p for p in row["alpn_offered"] or () if p]
        if offered:
            app["client_alpns"] = offered
        if row["alpn_selected"]:
            app["server_alpns"] = [row["alpn_selected"]]
        if row["upgraded_from"] is not None:
            app["from_proto"] = row["upgraded_from"]  # Suricata's name for a STARTTLS start
        event["tls"] = app
    event["alpnsniff"] = {
        "selection": row["selection"],
        "alpn_selected": row["alpn_selected"],
        "capture": row["capture"],
        "frame": row["frame"],
    }
    return event


class EveWriter:
    """One EVE JSON event per line (``eve.json``), from :func:`~alpnsniff.sinks.rows.row`'s
    dicts; nothing before the first line or after the last."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        # Suricata writes compact JSON; ASCII only, so no escaped wire text changes meaning
        self._encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode

    def write(self, row: dict[str, Any]) -> None:
        self.out.write(self._encode(eve_event(row)) + "\n")

    def close(self) -> None:
        self.out.flush()
