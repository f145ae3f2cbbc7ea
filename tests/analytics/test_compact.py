"""alpnsniff.analytics.compact: the same frame in less memory, and the same results from every
function of alpnsniff.analytics on it (the numbers themselves are checked by hand in
test_shares and test_report)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

import alpnsniff
from alpnsniff import analytics
from alpnsniff.analytics.report import render_report
from tests.analytics.test_shares import GREASE_CAPTURE, TEN
from tests.conftest import CAPTURES


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = alpnsniff.read(sorted(CAPTURES.glob("*.pcap*")))
    return df, analytics.compact(df)


def test_list_and_repeated_text_columns_become_compact(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    df, small = frames
    assert str(small["alpn_offered"].dtype) == "list<item: string>[pyarrow]"
    assert str(small["extensions"].dtype) == "list<item: int32>[pyarrow]"  # bits=32, as Parquet
    # 65 rows: 4 distinct SNI and three rows without (a repeated text) become categories;
    # the capture (50 distinct: over half the rows) and the ts stay as they were
    assert len(df) == 65
    assert df["sni"].nunique() == 4 and small["sni"].dtype == "category"
    assert small["sni"].isna().sum() == df["sni"].isna().sum() == 3
    assert df["capture"].nunique() == 50 and small["capture"].dtype == "string"
    assert small["ts"].dtype == df["ts"].dtype and small["selection"].dtype == df["selection"].dtype
    assert small.attrs == df.attrs and small.attrs["stats"]["packets"] > 0
    # the values are the same
    # (a missing list is <NA> in an Arrow column: the refused CONNECTs' rows have no offer)
    assert [None if v is pd.NA else list(v) for v in small["alpn_offered"]] == list(
        df["alpn_offered"]
    )
    assert small["sni"].astype("string").equals(df["sni"])
    # the input is not changed, and it takes more memory
    assert df["alpn_offered"].dtype == object and df["sni"].dtype == "string"
    assert small.memory_usage(deep=True).sum() < 0.5 * df.memory_usage(deep=True).sum()
    # compacting twice changes nothing more
    again = analytics.compact(small)
    assert (again.dtypes == small.dtypes).all()


RESULTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "offers": analytics.offers,
    "offer_share": analytics.offer_share,
    "offer_share ech": lambda d: analytics.offer_share(d, include_ech=True),
    "offer_share first by sni": lambda d: analytics.offer_share(d, by="sni", first=True),
    "offer_share by capture, transport": lambda d: analytics.offer_share(
        d, by=["capture", "transport"]
    ),
    "selection_share by server_ip": lambda d: analytics.selection_share(d, by="server_ip"),
    "outcomes by tls_version": lambda d: analytics.outcomes(d, by="tls_version"),
    "honoured by sni": lambda d: analytics.honoured(d, by="sni"),
    "preference": analytics.preference,
    "timeline": lambda d: analytics.timeline(d, freq="10s"),
    "timeline selected": lambda d: analytics.timeline(d, freq="10s", of="selected"),
    "compare": lambda d: analytics.compare(d.iloc[:25], d.iloc[25:]),
}


@pytest.mark.parametrize("name", RESULTS)
def test_every_function_gives_the_same_on_a_compact_frame(
    frames: tuple[pd.DataFrame, pd.DataFrame], name: str
) -> None:
    df, small = frames
    want, got = RESULTS[name](df), RESULTS[name](small)
    assert not want.empty
    # the same rows and numbers; a key column may be categorical on the compact side
    pd.testing.assert_frame_equal(
        got.astype(str).reset_index(drop=True), want.astype(str).reset_index(drop=True)
    )
    assert got.attrs == want.attrs


def test_the_report_and_grease_on_a_compact_frame() -> None:
    df = alpnsniff.read([*(CAPTURES / n for n in TEN), GREASE_CAPTURE])
    small = analytics.compact(df)
    assert render_report(small, pictures=False) == render_report(df, pictures=False)
    # the GREASE capture's three hellos: GREASE IDs never protocols, on either frame
    grease = analytics.offer_share(small[small["capture"].astype(str) == str(GREASE_CAPTURE)])
    assert list(grease["protocol"]) == ["http/1.1", "(no ALPN)", "h2"]
