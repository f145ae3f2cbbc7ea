"""alpnsniff.read: the DataFrame's fixed columns, their types, and the run's counts."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

import alpnsniff
from alpnsniff import analytics
from alpnsniff.sinks.rows import COLUMNS
from tests.conftest import shared_file

FIXED = [
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
]


def test_read_several_captures_gives_typed_columns() -> None:
    paths = [
        shared_file("realcap", "openssl_tls12_alpn_h2.pcap"),
        shared_file("realcap", "chromium_nginx_h2_veth1500.pcap"),
        shared_file("realcap", "aioquic_alpn_mismatch.pcap"),
    ]
    df = alpnsniff.read(paths)
    assert list(df.columns) == list(COLUMNS)
    assert list(df.columns[: len(FIXED)]) == FIXED
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    assert df["frame"].dtype == "int64" and df["ech"].dtype == bool
    assert len(df) == 4
    first = df.iloc[0]
    assert first["ts"] == pd.Timestamp(1795302742069708000, unit="ns", tz="UTC")
    assert first["alpn_offered"] == ["h2", "http/1.1"] and first["alpn_selected"] == "h2"
    assert list(df["selection"]) == ["visible", "encrypted", "encrypted", "rejected"]
    assert list(df["transport"]) == ["tcp", "tcp", "tcp", "quic"]
    assert df.attrs["stats"]["packets"] == 16 + 37 + 2
    assert df.attrs["stats"]["quic_client_hellos"] == 1


def test_offer_shares_leave_ech_out_unless_asked() -> None:
    df = alpnsniff.read(
        [
            shared_file("realcap", "openssl_tls12_alpn_h2.pcap"),
            shared_file("realcap", "chromium_nginx_h2_veth1500.pcap"),
        ]
    )
    shares = analytics.offer_shares(df)
    assert shares.set_index("protocol")["client_hellos"].to_dict() == {"h2": 1, "http/1.1": 1}
    with_ech = analytics.offer_shares(df, include_ech=True).set_index("protocol")
    assert with_ech.loc["h2", "client_hellos"] == 3 and with_ech.loc["h2", "share"] == 1.0
    assert analytics.selected_shares(df).set_index("protocol")["handshakes"].to_dict() == {"h2": 1}
    assert analytics.outcomes(df)["encrypted"] == 2


def test_importing_alpnsniff_does_not_import_pandas() -> None:
    code = "import sys, alpnsniff, alpnsniff.cli; assert 'pandas' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
