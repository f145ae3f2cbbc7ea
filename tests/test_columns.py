"""The column table (records.COLUMN_TABLE) against the README, the Handshake and every sink."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import random
import re
import subprocess
import sys
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import alpnsniff
from alpnsniff.records import COLUMN_TABLE, Column, Derive, Handshake, Kind, Selection
from alpnsniff.sinks.frame import columns, to_dataframe, write_parquet
from alpnsniff.sinks.rows import COLUMNS, WIRE_TEXT_COLUMNS, iso_ts, row
from alpnsniff.tls.alpn import alpn_text
from tests.conftest import CAPTURES, REPO

BY_NAME = {c.name: c for c in COLUMN_TABLE}

# --- the README's table ---------------------------------------------------------------------


def _readme_table(heading: str) -> list[tuple[str, str]]:
    """(first cell, second cell) of each body row of the markdown table under ``heading``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.count(f"\n{heading}\n") == 1, heading
    section = text.split(f"\n{heading}\n", 1)[1]
    lines = []
    for line in section.splitlines():
        if line.startswith("#"):
            break
        if line.startswith("|"):
            lines.append(line)
        elif lines:  # the table ended
            break
    assert len(lines) > 2 and re.fullmatch(r"\|(-+\|)+", lines[1]), lines[:2]
    cells = []
    for line in lines[2:]:
        parts = [p.strip() for p in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        assert len(parts) == 2, line
        cells.append((parts[0], parts[1]))
    return cells


def readme_columns() -> list[tuple[list[str], str]]:
    """(column names, meaning) per README row; a row may document several columns."""
    out = []
    for names_cell, meaning in _readme_table(
        "### Columns (DataFrame, ndjson keys, CSV header, Parquet)"
    ):
        assert re.fullmatch(r"`\w+`(, `\w+`)*", names_cell), names_cell
        out.append((re.findall(r"`(\w+)`", names_cell), meaning))
    return out


def test_readme_lists_exactly_the_table_columns_in_order() -> None:
    names = [n for group, _ in readme_columns() for n in group]
    assert names == list(COLUMNS)


# A type the README states for a column, as the phrase it uses -> what the table must say.
# Only the README's own phrases are checked (a row that states no type is not guessed at).
README_TYPES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"`datetime64\[ns, UTC\]`"), lambda c: c.kind is Kind.TIMESTAMP),
    (re.compile(r"^list of str\b"), lambda c: c.kind is Kind.LIST_STR),
    (re.compile(r"^list of int\b"), lambda c: c.kind is Kind.LIST_INT),
    (re.compile(r"^str or null\b"), lambda c: c.kind is Kind.STR and c.nullable),
    (re.compile(r"^str\b(?! or null)"), lambda c: c.kind is Kind.STR and not c.nullable),
    (re.compile(r"^bool\b"), lambda c: c.kind is Kind.BOOL),
    (re.compile(r"\(int\)|^int\b"), lambda c: c.kind is Kind.INT),
    (re.compile(r"\bnull\b"), lambda c: c.nullable),
    (re.compile(r"\bescaped text\b"), lambda c: c.wire_text),
]


def test_readme_stated_types_agree_with_the_table() -> None:
    checked: set[str] = set()
    for group, meaning in readme_columns():
        for pattern, holds in README_TYPES:
            if pattern.search(meaning):
                for name in group:
                    assert holds(BY_NAME[name]), f"{name}: README says {pattern.pattern!r}"
                    checked.add(name)
    # The README states these today; the checker must keep recognising its phrases.
    assert {"ts", "sni", "alpn_offered", "alpn_selected", "tls_version", "ech", "npn"} <= checked
    assert "cipher_suite" in checked


def test_readme_selection_values_are_the_enum() -> None:
    values = [cell for cell, _ in _readme_table("### `selection`")]
    assert values == [f"`{s.value}`" for s in Selection]


# --- the table itself -----------------------------------------------------------------------


def test_table_names_are_unique_and_every_record_field_is_published() -> None:
    assert len(set(COLUMNS)) == len(COLUMNS) == len(COLUMN_TABLE)
    sources = {name for c in COLUMN_TABLE for name in c.fields}
    assert sources == set(Handshake.__dataclass_fields__)
    assert all(c.meaning and "\n" not in c.meaning for c in COLUMN_TABLE)


# Python type of the Handshake field a column is derived from, per derivation and kind.
FIELD_TYPES: dict[tuple[Derive, Kind], set[Any]] = {
    (Derive.FIELD, Kind.TIMESTAMP): {int},
    (Derive.FIELD, Kind.INT): {int},
    (Derive.FIELD, Kind.BOOL): {bool},
    (Derive.FIELD, Kind.STR): {str},
    (Derive.FIELD, Kind.CATEGORY): {str},
    (Derive.ENUM, Kind.SELECTION): {Selection},
    (Derive.LIST, Kind.LIST_INT): {tuple[int, ...]},
    (Derive.LIST, Kind.LIST_STR): {tuple[str, ...]},
    (Derive.TEXT, Kind.STR): {bytes},
    (Derive.HEX, Kind.STR): {bytes},
    (Derive.TEXT_LIST, Kind.LIST_STR): {tuple[bytes, ...]},
    (Derive.HEX_LIST, Kind.LIST_STR): {tuple[bytes, ...]},
}


def _source_records() -> Any:
    """``records`` as its source declares it: a class mypyc compiled keeps only the runtime
    class of each annotation (``str | None`` becomes ``type``), so read the source module."""
    spec = importlib.util.spec_from_file_location("_records_source", REPO / "alpnsniff/records.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses looks its module up while building)
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_table_types_and_nullability_follow_the_record_fields() -> None:
    module = _source_records()
    source = module.Handshake
    assert [f.name for f in dataclasses.fields(source)] == [
        f.name for f in dataclasses.fields(Handshake)
    ]
    hints = typing.get_type_hints(source, vars(module))
    for c in COLUMN_TABLE:
        if c.source is None:
            assert c.derive is Derive.CAPTURE and c.kind is Kind.STR and not c.nullable
            continue
        if isinstance(c.source, tuple):  # Derive.COMMUNITY_ID: text of the 5-tuple
            assert c.kind is Kind.STR and not c.nullable
            continue
        hint = hints[c.source]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        args = set(typing.get_args(hint)) if union else {hint}
        optional = type(None) in args
        # (the source module's own Selection is another class object of the same enum)
        base = {Selection if t is module.Selection else t for t in args - {type(None)}}
        assert c.nullable == optional, c.name
        assert base <= FIELD_TYPES[(c.derive, c.kind)], (c.name, hint)


def test_wire_text_columns_are_the_escaped_wire_strings() -> None:
    assert {
        "sni",
        "alpn_offered",
        "alpn_selected",
        "alps",
        "npn_server",
        "npn_selected",
        "connect_target",
        "connect_alpn",
        "connect_alpn_header",
    } == WIRE_TEXT_COLUMNS


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(kind=Kind.INT, derive=Derive.FIELD, source="frame"), "bits"),
        (dict(kind=Kind.INT, derive=Derive.FIELD, source="frame", bits=12), "bits"),
        # pandas would read a narrower non-nullable Parquet int back as int32, not int64
        (dict(kind=Kind.INT, derive=Derive.FIELD, source="frame", bits=32), "64 bits"),
        (dict(kind=Kind.CATEGORY, derive=Derive.FIELD, source="transport"), "bits"),
        (dict(kind=Kind.CATEGORY, derive=Derive.FIELD, source="transport", bits=8), "categories"),
        (
            dict(
                kind=Kind.CATEGORY,
                derive=Derive.FIELD,
                source="transport",
                bits=8,
                categories=("tcp", "tcp"),
            ),
            "categories",
        ),
        (
            dict(
                kind=Kind.CATEGORY,
                derive=Derive.FIELD,
                source="transport",
                bits=8,
                categories=tuple(map(str, range(200))),
            ),
            "too many",
        ),
        (
            dict(
                kind=Kind.SELECTION,
                derive=Derive.ENUM,
                source="selection",
                bits=8,
                categories=("visible",),
            ),
            "selection",
        ),
        (dict(kind=Kind.STR, derive=Derive.FIELD, source="sni", categories=("a",)), "categories"),
        (dict(kind=Kind.STR, derive=Derive.FIELD, source="no_such_field"), "no Handshake field"),
        (dict(kind=Kind.STR, derive=Derive.CAPTURE, source="sni"), "source field"),
        (dict(kind=Kind.STR, derive=Derive.TEXT, source="alpn_selected_raw"), "wire_text"),
        (dict(kind=Kind.TIMESTAMP, derive=Derive.FIELD, source="ts_ns", nullable=True), "nullable"),
        (dict(kind=Kind.INT, derive=Derive.TEXT, source="alpn_selected_raw", bits=8), "cannot"),
    ],
)
def test_a_column_spec_that_cannot_hold_is_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Column(name="x", meaning="x", **spec)


# --- the sinks, on real captures ------------------------------------------------------------

CAPTURE_FILES = [
    "openssl_tls12_h2.pcap",  # visible
    "openssl_tls12_npn.pcap",  # NPN, its choice decrypted
    "openssl_tls13_hrr.pcap",  # retried, hello_retry
    "openssl_tls12_alert120.pcap",  # rejected, alert
    "aioquic_h3_v1.pcap",  # QUIC, decrypted
    "aioquic_retry.pcap",  # QUIC restarts
]

SYNTHETIC = Handshake(
    ts_ns=1_700_000_000_000_000_001,
    frame=7,
    transport="quic",
    ip_version=6,
    client_ip="2001:db8::1",
    client_port=50000,
    server_ip="2001:db8::2",
    server_port=443,
    sni="a\\x5cb",
    alpn_offered_raw=(b"h3", b"x y\\", b"\x00\xff", b""),
    alpn_selected_raw=b"=cmd",
    selection=Selection.DECRYPTED,
    tls_version="1.3",
    client_version="1.3",
    cipher_suite=0x1301,
    ech=True,
    ech_config_id=42,
    ech_payload_len=239,
    npn=True,
    npn_server=(b"spdy/3", b"\x7f"),
    npn_selected_raw=b"http/1.1",
    alps=(b"h2",),
    extensions=(0x0A0A, 0, 16, 65037),
    grease=True,
    sslv2=False,
    hello_retry=True,
    alert=120,
    violation="selected-not-offered",
    server_frame=9,
    quic_version="draft-29",
    quic_dcid="00ff",
    quic_scid="",
    quic_restarts=2,
    # a CONNECT whose header value holds a quote and a control octet (wire text, escaped)
    connect_target="proxy.test:443",
    connect_alpn_raw=(b"h3", b'"\n'),
    connect_alpn_header_raw=b'h3, %22%0A\t',
    connect_alpn_canonical=False,
    connect_status=200,
    connect_alpn_agrees=False,
    upgraded_from="http-connect",
    ja4="q13d0304h3_55b375c5d22e_06cda9e17597",
    ja4_r="q13d0304h3_1301,1302_000d,0033_0403",
    ja3="771,4865-4866,0-16-51-13,29,",
    ja3_hash="0123456789abcdef0123456789abcdef",
    notes=("empty-alpn-id",),
)


@pytest.fixture(scope="module")
def items() -> list[tuple[str, Handshake]]:
    paths = [CAPTURES / name for name in CAPTURE_FILES]
    keys = [p.with_suffix(".keys") for p in paths if p.with_suffix(".keys").exists()]
    results = alpnsniff.analyze(paths, keylog=keys)
    got = [(r.name, h) for r in results for h in r.handshakes]
    assert {h.selection for _, h in got} >= {
        Selection.VISIBLE,
        Selection.DECRYPTED,
        Selection.RETRIED,
        Selection.REJECTED,
    }
    assert any(h.npn_selected_raw is not None for _, h in got)
    assert any(h.quic_restarts for _, h in got)
    return [*got, ("synthetic.pcap", SYNTHETIC)]


def expected_value(c: Column, h: Handshake, capture: str) -> Any:
    """What the Derive documents, written out here independently of the sinks."""
    if c.derive is Derive.CAPTURE:
        return capture
    assert c.source is not None
    if c.derive is Derive.COMMUNITY_ID:  # the communityid package's value
        import communityid

        make = (
            communityid.FlowTuple.make_tcp
            if h.transport == "tcp"
            else communityid.FlowTuple.make_udp
        )
        flow = make(h.client_ip, h.server_ip, h.client_port, h.server_port)
        return communityid.CommunityID().calc(flow)
    assert isinstance(c.source, str)
    v = getattr(h, c.source)
    if c.derive is Derive.FIELD:
        return v
    if c.derive is Derive.ENUM:
        return v.value
    if c.derive is Derive.LIST:
        return list(v)
    if v is None:
        return None
    if c.derive is Derive.TEXT:
        return alpn_text(v)
    if c.derive is Derive.HEX:
        return v.hex()
    if c.derive is Derive.TEXT_LIST:
        return [alpn_text(p) for p in v]
    assert c.derive is Derive.HEX_LIST
    return [p.hex() for p in v]


JSON_TYPES: dict[Kind, type | tuple[type, ...]] = {
    Kind.INT: int,
    Kind.BOOL: bool,
    Kind.STR: str,
    Kind.CATEGORY: str,
    Kind.SELECTION: str,
    Kind.TIMESTAMP: str,
    Kind.LIST_STR: list,
    Kind.LIST_INT: list,
}


def test_row_keys_types_and_values_follow_the_table(items: list[tuple[str, Handshake]]) -> None:
    nulls: set[str] = set()
    for capture, h in items:
        r = row(h, capture)
        assert list(r) == list(COLUMNS)
        for c in COLUMN_TABLE:
            v = r[c.name]
            if v is None:
                assert c.nullable, c.name
                nulls.add(c.name)
                continue
            assert isinstance(v, JSON_TYPES[c.kind]), (c.name, v)
            assert c.kind is Kind.BOOL or not isinstance(v, bool), c.name
            if c.kind is Kind.LIST_STR:
                assert all(isinstance(x, str) for x in v), c.name
            if c.kind is Kind.LIST_INT:
                assert all(isinstance(x, int) and not isinstance(x, bool) for x in v), c.name
            if c.kind is Kind.TIMESTAMP:
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", v)
                assert v == iso_ts(h.ts_ns)
            else:
                assert v == expected_value(c, h, capture), c.name
    assert {"alpn_selected", "npn_selected", "alert"} <= nulls  # None really occurs


# Pinned bytes: ndjson is user-facing, and these lines are what the CLI wrote before the
# column table existed.
GOLDEN_TLS12 = (
    '{"ts":"2026-11-22T00:54:32.086361000Z","frame":4,"transport":"tcp","client_ip":"127.0.0.1",'
    '"client_port":45872,"server_ip":"127.0.0.1","server_port":4431,"sni":"www.example.test",'
    '"alpn_offered":["h2","http/1.1"],"alpn_selected":"h2","selection":"visible",'
    '"tls_version":"1.2","ech":false,"npn":false,"capture":"captures/openssl_tls12_h2.pcap",'
    # (the communityid package's value for TCP 127.0.0.1:45872 -> 127.0.0.1:4431)
    '"community_id":"1:X1beRxWF6R1qd0TGqODACOpZvKo=",'
    '"ip_version":4,"client_version":"1.3","cipher_suite":49196,'
    '"alpn_offered_hex":["6832","687474702f312e31"],"alpn_selected_hex":"6832","alps":[],'
    '"npn_server":[],"npn_selected":null,"ech_config_id":null,"ech_payload_len":null,'
    '"grease":false,"sslv2":false,"hello_retry":false,"alert":null,"violation":null,'
    '"server_frame":6,"quic_version":null,"quic_dcid":null,"quic_scid":null,'
    '"quic_restarts":null,"connect_target":null,"connect_alpn":null,"connect_alpn_header":null,'
    '"connect_alpn_canonical":null,"connect_status":null,"connect_alpn_agrees":null,'
    '"upgraded_from":null,"ja4":"t13d3111h2_e8f1e7e78f70_1f22a2ca17c4",'
    '"ja4_r":"t13d3111h2_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,'
    '1301,1302,1303,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9,'
    'ccaa_000a,000b,000d,0016,0017,0023,002b,002d,0033_0403,0503,0603,0807,0808,0809,080a,'
    '080b,0804,0805,0806,0401,0501,0601,0303,0301,0302,0402,0502,0602",'
    '"ja3":"771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-'
    '107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,'
    '0-11-10-35-16-22-23-13-43-45-51,29-23-30-25-24-256-257-258-259-260,0-1-2",'
    '"ja3_hash":"5a1edc7f170af1014fc65c994878e63c",'
    '"extensions":[0,11,10,35,16,22,23,13,43,45,51],"notes":[]}'
)
GOLDEN_SYNTHETIC = (
    '{"ts":"2023-11-14T22:13:20.000000001Z","frame":7,"transport":"quic",'
    '"client_ip":"2001:db8::1","client_port":50000,"server_ip":"2001:db8::2","server_port":443,'
    '"sni":"a\\\\x5cb","alpn_offered":["h3","x\\\\x20y\\\\x5c","\\\\x00\\\\xff",""],'
    '"alpn_selected":"=cmd","selection":"decrypted","tls_version":"1.3","ech":true,"npn":true,'
    # (the communityid package's value for UDP [2001:db8::1]:50000 -> [2001:db8::2]:443)
    '"capture":"x.pcap","community_id":"1:+H9GtorzFZqcuE+EOJYnypT9qSw=","ip_version":6,"client_version":"1.3","cipher_suite":4865,'
    '"alpn_offered_hex":["6833","7820795c","00ff",""],"alpn_selected_hex":"3d636d64",'
    '"alps":["h2"],"npn_server":["spdy/3","\\\\x7f"],"npn_selected":"http/1.1",'
    '"ech_config_id":42,"ech_payload_len":239,"grease":true,"sslv2":false,"hello_retry":true,'
    '"alert":120,"violation":"selected-not-offered","server_frame":9,"quic_version":"draft-29",'
    '"quic_dcid":"00ff","quic_scid":"","quic_restarts":2,"connect_target":"proxy.test:443",'
    '"connect_alpn":["h3","\\"\\\\x0a"],"connect_alpn_header":"h3,\\\\x20%22%0A\\\\x09",'
    '"connect_alpn_canonical":false,"connect_status":200,"connect_alpn_agrees":false,'
    '"upgraded_from":"http-connect","ja4":"q13d0304h3_55b375c5d22e_06cda9e17597",'
    '"ja4_r":"q13d0304h3_1301,1302_000d,0033_0403","ja3":"771,4865-4866,0-16-51-13,29,",'
    '"ja3_hash":"0123456789abcdef0123456789abcdef",'
    '"extensions":[2570,0,16,65037],'
    '"notes":["empty-alpn-id"]}'
)


def _ndjson(r: dict[str, Any]) -> str:  # as sinks.text.NdjsonWriter writes a line
    return json.dumps(r, ensure_ascii=True, separators=(",", ":"))


def test_ndjson_lines_stay_byte_for_byte() -> None:
    (result,) = alpnsniff.analyze("captures/openssl_tls12_h2.pcap")
    assert [_ndjson(row(h, result.name)) for h in result.handshakes] == [GOLDEN_TLS12]
    assert _ndjson(row(SYNTHETIC, "x.pcap")) == GOLDEN_SYNTHETIC


def test_column_lists_agree_with_rows(items: list[tuple[str, Handshake]]) -> None:
    data = columns(items)
    assert list(data) == list(COLUMNS)
    for i, (capture, h) in enumerate(items):
        r = row(h, capture)
        assert iso_ts(data["ts"][i]) == r["ts"]
        assert {k: v[i] for k, v in data.items() if k != "ts"} == {
            k: v for k, v in r.items() if k != "ts"
        }


def _check_pandas_dtype(c: Column, s: pd.Series) -> None:
    dtype = s.dtype
    if c.kind is Kind.TIMESTAMP:
        assert str(dtype) == "datetime64[ns, UTC]"
    elif c.kind is Kind.INT:
        assert str(dtype) == ("Int64" if c.nullable else "int64")
    elif c.kind is Kind.BOOL:  # nullable: a ClientHello column (None when it was not seen)
        assert str(dtype) == ("boolean" if c.nullable else "bool")
    elif c.kind is Kind.SELECTION:
        assert dtype == pd.CategoricalDtype([v.value for v in Selection])
    elif c.kind is Kind.CATEGORY:  # a closed set: the table's categories, whatever the data
        assert dtype == pd.CategoricalDtype(list(c.categories)) and c.categories
    elif c.kind is Kind.STR:  # pandas' string dtype, fixed (it was inferred: object if all null)
        assert dtype == pd.StringDtype(), (c.name, dtype)
        assert all(isinstance(v, str) for v in s.dropna())
    else:
        assert str(dtype) == "object"
        assert all(isinstance(v, list) or (c.nullable and v is None) for v in s)


def test_dataframe_columns_and_dtypes_follow_the_table(
    items: list[tuple[str, Handshake]],
) -> None:
    df = to_dataframe(items)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == len(items)
    for c in COLUMN_TABLE:
        _check_pandas_dtype(c, df[c.name])
        if not c.nullable:
            assert not df[c.name].isna().any(), c.name
    # today's dtypes, pinned. Changed: text columns are pandas' `string` (they were as pandas
    # inferred them: `str` or object, object when all null, so pd.concat gave object), and
    # tls_version, client_version, quic_version are `string`, not categories taken from the
    # data (open-ended values; differing categories made pd.concat give object)
    assert {k: str(v) for k, v in df.dtypes.items()} == {
        "ts": "datetime64[ns, UTC]",
        "frame": "int64",
        "transport": "category",
        "client_ip": "string",
        "client_port": "int64",
        "server_ip": "string",
        "server_port": "int64",
        "sni": "string",
        "alpn_offered": "object",
        "alpn_selected": "string",
        "selection": "category",
        "tls_version": "string",
        "ech": "boolean",  # (bool until the ClientHello columns became nullable: one-sided)
        "npn": "boolean",
        "capture": "string",
        "community_id": "string",
        "ip_version": "int64",
        "client_version": "string",
        "cipher_suite": "Int64",
        "alpn_offered_hex": "object",
        "alpn_selected_hex": "string",
        "alps": "object",
        "npn_server": "object",
        "npn_selected": "string",
        "ech_config_id": "Int64",
        "ech_payload_len": "Int64",
        "grease": "boolean",
        "sslv2": "boolean",
        "hello_retry": "bool",
        "alert": "Int64",
        "violation": "string",
        "server_frame": "Int64",
        "quic_version": "string",
        "quic_dcid": "string",
        "quic_scid": "string",
        "quic_restarts": "Int64",
        "connect_target": "string",
        "connect_alpn": "object",
        "connect_alpn_header": "string",
        "connect_alpn_canonical": "boolean",
        "connect_status": "Int64",
        "connect_alpn_agrees": "boolean",
        "upgraded_from": "string",
        "ja4": "string",
        "ja4_r": "string",
        "ja3": "string",
        "ja3_hash": "string",
        "extensions": "object",
        "notes": "object",
    }
    assert list(df["transport"].cat.categories) == ["tcp", "quic", "dtls"]
    assert df["ts"].iloc[-1] == pd.Timestamp(SYNTHETIC.ts_ns, unit="ns", tz="UTC")
    assert df["alpn_offered"].iloc[-1] == ["h3", "x\\x20y\\x5c", "\\x00\\xff", ""]


def test_public_read_gives_the_table_dtypes() -> None:
    df = alpnsniff.read([CAPTURES / "openssl_tls12_h2.pcap", CAPTURES / "aioquic_h3_v1.pcap"])
    assert list(df.columns) == list(COLUMNS) and len(df) == 2
    for c in COLUMN_TABLE:
        _check_pandas_dtype(c, df[c.name])


def _arrow_int(bits: int | None) -> pa.DataType:
    return {8: pa.int8(), 16: pa.int16(), 32: pa.int32(), 64: pa.int64()}[bits or 0]


def expected_arrow_type(c: Column) -> pa.DataType:
    return {
        Kind.TIMESTAMP: lambda: pa.timestamp("ns", tz="UTC"),
        Kind.INT: lambda: _arrow_int(c.bits),
        Kind.BOOL: pa.bool_,
        Kind.STR: pa.string,
        Kind.CATEGORY: lambda: pa.dictionary(_arrow_int(c.bits), pa.string()),
        Kind.SELECTION: lambda: pa.dictionary(_arrow_int(c.bits), pa.string()),
        Kind.LIST_STR: lambda: pa.list_(pa.string()),
        Kind.LIST_INT: lambda: pa.list_(_arrow_int(c.bits)),
    }[c.kind]()


def test_parquet_schema_and_values_follow_the_table(
    items: list[tuple[str, Handshake]], tmp_path: Path
) -> None:
    path = tmp_path / "out.parquet"
    assert write_parquet(items, str(path)) == len(items)
    table = pq.read_table(path)
    assert table.schema.names == list(COLUMNS)
    for c, f in zip(COLUMN_TABLE, table.schema, strict=True):
        assert f.type == expected_arrow_type(c), c.name
    # the exact widths of today's schema, for the columns where a width matters. Changed:
    # client_port, server_port and ip_version were int32, int32, int8: pd.read_parquet gives
    # a non-nullable int back at its Parquet width, and alpnsniff.read gives int64; transport
    # was a string, now a dictionary of its fixed categories (pd.read_parquet: a category)
    assert {f.name: str(f.type) for f in table.schema if "int" in str(f.type)} == {
        "frame": "int64",
        "transport": "dictionary<values=string, indices=int8, ordered=0>",
        "client_port": "int64",
        "server_port": "int64",
        "selection": "dictionary<values=string, indices=int8, ordered=0>",
        "ip_version": "int64",
        "cipher_suite": "int32",
        "ech_config_id": "int16",
        "ech_payload_len": "int32",
        "alert": "int16",
        "server_frame": "int64",
        "quic_restarts": "int32",
        "connect_status": "int16",
        "extensions": "list<element: int32>",
    }
    data = columns(items)
    assert table.column("ts").cast(pa.int64()).to_pylist() == data["ts"]
    for name in COLUMNS[1:]:
        assert table.column(name).to_pylist() == data[name], name


# --- iso_ts and imports ---------------------------------------------------------------------


def test_iso_ts_is_datetime_formatting_over_its_whole_range() -> None:
    lo, hi = -62_135_596_800, 253_402_300_800  # 0001-01-01 .. 10000-01-01
    rng = random.Random(8)
    seconds = [lo, hi - 1, 0, -1, 951_782_400, 2**31, 2**32 - 1]
    seconds += [rng.randrange(lo, hi) for _ in range(2000)]
    for s in seconds:
        nanos = rng.randrange(10**9)
        base = datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert iso_ts(s * 10**9 + nanos) == f"{base}.{nanos:09d}Z"
    for s in (lo - 1, hi):
        with pytest.raises(ValueError):
            iso_ts(s * 10**9)


def test_the_table_and_rows_import_neither_pandas_nor_pyarrow() -> None:
    code = (
        "import sys, alpnsniff.records, alpnsniff.sinks.rows, alpnsniff.sinks.text; "
        "assert not {'pandas', 'pyarrow'} & set(sys.modules), sys.modules.keys()"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
