"""IANA tables for display: ALPN protocol IDs, versions, alerts, extension types.

Names are for people; records keep the raw wire values (STYLE.md, "keep the wire's truth").

ALPN_PROTOCOLS is the IANA registry "TLS Application-Layer Protocol Negotiation (ALPN)
Protocol IDs", https://www.iana.org/assignments/tls-extensiontype-values/
tls-extensiontype-values.xhtml#alpn-protocol-ids (its CSV: .../alpn-protocol-ids.csv).
The IANA page itself could not be fetched (no network); the table was built on 2026-11-22
from copies of that registry kept in public source trees (an auto-generated copy of the
CSV with its display names and references, and hand-kept copies listing the later
entries), cross-checked one against another, and from the RFCs that register the IDs
(7301, 7443, 8323, 8737, 8833, 8915, 9113, 9114, 9250, 9289, 9765). Display names are the
registry's "Protocol" column. Newer registrations that only one copy showed (``EoQ``,
``snifq/1``) are left out until their registry text can be read.

ALPN_UNREGISTERED is a separate table of well-known IDs that are *not* in that registry:
draft tokens of IETF drafts (HTTP/2, HTTP/3, DNS over QUIC), SPDY/3.1, the QUIC interop
runner's ``hq-interop``, and vendor tokens (Chromium's Google QUIC, Facebook's proxygen,
gRPC). Each entry says where it comes from; ``alpn.alpn_name`` marks them "(unregistered)".
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALERT_NAMES",
    "ALERT_NO_APPLICATION_PROTOCOL",
    "ALPN_PROTOCOLS",
    "ALPN_REGISTRY_DATE",
    "ALPN_REGISTRY_URL",
    "ALPN_UNREGISTERED",
    "EXTENSION_NAMES",
    "HANDSHAKE_NAMES",
    "alert_name",
    "extension_name",
    "is_grease",
    "version_name",
]

ALPN_REGISTRY_URL: Final = (
    "https://www.iana.org/assignments/tls-extensiontype-values/"
    "tls-extensiontype-values.xhtml#alpn-protocol-ids"
)
ALPN_REGISTRY_DATE: Final = "2026-11-22"

# Identification Sequence (raw octets) -> registry display name, in registry order.
ALPN_PROTOCOLS: Final[dict[bytes, str]] = {
    b"http/0.9": "HTTP/0.9",  # RFC 1945
    b"http/1.0": "HTTP/1.0",  # RFC 1945
    b"http/1.1": "HTTP/1.1",  # RFC 9112
    b"spdy/1": "SPDY/1",  # chromium.org spdy-protocol-draft1
    b"spdy/2": "SPDY/2",  # chromium.org spdy-protocol-draft2
    b"spdy/3": "SPDY/3",  # chromium.org spdy-protocol-draft3
    b"stun.turn": "Traversal Using Relays around NAT (TURN)",  # RFC 7443
    b"stun.nat-discovery": "NAT discovery using Session Traversal Utilities for NAT (STUN)",
    b"h2": "HTTP/2 over TLS",  # RFC 9113
    b"h2c": "HTTP/2 over TCP",  # RFC 9113; cleartext only, never valid in a TLS ALPN
    b"webrtc": "WebRTC Media and Data",  # RFC 8833
    b"c-webrtc": "Confidential WebRTC Media and Data",  # RFC 8833
    b"ftp": "FTP",  # RFC 959, RFC 4217
    b"imap": "IMAP",  # RFC 2595
    b"pop3": "POP3",  # RFC 2595
    b"managesieve": "ManageSieve",  # RFC 5804
    b"coap": "CoAP (over TLS)",  # RFC 8323
    b"co": "CoAP (over DTLS)",  # RFC 7252 (DTLS ALPN for CoAP)
    b"xmpp-client": "XMPP jabber:client namespace",  # XEP-0368
    b"xmpp-server": "XMPP jabber:server namespace",  # XEP-0368
    b"acme-tls/1": "acme-tls/1",  # RFC 8737
    b"mqtt": "OASIS Message Queuing Telemetry Transport (MQTT)",  # MQTT 5.0
    b"dot": "DNS-over-TLS",  # RFC 7858
    b"ntske/1": "Network Time Security Key Establishment, version 1",  # RFC 8915
    b"sunrpc": "SunRPC",  # RFC 9289
    b"h3": "HTTP/3",  # RFC 9114
    b"smb": "SMB2",  # MS-SMB2
    b"irc": "IRC",  # RFC 1459
    b"nntp": "NNTP (reading)",  # RFC 3977
    b"nnsp": "NNTP (transit)",  # RFC 3977
    b"doq": "DoQ",  # RFC 9250
    b"sip/2": "SIP",  # RFC 3261
    b"tds/8.0": "TDS/8.0",  # MS-TDS
    b"dicom": "DICOM",  # DICOM PS3.15
    b"postgresql": "PostgreSQL",  # PostgreSQL protocol docs
    b"radius/1.0": "RADIUS/1.0",  # RFC 9765
    b"radius/1.1": "RADIUS/1.1",  # RFC 9765
    b"netperfmeter/control": "NetPerfMeter Protocol Control Channel",
    b"netperfmeter/data": "NetPerfMeter Protocol Data Channel",
    b"n-pamp/2": "N-PAMP",
}
# The registry also reserves the 16 two-octet GREASE IDs 0x0A0A, 0x1A1A, ... 0xFAFA
# (RFC 8701 §3); alpn.alpn_name() names those "GREASE".


def _drafts(prefix: str, name: str, numbers: range) -> dict[bytes, str]:
    """``prefix`` + two-digit draft number -> ``name`` + " draft NN"."""
    return {f"{prefix}{n:02d}".encode(): f"{name} draft {n:02d}" for n in numbers}


# Well-known ALPN IDs that are NOT in the IANA registry (draft tokens, vendor experiments).
# Raw octets -> display name; alpn.alpn_name() appends " (unregistered)". Not exhaustive:
# the IDs seen in real traffic and in the corpus, each with where it is defined or used.
ALPN_UNREGISTERED: Final[dict[bytes, str]] = {
    # draft-ietf-httpbis-http2-11..17 §3.1: "Implementations of draft versions of the protocol
    # MUST add the string "-" and the corresponding draft number", e.g. "h2-11"; nghttp2 and
    # proxygen (kProtocolDraftString "h2-14") still offer h2-14/h2-16.
    **_drafts("h2-", "HTTP/2", range(11, 18)),
    # proxygen HTTP2Constants.cpp: kProtocolExperimentalString, Facebook's apps offer it.
    b"h2-fb": "HTTP/2 experimental, Facebook proxygen",
    # chromium.org spdy-protocol-draft3-1; Chromium offered it until SPDY was removed (2016).
    b"spdy/3.1": "SPDY/3.1",
    # draft-ietf-quic-http-17..34 §3.1 (the same rule: "h3-" and the draft number, e.g.
    # "h3-29"); the token was "hq-NN" before the rename to HTTP/3 in draft 17.
    **_drafts("h3-", "HTTP/3", range(17, 35)),
    # Chromium/quiche AlpnForVersion(): "h3-" + the Google QUIC version label.
    b"h3-Q043": "HTTP/3 over Google QUIC Q043, Chromium",
    b"h3-Q046": "HTTP/3 over Google QUIC Q046, Chromium",
    b"h3-Q050": "HTTP/3 over Google QUIC Q050, Chromium",
    b"h3-T050": "HTTP/3 over Google QUIC T050, Chromium",
    b"h3-T051": "HTTP/3 over Google QUIC T051, Chromium",
    # proxygen (Facebook's mvfst clients): kH3FBCurrentDraft, and HTTP/1.1 over QUIC.
    b"h3-fb-05": "HTTP/3 Facebook draft fb-05, proxygen",
    b"h1q-fb": "HTTP/1.1 over QUIC, Facebook proxygen",
    b"h1q-fb-v2": "HTTP/1.1 over QUIC v2, Facebook proxygen",
    # quic-interop-runner: HTTP/0.9 over QUIC v1 ("hq-interop"), over draft NN ("hq-NN",
    # also in nginx-quic, xquic, quiche for drafts 23-34).
    b"hq-interop": "HTTP/0.9 over QUIC, interop runner",
    **_drafts("hq-", "HTTP/0.9 over QUIC", range(23, 35)),
    # draft-ietf-dprive-dnsoquic-00..11: "doq-i" and the draft number (RFC 9250 took "doq").
    **_drafts("doq-i", "DNS over QUIC", range(0, 12)),
    # grpc/grpc src/core/ext/transport/chttp2/alpn/alpn.cc: offered before "h2".
    b"grpc-exp": "gRPC experimental",
}


def is_grease(v: int) -> bool:
    """True for the 16-bit GREASE values of RFC 8701 (0x0A0A, 0x1A1A, ... 0xFAFA)."""
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


_VERSIONS: Final[dict[int, str]] = {
    0x0002: "ssl2",
    0x0300: "ssl3",
    0x0301: "1.0",
    0x0302: "1.1",
    0x0303: "1.2",
    0x0304: "1.3",
    0xFEFF: "dtls1.0",
    0xFEFD: "dtls1.2",
    0xFEFC: "dtls1.3",
}


def version_name(v: int) -> str:
    """Short name of a (D)TLS protocol version as it appears on the wire.

    0x0304 -> "1.3", 0x7f1c -> "1.3-draft28", 0xfb17 -> "1.3-fb23" (Facebook's fizz
    drafts, 0xfb00 + the IETF draft it follows), a GREASE value -> "grease", anything
    else -> "0x" and four hex digits.
    """
    name = _VERSIONS.get(v)
    if name is not None:
        return name
    if v >> 8 == 0x7F:
        return f"1.3-draft{v & 0xFF}"
    if v >> 8 == 0xFB:
        return f"1.3-fb{v & 0xFF}"
    if is_grease(v):
        return "grease"
    return f"0x{v:04x}"


def version_rank(v: int) -> tuple[int, int, int]:
    """Sort key: 1.3 above its drafts, the drafts above 1.2, the rest by number."""
    hi = v >> 8
    if hi == 0x7F or hi == 0xFB:
        return (0x0304, 0, v & 0xFF)
    return (v, 1, 0)


ALERT_NO_APPLICATION_PROTOCOL: Final = 120  # RFC 7301 §3.2

# TLS Alert descriptions (IANA "TLS Alerts"; RFC 5246, 8446, 7301, 6066, 8701 era names).
ALERT_NAMES: Final[dict[int, str]] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    52: "too_many_cids_requested",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
    121: "ech_required",
}


def alert_name(description: int) -> str:
    """IANA name of an alert description, ``unknown(N)`` when unregistered."""
    return ALERT_NAMES.get(description) or f"unknown({description})"


HANDSHAKE_NAMES: Final[dict[int, str]] = {
    0: "hello_request",
    1: "client_hello",
    2: "server_hello",
    3: "hello_verify_request",
    4: "new_session_ticket",
    5: "end_of_early_data",
    6: "hello_retry_request",  # TLS 1.3 drafts up to 21 only
    8: "encrypted_extensions",
    11: "certificate",
    12: "server_key_exchange",
    13: "certificate_request",
    14: "server_hello_done",
    15: "certificate_verify",
    16: "client_key_exchange",
    20: "finished",
    21: "certificate_url",
    22: "certificate_status",
    23: "supplemental_data",
    24: "key_update",
    25: "compressed_certificate",
    26: "ekt_key",
    67: "next_protocol",
    254: "message_hash",
}

# Extension types seen in hellos (IANA "TLS ExtensionType Values", plus the
# unregistered code points browsers use). For display and error messages only.
EXTENSION_NAMES: Final[dict[int, str]] = {
    0: "server_name",
    1: "max_fragment_length",
    5: "status_request",
    10: "supported_groups",
    11: "ec_point_formats",
    13: "signature_algorithms",
    14: "use_srtp",
    15: "heartbeat",
    16: "application_layer_protocol_negotiation",
    17: "status_request_v2",
    18: "signed_certificate_timestamp",
    21: "padding",
    22: "encrypt_then_mac",
    23: "extended_master_secret",
    27: "compress_certificate",
    28: "record_size_limit",
    35: "session_ticket",
    41: "pre_shared_key",
    42: "early_data",
    43: "supported_versions",
    44: "cookie",
    45: "psk_key_exchange_modes",
    47: "certificate_authorities",
    49: "post_handshake_auth",
    50: "signature_algorithms_cert",
    51: "key_share",
    57: "quic_transport_parameters",
    13172: "next_protocol_negotiation",
    17513: "application_settings_old",
    17613: "application_settings",
    30032: "channel_id",
    65037: "encrypted_client_hello",
    65281: "renegotiation_info",
    65486: "encrypted_server_name",
}


def extension_name(ext_type: int) -> str:
    """Name of an extension type; ``grease`` or ``unknown`` when it has none."""
    name = EXTENSION_NAMES.get(ext_type)
    if name is not None:
        return name
    return "grease" if is_grease(ext_type) else "unknown"
