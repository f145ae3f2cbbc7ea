"""The DataFrame and Parquet sinks: the only modules that import pandas / pyarrow."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..records import Handshake, Selection
from ..tls.alpn import alpn_text
from .rows import COLUMNS

if TYPE_CHECKING:
    import pandas as pd

SELECTION_VALUES = [s.value for s in Selection]


def _opt_text(raw: bytes | None) -> str | None:
    return None if raw is None else alpn_text(raw)


def columns(items: Iterable[tuple[str, Handshake]]) -> dict[str, list[Any]]:
    """Column lists (raw Python values) for ``(capture, record)`` pairs."""
    pairs = list(items)
    hs = [h for _, h in pairs]
    return {
        "ts": [h.ts_ns for h in hs],
        "frame": [h.frame for h in hs],
        "transport": [h.transport for h in hs],
        "client_ip": [h.client_ip for h in hs],
        "client_port": [h.client_port for h in hs],
        "server_ip": [h.server_ip for h in hs],
        "server_port": [h.server_port for h in hs],
        "sni": [h.sni for h in hs],
        "alpn_offered": [[alpn_text(p) for p in h.alpn_offered_raw] for h in hs],
        "alpn_selected": [_opt_text(h.alpn_selected_raw) for h in hs],
        "selection": [h.selection.value for h in hs],
        "tls_version": [h.tls_version for h in hs],
        "ech": [h.ech for h in hs],
        "npn": [h.npn for h in hs],
        "capture": [c for c, _ in pairs],
        "ip_version": [h.ip_version for h in hs],
        "client_version": [h.client_version for h in hs],
        "cipher_suite": [h.cipher_suite for h in hs],
        "alpn_offered_hex": [[p.hex() for p in h.alpn_offered_raw] for h in hs],
        "alpn_selected_hex": [
            None if h.alpn_selected_raw is None else h.alpn_selected_raw.hex() for h in hs
        ],
        "alps": [[alpn_text(p) for p in h.alps] for h in hs],
        "npn_server": [[alpn_text(p) for p in h.npn_server] for h in hs],
        "npn_selected": [_opt_text(h.npn_selected_raw) for h in hs],
        "ech_config_id": [h.ech_config_id for h in hs],
        "ech_payload_len": [h.ech_payload_len for h in hs],
        "grease": [h.grease for h in hs],
        "sslv2": [h.sslv2 for h in hs],
        "hello_retry": [h.hello_retry for h in hs],
        "alert": [h.alert for h in hs],
        "violation": [h.violation for h in hs],
        "server_frame": [h.server_frame for h in hs],
        "quic_version": [h.quic_version for h in hs],
        "quic_dcid": [h.quic_dcid for h in hs],
        "quic_scid": [h.quic_scid for h in hs],
        "quic_restarts": [h.quic_restarts for h in hs],
        "extensions": [list(h.extensions) for h in hs],
        "notes": [list(h.notes) for h in hs],
    }


def to_dataframe(items: Iterable[tuple[str, Handshake]]) -> pd.DataFrame:
    """Tidy DataFrame: one row per handshake, columns as in :data:`COLUMNS`."""
    import pandas as pd

    data = columns(items)
    df = pd.DataFrame(data, columns=list(COLUMNS))
    df["ts"] = pd.to_datetime(pd.Series(data["ts"], dtype="int64"), unit="ns", utc=True)
    for name in ("frame", "client_port", "server_port", "ip_version"):
        df[name] = df[name].astype("int64")
    for name in (
        "cipher_suite",
        "ech_config_id",
        "ech_payload_len",
        "alert",
        "server_frame",
        "quic_restarts",
    ):
        df[name] = df[name].astype("Int64")
    df["selection"] = pd.Categorical(df["selection"], categories=SELECTION_VALUES)
    for name in ("transport", "tls_version", "client_version", "quic_version"):
        df[name] = df[name].astype("category")
    for name in ("ech", "npn", "grease", "sslv2", "hello_retry"):
        df[name] = df[name].astype(bool)
    return df


def write_parquet(items: Iterable[tuple[str, Handshake]], path: str) -> int:
    """Parquet with typed columns (lists as list<string>, ts as timestamp[ns, UTC])."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = columns(items)
    schema = pa.schema(
        [
            ("ts", pa.timestamp("ns", tz="UTC")),
            ("frame", pa.int64()),
            ("transport", pa.string()),
            ("client_ip", pa.string()),
            ("client_port", pa.int32()),
            ("server_ip", pa.string()),
            ("server_port", pa.int32()),
            ("sni", pa.string()),
            ("alpn_offered", pa.list_(pa.string())),
            ("alpn_selected", pa.string()),
            ("selection", pa.dictionary(pa.int8(), pa.string())),
            ("tls_version", pa.string()),
            ("ech", pa.bool_()),
            ("npn", pa.bool_()),
            ("capture", pa.string()),
            ("ip_version", pa.int8()),
            ("client_version", pa.string()),
            ("cipher_suite", pa.int32()),
            ("alpn_offered_hex", pa.list_(pa.string())),
            ("alpn_selected_hex", pa.string()),
            ("alps", pa.list_(pa.string())),
            ("npn_server", pa.list_(pa.string())),
            ("npn_selected", pa.string()),
            ("ech_config_id", pa.int16()),
            ("ech_payload_len", pa.int32()),
            ("grease", pa.bool_()),
            ("sslv2", pa.bool_()),
            ("hello_retry", pa.bool_()),
            ("alert", pa.int16()),
            ("violation", pa.string()),
            ("server_frame", pa.int64()),
            ("quic_version", pa.string()),
            ("quic_dcid", pa.string()),
            ("quic_scid", pa.string()),
            ("quic_restarts", pa.int32()),
            ("extensions", pa.list_(pa.int32())),
            ("notes", pa.list_(pa.string())),
        ]
    )
    arrays = []
    for f in schema:
        values = data[f.name]
        if f.name == "selection":
            arrays.append(pa.array(values, pa.string()).dictionary_encode().cast(f.type))
        else:
            arrays.append(pa.array(values, f.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    pq.write_table(table, path)
    return int(table.num_rows)
