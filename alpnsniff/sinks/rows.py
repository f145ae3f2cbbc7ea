"""The public columns: one flat row per handshake, derived from a :class:`Handshake`.

Every sink (ndjson, CSV, Parquet, DataFrame, table) writes these columns, in this order, with
these meanings (documented in the README). Wire strings are already escaped here
(:func:`~alpnsniff.tls.alpn.alpn_text`): printable ASCII but the backslash as is, every
other octet as ``\\xNN``. The raw octets stay available as hex.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..records import Handshake
from ..tls.alpn import alpn_text

COLUMNS: tuple[str, ...] = (
    "ts",
    "frame",
    "transport",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "sni",
    "alpn_offered",
    "alpn_selected",
    "selection",
    "tls_version",
    "ech",
    "npn",
    # more, beyond the fixed set
    "capture",
    "ip_version",
    "client_version",
    "cipher_suite",
    "alpn_offered_hex",
    "alpn_selected_hex",
    "alps",
    "npn_server",
    "npn_selected",
    "ech_config_id",
    "ech_payload_len",
    "grease",
    "sslv2",
    "hello_retry",
    "alert",
    "violation",
    "server_frame",
    "quic_version",
    "quic_dcid",
    "quic_scid",
    "quic_restarts",
    "extensions",
    "notes",
)

# Columns whose values came from the wire as text (escaped, but still attacker-chosen).
WIRE_TEXT_COLUMNS = frozenset(
    {"sni", "alpn_offered", "alpn_selected", "alps", "npn_server", "npn_selected"}
)


def iso_ts(ts_ns: int) -> str:
    """Nanosecond UTC timestamp as ISO 8601 with 9 fraction digits and a Z."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def row(h: Handshake, capture: str) -> dict[str, Any]:
    """A JSON-ready dict of the public columns (``ts`` as ISO 8601 text)."""
    selected = h.alpn_selected_raw
    return {
        "ts": iso_ts(h.ts_ns),
        "frame": h.frame,
        "transport": h.transport,
        "client_ip": h.client_ip,
        "client_port": h.client_port,
        "server_ip": h.server_ip,
        "server_port": h.server_port,
        "sni": h.sni,
        "alpn_offered": [alpn_text(p) for p in h.alpn_offered_raw],
        "alpn_selected": None if selected is None else alpn_text(selected),
        "selection": h.selection.value,
        "tls_version": h.tls_version,
        "ech": h.ech,
        "npn": h.npn,
        "capture": capture,
        "ip_version": h.ip_version,
        "client_version": h.client_version,
        "cipher_suite": h.cipher_suite,
        "alpn_offered_hex": [p.hex() for p in h.alpn_offered_raw],
        "alpn_selected_hex": None if selected is None else selected.hex(),
        "alps": [alpn_text(p) for p in h.alps],
        "npn_server": [alpn_text(p) for p in h.npn_server],
        "npn_selected": None if h.npn_selected_raw is None else alpn_text(h.npn_selected_raw),
        "ech_config_id": h.ech_config_id,
        "ech_payload_len": h.ech_payload_len,
        "grease": h.grease,
        "sslv2": h.sslv2,
        "hello_retry": h.hello_retry,
        "alert": h.alert,
        "violation": h.violation,
        "server_frame": h.server_frame,
        "quic_version": h.quic_version,
        "quic_dcid": h.quic_dcid,
        "quic_scid": h.quic_scid,
        "quic_restarts": h.quic_restarts,
        "extensions": list(h.extensions),
        "notes": list(h.notes),
    }
