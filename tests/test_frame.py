"""The DataFrame's fixed dtypes (pd.concat keeps them) and the Parquet round trips
(pd.read_parquet, alpnsniff.load), on the real captures."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import alpnsniff
from alpnsniff.records import COLUMN_TABLE, Kind, Selection
from alpnsniff.sinks.frame import to_dataframe, write_parquet
from alpnsniff.sinks.rows import COLUMNS
from tests.conftest import CAPTURES

TLS12 = CAPTURES / "openssl_tls12_h2.pcap"
QUIC = CAPTURES / "aioquic_h3_v1.pcap"
# visible, decrypted, retried, rejected, QUIC (decrypted, restarts), NPN
KEYED = [
    "openssl_tls12_h2.pcap",
    "openssl_tls12_npn.pcap",
    "openssl_tls13_hrr.pcap",
    "openssl_tls12_alert120.pcap",
    "aioquic_h3_v1.pcap",
    "aioquic_retry.pcap",
]
LISTS = [c.name for c in COLUMN_TABLE if c.kind in (Kind.LIST_STR, Kind.LIST_INT)]


def _keyed_read() -> pd.DataFrame:
    paths = [CAPTURES / n for n in KEYED]
    keys = [p.with_suffix(".keys") for p in paths if p.with_suffix(".keys").exists()]
    return alpnsniff.read(paths, keylog=keys)


def _header_only(tmp_path: Path) -> Path:
    """A real capture cut to its file header: a read with no rows."""
    path = tmp_path / "empty.pcap"
    path.write_bytes(TLS12.read_bytes()[:24])
    return path


def _dtypes(df: pd.DataFrame) -> dict[str, Any]:
    return dict(df.dtypes.items())


# --- 11a: fixed dtypes ----------------------------------------------------------------------


def test_concat_of_reads_keeps_every_dtype(tmp_path: Path) -> None:
    tls = alpnsniff.read(TLS12)
    quic = alpnsniff.read(QUIC, keylog=QUIC.with_suffix(".keys"))
    empty = alpnsniff.read(_header_only(tmp_path))
    assert list(tls["transport"]) == ["tcp"] and list(quic["transport"]) == ["quic"]
    assert len(empty) == 0
    # every read has the same dtypes, an empty one too: the table's, not the data's
    assert _dtypes(tls) == _dtypes(quic) == _dtypes(empty) == _dtypes(to_dataframe([]))
    both = pd.concat([tls, quic, empty], ignore_index=True)
    assert _dtypes(both) == _dtypes(tls)
    assert list(both["transport"]) == ["tcp", "quic"]
    assert list(both["transport"].cat.categories) == ["tcp", "quic", "dtls"]
    assert list(both["selection"].cat.categories) == [s.value for s in Selection]
    assert list(both["tls_version"]) == ["1.2", "1.3"] and list(both["quic_version"].isna()) == [
        True,
        False,
    ]
    assert both["cipher_suite"].dtype == "Int64" and both["sni"].dtype == "string"


def test_open_ended_versions_keep_every_value() -> None:
    """A version no list knows (GREASE, a draft, a code) stays itself, through pd.concat."""
    (result,) = alpnsniff.analyze(TLS12)
    h = result.handshakes[0]
    odd = dataclasses.replace(
        h, tls_version="0x7f1c", client_version="0x0a0a", quic_version="draft-29"
    )
    df = pd.concat([alpnsniff.read(TLS12), to_dataframe([("odd.pcap", odd)])], ignore_index=True)
    assert list(df["tls_version"]) == ["1.2", "0x7f1c"]
    assert list(df["client_version"]) == ["1.3", "0x0a0a"]
    assert df["quic_version"].iloc[1] == "draft-29" and pd.isna(df["quic_version"].iloc[0])
    assert {df[c].dtype for c in ("tls_version", "client_version", "quic_version")} == {
        pd.StringDtype()
    }


def test_a_value_outside_a_closed_set_is_refused_not_made_nan(tmp_path: Path) -> None:
    (result,) = alpnsniff.analyze(TLS12)
    sctp = dataclasses.replace(result.handshakes[0], transport="sctp")
    with pytest.raises(ValueError, match="sctp"):
        to_dataframe([("x.pcap", sctp)])
    with pytest.raises(ValueError, match="sctp"):
        write_parquet([("x.pcap", sctp)], str(tmp_path / "x.parquet"))


# --- 11b: Parquet ---------------------------------------------------------------------------


def _same_values(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal frames once list cells (numpy arrays from pd.read_parquet) are lists."""
    got = got.copy()
    for name in LISTS:
        got[name] = pd.Series(
            [None if v is None else list(v) for v in got[name]], dtype=object, index=got.index
        )
    pd.testing.assert_frame_equal(got, want)


def _write(df_source: list[Path], path: Path, **kw: Any) -> pd.DataFrame:
    results = alpnsniff.analyze(df_source, **kw)
    attrs = alpnsniff.run_attrs(results, shared_keylog=kw.get("keylog") is not None)
    df = alpnsniff.read(df_source, **kw)
    n = write_parquet(
        [(r.name, h) for r in results for h in r.handshakes],
        str(path),
        stats=attrs["stats"],
        errors=attrs["errors"],
        stats_by_capture=attrs["stats_by_capture"],
        provenance=df.attrs["provenance"],
    )
    assert n == len(df)
    return df


def test_pd_read_parquet_gives_back_read_dtypes_and_attrs(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    paths = [CAPTURES / n for n in KEYED]
    keys = [p.with_suffix(".keys") for p in paths if p.with_suffix(".keys").exists()]
    want = _write(paths, path, keylog=keys)
    got = pd.read_parquet(path)
    assert _dtypes(got) == _dtypes(want)
    assert got["cipher_suite"].dtype == "Int64"  # not float64 (4866.0), its nulls <NA>
    assert 4866 in set(got["cipher_suite"].dropna()) and got["cipher_suite"].isna().any()
    assert list(got["selection"].cat.categories) == [s.value for s in Selection]
    assert list(got["transport"].cat.categories) == ["tcp", "quic", "dtls"]
    _same_values(got, want)
    assert got.attrs == want.attrs and want.attrs["stats"]["packets"] > 0


def test_load_gives_back_read_with_its_attrs(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(TLS12.read_bytes()[:-30])
    path = tmp_path / "out.parquet"
    want = _write([TLS12, cut, CAPTURES / "aioquic_h3_v1.pcap"], path)
    got = alpnsniff.load(path)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs == want.attrs
    assert got.attrs["stats"]["truncated_records"] == 1
    assert "cut short" in got.attrs["errors"][str(cut)][0]
    assert set(got.attrs["stats_by_capture"]) == {str(TLS12), str(cut), str(QUIC)}
    # a file object too
    with open(path, "rb") as f:
        pd.testing.assert_frame_equal(alpnsniff.load(f), want)


def test_parquet_stays_plain_for_pyarrow(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    df = _write([TLS12], path)
    table = pq.read_table(path)
    assert table.schema.names == list(COLUMNS)
    assert table.column("transport").to_pylist() == ["tcp"]
    assert table.column("cipher_suite").to_pylist() == [49196]
    # every category is in the dictionary, in order (pd.read_parquet's categories)
    assert table.column("selection").chunk(0).dictionary.to_pylist() == [s.value for s in Selection]
    meta = table.schema.metadata
    assert json.loads(meta[b"alpnsniff"]) == df.attrs
    assert set(json.loads(meta[b"alpnsniff"])) == {
        "stats",
        "stats_by_capture",
        "errors",
        "provenance",
    }


def test_write_parquet_as_the_cli_calls_it(tmp_path: Path) -> None:
    """write_parquet(items, path: str, *, stats=...): the counts reach df.attrs."""
    (result,) = alpnsniff.analyze(TLS12)
    path = tmp_path / "cli.parquet"
    stats: Counter[str] = Counter(result.stats)
    assert write_parquet([(result.name, h) for h in result.handshakes], str(path), stats=stats) == 1
    got = alpnsniff.load(path)
    assert got.attrs == {"stats": dict(result.stats)}
    assert pd.read_parquet(path).attrs == {"stats": dict(result.stats)}
    pd.testing.assert_frame_equal(got, alpnsniff.read(TLS12))


def test_an_empty_read_round_trips(tmp_path: Path) -> None:
    empty = _header_only(tmp_path)
    path = tmp_path / "empty.parquet"
    want = _write([empty], path)
    assert len(want) == 0
    got = alpnsniff.load(path)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs == want.attrs
    # pd.read_parquet: the same dtypes but the categories (an empty Parquet column keeps no
    # dictionary); alpnsniff.load puts them back
    plain = pd.read_parquet(path)
    closed = {c.name for c in COLUMN_TABLE if c.categories}
    assert {k: v for k, v in _dtypes(plain).items() if k not in closed} == {
        k: v for k, v in _dtypes(want).items() if k not in closed
    }


def test_a_frame_pandas_wrote_loads_too(tmp_path: Path) -> None:
    """df.to_parquet of a read: pd.read_parquet and alpnsniff.load give it back."""
    want = _keyed_read()
    path = tmp_path / "pandas.parquet"
    want.to_parquet(path)
    got = alpnsniff.load(path)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs == want.attrs
    assert _dtypes(pd.read_parquet(path)) == _dtypes(want)


def test_load_refuses_a_table_that_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(path)
    with pytest.raises(ValueError, match="not an alpnsniff table"):
        alpnsniff.load(path)


def test_a_file_of_the_previous_format_loads(tmp_path: Path) -> None:
    """Parquet as alpnsniff wrote it before: no metadata, transport and the versions as
    strings, ports int32, ip_version int8. alpnsniff.load gives today's DataFrame."""
    path = tmp_path / "new.parquet"
    want = _write([TLS12, QUIC], path)
    table = pq.read_table(path)
    old = {"client_port": pa.int32(), "server_port": pa.int32(), "ip_version": pa.int8()}
    fields = [
        pa.field(f.name, pa.string() if f.name == "transport" else old.get(f.name, f.type))
        for f in table.schema
    ]
    pq.write_table(table.cast(pa.schema(fields)).replace_schema_metadata(None), tmp_path / "o.pq")
    got = alpnsniff.load(tmp_path / "o.pq")
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs == {}
