r"""alpnsniff.analytics.shares: every function on real captures, its numbers counted by hand
from tshark's view of them, and the edge cases (GREASE, duplicates, one-sided rows, ECH,
empty frames) on records made from a real one.

The ten captures of ``TEN`` (11 handshakes), as tshark shows them::

    tshark -r F -Y 'tls.handshake.type==1 || tls.handshake.type==2 || tls.handshake.type==8' \
        -T fields -e frame.time_epoch -e tcp.dstport -e udp.dstport -e tls.handshake.type \
        -e tls.handshake.extensions_server_name -e tls.handshake.extensions_alpn_str \
        -e tls.handshake.extension.type

    #  capture                            ClientHello: ts 1795308…, SNI, ALPN       answer
    1  chromium_nginx_h2_veth1500  (×2)   920.0 / 920.0 www  h2,http/1.1  ECH    TLS 1.3: encrypted
    3  chromium_aioquic_h3_veth1500       925.9 quic  h3                   ECH    QUIC: encrypted
    4  nghttp_h2_tls12                    896.2 (no SNI) h2,h2-16,h2-14          ServerHello h2
    5  gnutls_tls12_alpn                  897.4 www  spdy/3,http/1.1             ServerHello http/1.1
    6  pyssl_tls12_http11                 889.9 localhost h2,http/1.1            ServerHello http/1.1
    7  nginx_curl_noalpn                  895.0 www  (no ALPN extension)         TLS 1.3 (not-offered)
    8  nginx_curl_h2_tls12                892.8 www  h2,http/1.1                 ServerHello h2
    9  aioquic_h3_v1                      902.2 quic h3                          QUIC: encrypted
    10 aioquic_alpn_mismatch              915.5 quic h3,h3-29                    CONNECTION_CLOSE 0x178
    11 openssl_tls13_h2_dsb (pcapng+DSB)  873.4 www  h2,http/1.1                 EE (decrypted) h2

"ECH" is extension 65037 (0xfe0d) in the ClientHello's extension types (GREASE ECH: Chromium).
Ports: 1-2 tcp 8443, 3 quic 4433, 4 tcp 8445, 5-6 tcp 4431, 7 tcp 8443, 8 tcp 8445, 9-10
quic 4433, 11 tcp 4431. With ECH left out, 8 ClientHellos count (4-11) and 3 rows are left out.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import alpnsniff
from alpnsniff import analytics
from alpnsniff.pipeline import analyze_file
from alpnsniff.records import Handshake, Selection
from alpnsniff.sinks.frame import to_dataframe
from tests.conftest import CAPTURES
from tests.flows.one_sided import write_one_side
from tests.test_cli_outputs import TLS12, cli

TEN = [
    "chromium_nginx_h2_veth1500.pcap",
    "chromium_aioquic_h3_veth1500.pcap",
    "nghttp_h2_tls12.pcap",
    "gnutls_tls12_alpn.pcap",
    "pyssl_tls12_http11.pcap",
    "nginx_curl_noalpn.pcap",
    "nginx_curl_h2_tls12.pcap",
    "aioquic_h3_v1.pcap",
    "aioquic_alpn_mismatch.pcap",
    "openssl_tls13_h2_dsb.pcapng",
]
# Made with openssl s_server -alpn h2,http/1.1 -tls1_2 and three s_client -tls1_2 -alpn runs
# on lo (see the report of issue 11): 0x0A0A,h2,ZZ,http/1.1,h2 · 0x1A1A alone · JJ,http/1.1.
GREASE_CAPTURE = CAPTURES / "openssl_tls12_alpn_grease.pcap"


@pytest.fixture(scope="module")
def ten() -> pd.DataFrame:
    return alpnsniff.read([CAPTURES / name for name in TEN])


def rows(df: pd.DataFrame) -> list[tuple[object, ...]]:
    """A result's rows as plain tuples (shares rounded to 4 places)."""
    out = []
    for rec in df.itertuples(index=False):
        out.append(tuple(round(v, 4) if isinstance(v, float) else v for v in rec))
    return out


def test_offer_share_counts_the_clienthellos_offering_each_protocol(ten: pd.DataFrame) -> None:
    # ECH left out: 8 ClientHellos (4-11). h2: 4, 6, 8, 11; http/1.1: 5, 6, 8, 11; h3: 9, 10;
    # (no ALPN): 7; h2-14, h2-16: 4; h3-29: 10; spdy/3: 5.
    shares = analytics.offer_share(ten)
    assert list(shares.columns) == ["protocol", "client_hellos", "share"]
    assert rows(shares) == [
        ("h2", 4, 0.5),
        ("http/1.1", 4, 0.5),
        ("h3", 2, 0.25),
        ("(no ALPN)", 1, 0.125),
        ("h2-14", 1, 0.125),
        ("h2-16", 1, 0.125),
        ("h3-29", 1, 0.125),
        ("spdy/3", 1, 0.125),
    ]
    assert shares.attrs == {"left_out_ech": 3}
    assert str(shares["protocol"].dtype) == "string"


def test_include_ech_counts_the_outer_offers(ten: pd.DataFrame) -> None:
    # All 11: rows 1-2 add h2 and http/1.1 twice, row 3 adds h3.
    shares = analytics.offer_share(ten, include_ech=True)
    assert rows(shares) == [
        ("h2", 6, round(6 / 11, 4)),
        ("http/1.1", 6, round(6 / 11, 4)),
        ("h3", 3, round(3 / 11, 4)),
        ("(no ALPN)", 1, round(1 / 11, 4)),
        ("h2-14", 1, round(1 / 11, 4)),
        ("h2-16", 1, round(1 / 11, 4)),
        ("h3-29", 1, round(1 / 11, 4)),
        ("spdy/3", 1, round(1 / 11, 4)),
    ]
    assert shares.attrs == {"left_out_ech": 0}


def test_first_counts_each_clienthello_once_by_its_first_choice(ten: pd.DataFrame) -> None:
    # First IDs of 4-11: h2, spdy/3, h2, (none), h2, h3, h3, h2.
    shares = analytics.offer_share(ten, first=True)
    assert rows(shares) == [
        ("h2", 4, 0.5),
        ("h3", 2, 0.25),
        ("(no ALPN)", 1, 0.125),
        ("spdy/3", 1, 0.125),
    ]
    assert shares["share"].sum() == pytest.approx(1.0)


def test_by_one_column_gives_each_group_its_own_base(ten: pd.DataFrame) -> None:
    # tcp: 4-8 and 11 (6 ClientHellos); quic: 9, 10 (the ECH ones left out). No dtls row:
    # the unobserved category gives none.
    shares = analytics.offer_share(ten, by="transport")
    assert list(shares.columns) == ["transport", "protocol", "client_hellos", "share"]
    assert rows(shares) == [
        ("tcp", "h2", 4, round(4 / 6, 4)),
        ("tcp", "http/1.1", 4, round(4 / 6, 4)),
        ("tcp", "(no ALPN)", 1, round(1 / 6, 4)),
        ("tcp", "h2-14", 1, round(1 / 6, 4)),
        ("tcp", "h2-16", 1, round(1 / 6, 4)),
        ("tcp", "spdy/3", 1, round(1 / 6, 4)),
        ("quic", "h3", 2, 1.0),
        ("quic", "h3-29", 1, 0.5),
    ]
    assert shares["transport"].dtype == ten["transport"].dtype


def test_by_a_list_of_columns(ten: pd.DataFrame) -> None:
    # tcp 4431: 5, 6, 11; tcp 8443: 7 (1-2 are ECH); tcp 8445: 4, 8; quic 4433: 9, 10.
    shares = analytics.offer_share(ten, by=["transport", "server_port"])
    assert rows(shares) == [
        ("tcp", 4431, "http/1.1", 3, 1.0),
        ("tcp", 4431, "h2", 2, round(2 / 3, 4)),
        ("tcp", 4431, "spdy/3", 1, round(1 / 3, 4)),
        ("tcp", 8443, "(no ALPN)", 1, 1.0),
        ("tcp", 8445, "h2", 2, 1.0),
        ("tcp", 8445, "h2-14", 1, 0.5),
        ("tcp", 8445, "h2-16", 1, 0.5),
        ("tcp", 8445, "http/1.1", 1, 0.5),
        ("quic", 4433, "h3", 2, 1.0),
        ("quic", 4433, "h3-29", 1, 0.5),
    ]


def test_a_clienthello_without_sni_is_a_group_sorted_last(ten: pd.DataFrame) -> None:
    # localhost: 6; quic.example.test: 9, 10; www.example.test: 5, 7, 8, 11; no SNI: 4.
    shares = analytics.offer_share(ten, by="sni")
    got = [(None if pd.isna(r[0]) else r[0], *r[1:]) for r in rows(shares)]
    assert got == [
        ("localhost", "h2", 1, 1.0),
        ("localhost", "http/1.1", 1, 1.0),
        ("quic.example.test", "h3", 2, 1.0),
        ("quic.example.test", "h3-29", 1, 0.5),
        ("www.example.test", "http/1.1", 3, 0.75),
        ("www.example.test", "h2", 2, 0.5),
        ("www.example.test", "(no ALPN)", 1, 0.25),
        ("www.example.test", "spdy/3", 1, 0.25),
        (None, "h2", 1, 1.0),
        (None, "h2-14", 1, 1.0),
        (None, "h2-16", 1, 1.0),
    ]


def test_offers_long_form_ranks_in_client_order(ten: pd.DataFrame) -> None:
    # nghttp (row 4 above): h2, h2-16, h2-14 as ranks 1, 2, 3; nginx_curl_noalpn: no row.
    long = analytics.offers(ten)
    assert list(long.columns) == ["row", "rank", "protocol"]
    assert isinstance(long["protocol"].dtype, pd.CategoricalDtype)
    capture = ten["capture"].str.rsplit("/", n=1).str[-1]
    by_capture = {
        name: [(r, str(p)) for r, p in zip(part["rank"], part["protocol"], strict=True)]
        for name, part in long.groupby(capture.loc[long["row"]].to_numpy())
    }
    assert by_capture["nghttp_h2_tls12.pcap"] == [(1, "h2"), (2, "h2-16"), (3, "h2-14")]
    assert by_capture["gnutls_tls12_alpn.pcap"] == [(1, "spdy/3"), (2, "http/1.1")]
    assert by_capture["aioquic_alpn_mismatch.pcap"] == [(1, "h3"), (2, "h3-29")]
    assert "nginx_curl_noalpn.pcap" not in by_capture
    assert "chromium_nginx_h2_veth1500.pcap" not in by_capture  # ECH
    # 2+3+2+2+2+1+2+2 IDs over the 7 offering ClientHellos (4-6, 8-11)
    assert len(long) == 3 + 2 + 2 + 2 + 1 + 2 + 2
    assert long.attrs == {"left_out_ech": 3}
    assert len(analytics.offers(ten, include_ech=True)) == len(long) + 2 + 2 + 1


def test_selection_share_over_the_known_choices(ten: pd.DataFrame) -> None:
    # Known: 4 h2, 5 http/1.1, 6 http/1.1, 8 h2 (visible), 11 h2 (decrypted).
    shares = analytics.selection_share(ten)
    assert list(shares.columns) == ["protocol", "handshakes", "share"]
    assert rows(shares) == [("h2", 3, 0.6), ("http/1.1", 2, 0.4)]
    assert shares.attrs == {"left_out_ech": 0}
    # no quic row has a known choice: no quic group
    by = analytics.selection_share(ten, by="transport")
    assert rows(by) == [("tcp", "h2", 3, 0.6), ("tcp", "http/1.1", 2, 0.4)]


def test_outcomes_count_every_row(ten: pd.DataFrame) -> None:
    # encrypted 1, 2, 3, 9; visible 4, 5, 6, 8; not-offered 7; rejected 10; decrypted 11.
    out = analytics.outcomes(ten)
    assert list(out.columns) == ["selection", "handshakes", "share"]
    assert rows(out) == [
        ("visible", 4, round(4 / 11, 4)),
        ("encrypted", 4, round(4 / 11, 4)),
        ("decrypted", 1, round(1 / 11, 4)),
        ("not-offered", 1, round(1 / 11, 4)),
        ("rejected", 1, round(1 / 11, 4)),
    ]
    assert list(out["selection"].dtype.categories) == [s.value for s in Selection]
    assert out.attrs == {"left_out_ech": 0}
    by = analytics.outcomes(ten, by=["transport"])
    assert rows(by) == [
        ("tcp", "visible", 4, 0.5),
        ("tcp", "encrypted", 2, 0.25),
        ("tcp", "decrypted", 1, 0.125),
        ("tcp", "not-offered", 1, 0.125),
        ("quic", "encrypted", 2, round(2 / 3, 4)),
        ("quic", "rejected", 1, round(1 / 3, 4)),
    ]


def test_honoured_and_preference(ten: pd.DataFrame) -> None:
    # Known choice and an offer (ECH left out): 4 h2→h2, 5 spdy/3→http/1.1, 6 h2→http/1.1,
    # 8 h2→h2, 11 h2→h2: 3 of 5 got the first choice.
    out = analytics.honoured(ten)
    assert list(out.columns) == ["handshakes", "honoured", "rate"]
    assert rows(out) == [(5, 3, 0.6)]
    assert out.attrs == {"left_out_ech": 3}
    by = analytics.honoured(ten, by="sni")
    got = [(None if pd.isna(r[0]) else r[0], *r[1:]) for r in rows(by)]
    assert got == [
        ("localhost", 1, 0, 0.0),
        ("www.example.test", 3, 2, round(2 / 3, 4)),
        (None, 1, 1, 1.0),
    ]
    cross = analytics.preference(ten)
    assert cross.index.name == "first_choice" and cross.columns.name == "selected"
    assert list(cross.index) == ["h2", "spdy/3"]
    assert list(cross.columns) == ["h2", "http/1.1"]
    assert cross.to_numpy().tolist() == [[3, 1], [0, 1]]
    assert cross.attrs == {"left_out_ech": 3}


def test_timeline_counts_per_minute(ten: pd.DataFrame) -> None:
    # Minute 1795308840 (00:54 UTC): 4-8, 11; minute 1795308900 (00:55): 9, 10 (ECH out).
    t = analytics.timeline(ten)
    assert list(t.columns) == ["period", "protocol", "count"]
    assert str(t["period"].dtype) == "datetime64[ns, UTC]"
    first, second = (
        pd.Timestamp(1795308840, unit="s", tz="UTC"),
        pd.Timestamp(1795308900, unit="s", tz="UTC"),
    )
    # protocols by their total (h2 4, http/1.1 4, h3 2, then 1 each, by text), every one in
    # every minute
    order = ["h2", "http/1.1", "h3", "(no ALPN)", "h2-14", "h2-16", "h3-29", "spdy/3"]
    assert list(t["period"]) == [first] * 8 + [second] * 8
    assert list(t["protocol"]) == order * 2
    assert list(t["count"][:8]) == [4, 4, 0, 1, 1, 1, 0, 1]
    assert list(t["count"][8:]) == [0, 0, 2, 0, 0, 0, 1, 0]
    assert t.attrs == {"left_out_ech": 3}
    sel = analytics.timeline(ten, freq="1min", of="selected")
    # the five known choices are all in the first minute: h2 3, http/1.1 2
    assert rows(sel) == [
        (first, "h2", 3),
        (first, "http/1.1", 2),
        (second, "h2", 0),
        (second, "http/1.1", 0),
    ]
    assert sel.attrs == {"left_out_ech": 0}
    with pytest.raises(ValueError, match="coarser freq"):
        analytics.timeline(ten, freq="1us")  # 52 s at 1 µs: 52M periods
    with pytest.raises(ValueError, match="'offered' or 'selected'"):
        analytics.timeline(ten, of="chosen")  # type: ignore[arg-type]


def test_compare_joins_two_frames_missing_at_zero() -> None:
    # a: 4-8 (5 ClientHellos): h2 3, http/1.1 3, (no ALPN) 1, h2-14 1, h2-16 1, spdy/3 1.
    # b: 9, 10, 11 counted (3), chromium_nginx's 2 ECH rows left out: h3 2, h2 1,
    # http/1.1 1, h3-29 1.
    a = alpnsniff.read([CAPTURES / n for n in TEN[2:7]])
    b = alpnsniff.read([CAPTURES / n for n in [*TEN[7:], TEN[0]]])
    out = analytics.compare(a, b)
    assert list(out.columns) == ["protocol", "share_a", "share_b", "change"]
    third = round(1 / 3, 4)
    assert rows(out) == [
        ("h3", 0.0, round(2 / 3, 4), round(2 / 3, 4)),
        ("h2", 0.6, third, round(1 / 3 - 0.6, 4)),
        ("http/1.1", 0.6, third, round(1 / 3 - 0.6, 4)),
        ("h3-29", 0.0, third, third),
        ("(no ALPN)", 0.2, 0.0, -0.2),
        ("h2-14", 0.2, 0.0, -0.2),
        ("h2-16", 0.2, 0.0, -0.2),
        ("spdy/3", 0.2, 0.0, -0.2),
    ]
    assert out.attrs == {"left_out_ech": 2, "left_out_ech_a": 0, "left_out_ech_b": 2}
    # known choices: a 4 h2, 5 http/1.1, 6 http/1.1, 8 h2; b 11 h2
    sel = analytics.compare(a, b, of="selected")
    assert rows(sel) == [("h2", 0.5, 1.0, 0.5), ("http/1.1", 0.5, 0.0, -0.5)]


def test_a_server_only_row_is_no_clienthello(tmp_path: Path) -> None:
    # The server's side of openssl_tls12_h2 (ServerHello h2, visible) and nghttp_h2_tls12
    # (h2,h2-16,h2-14 → h2): one ClientHello counted, two selections.
    copy = tmp_path / "server.pcapng"
    write_one_side(TLS12, copy, analyze_file(TLS12).handshakes, "server")
    df = alpnsniff.read([copy, CAPTURES / "nghttp_h2_tls12.pcap"])
    assert df["alpn_offered"].isna().tolist() == [True, False]
    assert rows(analytics.offer_share(df)) == [("h2", 1, 1.0), ("h2-14", 1, 1.0), ("h2-16", 1, 1.0)]
    assert rows(analytics.offer_share(df, first=True)) == [("h2", 1, 1.0)]
    assert list(analytics.offers(df)["row"]) == [1, 1, 1]
    assert rows(analytics.selection_share(df)) == [("h2", 2, 1.0)]
    assert rows(analytics.outcomes(df)) == [("visible", 2, 1.0)]
    assert rows(analytics.honoured(df)) == [(1, 1, 1.0)]  # the server-only row has no offer
    assert analytics.offer_share(df).attrs == {"left_out_ech": 0}


# Records made from a real one (openssl_tls12_h2's), through the real column derivation
# (alpn_offered text and hex as alpnsniff.read gives them):
#   row  alpn_offered_raw                          ech    selection / selected  sni
#   0    0A0A h2 0A0A h2 http/1.1                  False  visible h2            a.test
#   1    ZZ (0x5A5A: GREASE only)                  False  none                  a.test
#   2    1A2A, 0A, the 8 octets "\x0a\x0a"         False  visible http/1.1      b.test
#   3    zz (0x7A7A) ** (0x2A2A) http/1.1          False  decrypted http/1.1    b.test
#   4    h3                                        True   unseen                b.test
#   5    (not seen: one-sided)                     None   visible h2            None
#   6    () no ALPN                                False  not-offered           b.test
# Row 2's IDs are near misses, not GREASE (RFC 8701: two equal octets 0x?A): 0x1A2A's octets
# differ, 0x0A is one octet, and the text "\x0a\x0a" typed as 8 characters is escaped to
# \x5cx0a\x5cx0a. Its protocols' text: \x1a*, \x0a, \x5cx0a\x5cx0a.
MADE = [
    (
        (b"\x0a\x0a", b"h2", b"\x0a\x0a", b"h2", b"http/1.1"),
        False,
        Selection.VISIBLE,
        b"h2",
        "a.test",
    ),
    ((b"ZZ",), False, Selection.NONE, None, "a.test"),
    ((b"\x1a\x2a", b"\x0a", b"\\x0a\\x0a"), False, Selection.VISIBLE, b"http/1.1", "b.test"),
    ((b"zz", b"**", b"http/1.1"), False, Selection.DECRYPTED, b"http/1.1", "b.test"),
    ((b"h3",), True, Selection.UNSEEN, None, "b.test"),
    (None, None, Selection.VISIBLE, b"h2", None),
    ((), False, Selection.NOT_OFFERED, None, "b.test"),
]
NEAR = ["\\x1a*", "\\x0a", "\\x5cx0a\\x5cx0a"]


@pytest.fixture(scope="module")
def made() -> pd.DataFrame:
    (base,) = analyze_file(TLS12).handshakes
    records: list[tuple[str, Handshake]] = []
    for offered, ech, selection, selected, sni in MADE:
        h = dataclasses.replace(
            base,
            alpn_offered_raw=offered,
            ech=ech,
            selection=selection,
            alpn_selected_raw=selected,
            sni=sni,
        )
        records.append(("made", h))
    df = to_dataframe(records)
    assert df["alpn_offered"][2] == NEAR and df["alpn_offered"][1] == ["ZZ"]
    return df


def test_grease_ids_are_never_protocols_and_duplicates_count_once(made: pd.DataFrame) -> None:
    # Counted (ECH out): 0, 1, 2, 3, 6. h2: 0; http/1.1: 0, 3; (no ALPN): 1 (GREASE only),
    # 6; each near miss: 2.
    shares = analytics.offer_share(made)
    assert rows(shares) == [
        ("(no ALPN)", 2, 0.4),
        ("http/1.1", 2, 0.4),
        ("\\x0a", 1, 0.2),
        ("\\x1a*", 1, 0.2),
        ("\\x5cx0a\\x5cx0a", 1, 0.2),
        ("h2", 1, 0.2),
    ]
    assert shares.attrs == {"left_out_ech": 1}
    long = analytics.offers(made)
    assert [(r, k, str(p)) for r, k, p in long.itertuples(index=False)] == [
        (0, 1, "h2"),
        (0, 2, "http/1.1"),
        (2, 1, "\\x1a*"),
        (2, 2, "\\x0a"),
        (2, 3, "\\x5cx0a\\x5cx0a"),
        (3, 1, "http/1.1"),
    ]
    # first choices: 0 h2, 1 none, 2 \x1a*, 3 http/1.1 (after two GREASE IDs), 6 none
    assert rows(analytics.offer_share(made, first=True)) == [
        ("(no ALPN)", 2, 0.4),
        ("\\x1a*", 1, 0.2),
        ("h2", 1, 0.2),
        ("http/1.1", 1, 0.2),
    ]


def test_without_the_hex_column_grease_is_told_from_the_text(made: pd.DataFrame) -> None:
    text_only = made.drop(columns=["alpn_offered_hex"])
    for f in (analytics.offers, analytics.offer_share):
        got, want = f(text_only), f(made)
        assert got.astype(str).equals(want.astype(str)), f.__name__


def test_arrow_backed_list_columns_give_the_same(made: pd.DataFrame) -> None:
    arrow = made.astype(
        {
            "alpn_offered": pd.ArrowDtype(pa.list_(pa.string())),
            "alpn_offered_hex": pd.ArrowDtype(pa.list_(pa.string())),
        }
    )
    assert rows(analytics.offer_share(arrow)) == rows(analytics.offer_share(made))
    assert rows(analytics.offers(arrow)) == rows(analytics.offers(made))


def test_made_rows_include_ech_selection_honoured_preference(made: pd.DataFrame) -> None:
    # with ECH: 6 ClientHellos, row 4 adds h3
    with_ech = analytics.offer_share(made, include_ech=True)
    assert with_ech.attrs == {"left_out_ech": 0}
    assert dict(zip(with_ech["protocol"], with_ech["client_hellos"], strict=True))["h3"] == 1
    assert with_ech["share"].max() == pytest.approx(2 / 6)
    # known: 0 h2, 2 http/1.1, 3 http/1.1, 5 h2 (the one-sided row counts here)
    assert rows(analytics.selection_share(made)) == [("h2", 2, 0.5), ("http/1.1", 2, 0.5)]
    # every row: visible 0, 2, 5; decrypted 3; none 1; unseen 4; not-offered 6
    assert rows(analytics.outcomes(made)) == [
        ("visible", 3, round(3 / 7, 4)),
        ("decrypted", 1, round(1 / 7, 4)),
        ("none", 1, round(1 / 7, 4)),
        ("not-offered", 1, round(1 / 7, 4)),
        ("unseen", 1, round(1 / 7, 4)),
    ]
    # known choice and an offer: 0 h2→h2 yes, 2 \x1a*→http/1.1 no, 3 http/1.1→http/1.1 yes
    assert rows(analytics.honoured(made)) == [(3, 2, round(2 / 3, 4))]
    by = analytics.honoured(made, by="sni")
    assert rows(by) == [("a.test", 1, 1, 1.0), ("b.test", 2, 1, 0.5)]
    cross = analytics.preference(made)
    assert list(cross.index) == ["\\x1a*", "h2", "http/1.1"]
    assert list(cross.columns) == ["http/1.1", "h2"]
    assert cross.to_numpy().tolist() == [[1, 0], [0, 1], [1, 0]]


def test_a_real_capture_with_alpn_grease() -> None:
    # tshark -r openssl_tls12_alpn_grease.pcap -Y tls.handshake -T fields \
    #   -e tls.handshake.extensions_alpn_str: frame 4 "\n\n,h2,ZZ,http/1.1,h2" (ServerHello
    # h2), frame 21 "\x1a\x1a" (alert 120 in frame 23), frame 31 "JJ,http/1.1" (ServerHello
    # http/1.1).
    df = alpnsniff.read(GREASE_CAPTURE)
    assert rows(analytics.offer_share(df)) == [
        ("http/1.1", 2, round(2 / 3, 4)),
        ("(no ALPN)", 1, round(1 / 3, 4)),
        ("h2", 1, round(1 / 3, 4)),
    ]
    assert [(r, k, str(p)) for r, k, p in analytics.offers(df).itertuples(index=False)] == [
        (0, 1, "h2"),
        (0, 2, "http/1.1"),
        (2, 1, "http/1.1"),
    ]
    assert rows(analytics.honoured(df)) == [(2, 2, 1.0)]


def test_an_empty_frame_gives_empty_results_with_their_columns(ten: pd.DataFrame) -> None:
    empty = ten.iloc[:0]
    expected = {
        "offers": ["row", "rank", "protocol"],
        "offer_share": ["protocol", "client_hellos", "share"],
        "selection_share": ["protocol", "handshakes", "share"],
        "outcomes": ["selection", "handshakes", "share"],
        "honoured": ["handshakes", "honoured", "rate"],
        "timeline": ["period", "protocol", "count"],
    }
    for name, columns in expected.items():
        out = getattr(analytics, name)(empty)
        assert out.empty and list(out.columns) == columns, name
        assert out.attrs == {"left_out_ech": 0}, name
    by = analytics.offer_share(empty, by=["sni", "transport"])
    assert list(by.columns) == ["sni", "transport", "protocol", "client_hellos", "share"]
    assert by.empty
    assert analytics.preference(empty).empty
    assert analytics.compare(empty, empty).empty
    assert str(analytics.timeline(empty)["period"].dtype) == "datetime64[ns, UTC]"


def test_bad_arguments_say_what_is_wrong(ten: pd.DataFrame) -> None:
    with pytest.raises(KeyError, match="no column nosuch"):
        analytics.offer_share(ten, by="nosuch")
    with pytest.raises(ValueError, match="is a result column"):
        analytics.offer_share(ten, by="share")
    with pytest.raises(ValueError, match="a column twice"):
        analytics.outcomes(ten, by=["sni", "sni"])
    with pytest.raises(KeyError, match="no column ech"):
        analytics.offer_share(ten.drop(columns=["ech"]))


# The CLI summary's offer lines: label, then per column a share and a count.
_LINE = re.compile(r"^  (.+?)\s+(\d+\.\d)%\s+([\d,]+)\s+(\d+\.\d)%\s+([\d,]+)(?:  .*)?$")
_MORE = re.compile(r"^  … ([\d,]+) more IDs\s+([\d,]+)\s+([\d,]+)\s+\(offers\)$")
_TITLE = re.compile(r"ECH (left out|counted) \((\d+)\)")

Column = dict[str, tuple[str, int]]  # label: (share as printed, count)


def summary_columns(text: str) -> dict[str, tuple[int, Column, int, int]]:
    """Per column title ("left out", "counted"): (its ClientHellos, the listed IDs, how many
    IDs the "more" line sums, their count)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("offered (share of"))
    titles = _TITLE.findall(lines[start + 1])
    assert len(titles) == 2, lines[start + 1]
    listed: list[Column] = [{}, {}]
    more = [0, 0]
    more_ids = 0
    for line in lines[start + 2 :]:
        if not line.startswith("  "):
            break
        if m := _MORE.match(line):
            more_ids, more = int(m[1]), [int(m[2]), int(m[3])]
            continue
        m = _LINE.match(line)
        assert m is not None, line
        listed[0][m[1]] = (m[2], int(m[3]))
        listed[1][m[1]] = (m[4], int(m[5]))
    return {
        title: (int(base), listed[i], more_ids, more[i]) for i, (title, base) in enumerate(titles)
    }


@pytest.mark.parametrize("option", [[], ["--include-ech"]])
def test_offer_share_without_by_is_the_cli_summary(option: list[str]) -> None:
    # The installed command on every bundled capture (50 files, 65 handshakes, 3 with ECH):
    # its "ECH left out" column is offer_share(df), its "ECH counted" column
    # offer_share(df, include_ech=True), ID by ID (15 listed, the rest summed on one line);
    # --include-ech swaps the columns, not the numbers.
    paths = sorted(str(p) for p in CAPTURES.glob("*.pcap*"))
    proc = cli(*paths, *option)
    assert proc.returncode == 0, proc.stderr.decode()
    columns = summary_columns(proc.stdout.decode())
    assert list(columns) == (["counted", "left out"] if option else ["left out", "counted"])
    df = alpnsniff.read(paths)
    for title, include_ech in (("left out", False), ("counted", True)):
        base, listed, more_ids, more = columns[title]
        shares = analytics.offer_share(df, include_ech=include_ech)
        assert int(analytics.counted_client_hellos(df, include_ech=include_ech).sum()) == base
        assert shares.attrs["left_out_ech"] == (0 if include_ech else columns["counted"][0] - base)
        mine = {p: (f"{100 * s:.1f}", n) for p, n, s in shares.itertuples(index=False)}
        for label, cell in listed.items():
            # an ID only ECH hellos offer is listed at 0.0% in the left-out column
            assert mine.get(label, ("0.0", 0)) == cell, (title, label)
        rest = {p: n for p, (_, n) in mine.items() if p not in listed}
        assert (len(rest), sum(rest.values())) == (more_ids, more), title


def test_offer_share_by_is_the_cli_by(ten: pd.DataFrame) -> None:
    # alpnsniff read --by sni prints per group its ClientHellos and its top 4 protocols
    proc = cli(*[str(CAPTURES / n) for n in TEN], "--by", "sni")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("offered by sni"))
    assert "ECH left out: 3" in lines[start]
    shares = analytics.offer_share(ten, by="sni")
    for line in lines[start + 2 :]:
        if not line.startswith("  "):
            break
        group, n, protocols = line.split(None, 2)
        key = shares["sni"].isna() if group == "(none)" else shares["sni"] == group
        part = shares[key.fillna(False).to_numpy(dtype=bool)]
        assert round(part["client_hellos"].iloc[0] / part["share"].iloc[0]) == int(n), group
        want = [f"{p} {100 * s:.1f}%" for p, s in zip(part["protocol"], part["share"], strict=True)]
        assert protocols == ", ".join(want[:4]), group
