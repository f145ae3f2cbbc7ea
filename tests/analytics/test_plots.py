"""alpnsniff.analytics.plots: each picture's bars, cells and labels on the ten captures of
``test_shares.TEN``, whose handshakes its docstring lists as tshark shows them (numbered 1-11
there; the counts below are read off that table by hand), an empty frame, hostile wire text,
and the backend chosen when none is.

Counted by hand, ECH left out (8 ClientHellos, rows 4-11): h2 4 (50%), http/1.1 4 (50%), h3 2
(25%), then 1 each (12.5%): (no ALPN), h2-14, h2-16, h3-29, spdy/3. With ECH (11): h2 6.
Known selections (5): h2 3 (60%), http/1.1 2 (40%). Server names (ECH left out):
www.example.test 4 (rows 5, 7, 8, 11), quic.example.test 2 (9, 10), localhost 1 (6), no SNI 1
(4). First choice × selection: h2→h2 3 (4, 8, 11), h2→http/1.1 1 (6), spdy/3→http/1.1 1 (5).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")  # before pyplot: the tests never need a display

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib import cbook
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

import alpnsniff
from alpnsniff.analytics import plots
from tests.analytics.test_shares import TEN
from tests.conftest import CAPTURES, subprocess_env

HOSTILE_SNI = "$\\frac{a}{b}$<script>alert(1)</script>"


@pytest.fixture(scope="module")
def ten() -> pd.DataFrame:
    return alpnsniff.read([CAPTURES / name for name in TEN])


@pytest.fixture(autouse=True)
def _close_figures() -> object:
    yield
    plt.close("all")


def ticks(labels: list[object]) -> list[str]:
    return [t.get_text() for t in labels]  # type: ignore[attr-defined]


def png(ax: Axes) -> bytes:
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png")
    data = buf.getvalue()
    assert data.startswith(b"\x89PNG")
    return data


def test_offered_against_selected_bars(ten: pd.DataFrame) -> None:
    ax = plots.plot_shares(ten)
    order = ["h2", "http/1.1", "h3", "(no ALPN)", "h2-14", "h2-16", "h3-29", "spdy/3"]
    assert ticks(ax.get_yticklabels()) == order
    offered, selected = ax.containers
    assert [round(b.get_width(), 1) for b in offered] == [50, 50, 25, *[12.5] * 5]
    assert [round(b.get_width(), 1) for b in selected] == [60, 40, *[0] * 6]
    assert len(ax.patches) == 2 * len(order)
    legend = ticks(ax.get_legend().get_texts())
    assert legend == [
        "offered (n=8 ClientHellos, ECH left out)",
        "selected (n=5 selections seen or decrypted)",
    ]
    # each bar that counts something says its share and count
    notes = [t.get_text() for t in ax.texts]
    assert "50.0% (4)" in notes and "60.0% (3)" in notes and "40.0% (2)" in notes
    assert ax.get_title() and ax.get_xlabel()
    png(ax)


def test_offered_with_ech_and_top(ten: pd.DataFrame) -> None:
    ax = plots.plot_shares(ten, top=2, include_ech=True)
    assert ticks(ax.get_yticklabels()) == ["h2", "http/1.1"]
    offered, _ = ax.containers
    assert [round(b.get_width(), 2) for b in offered] == [round(600 / 11, 2)] * 2
    assert ticks(ax.get_legend().get_texts())[0] == "offered (n=11 ClientHellos, ECH counted)"


def test_plot_offer_shares_draws_into_a_given_axes(ten: pd.DataFrame) -> None:
    fig = Figure()
    given = fig.add_subplot()
    ax = plots.plot_offer_shares(ten, top=3, ax=given)
    assert ax is given
    assert ticks(ax.get_yticklabels()) == ["h2", "http/1.1", "h3"]
    assert [b.get_width() for b in ax.patches] == [50, 50, 25]
    assert ticks(ax.get_legend().get_texts()) == ["offered (n=8 ClientHellos)"]


def test_outcomes_one_bar_per_selection_value(ten: pd.DataFrame) -> None:
    ax = plots.plot_outcomes(ten)
    assert ticks(ax.get_yticklabels()) == [
        "visible", "encrypted", "decrypted", "none", "not-offered", "rejected", "aborted",
        "retried", "unseen",
    ]  # fmt: skip
    assert [b.get_width() for b in ax.patches] == [4, 4, 1, 0, 1, 1, 0, 0, 0]
    assert ax.get_xlabel() == "handshakes (n=11)"


def test_timeline_stacks_the_top_protocols_and_the_rest(ten: pd.DataFrame) -> None:
    # ClientHellos 4-11 span 873.4 .. 915.5 s: 43 one-second bins at most 60
    assert plots.auto_freq(ten) == "1s"
    ax = plots.plot_timeline(ten, top=3)
    assert ticks(ax.get_legend().get_texts()) == [
        "h2 (n=4)",
        "http/1.1 (n=4)",
        "h3 (n=2)",
        "other (n=5)",  # (no ALPN), h2-14, h2-16, h3-29, spdy/3
    ]
    assert len(ax.collections) == 4  # one area each
    assert "1 s" in ax.get_title() and ax.get_ylabel() == "offers per 1 s"
    table = plots.timeline_table(ten, freq="1min")
    assert table.sum().to_dict() == {
        "h2": 4, "http/1.1": 4, "h3": 2, "(no ALPN)": 1, "h2-14": 1, "h2-16": 1, "h3-29": 1,
        "spdy/3": 1,
    }  # fmt: skip
    assert len(table) == 2  # 00:54 and 00:55 UTC
    png(ax)


def test_a_protocol_keeps_its_colour_across_pictures(ten: pd.DataFrame) -> None:
    # offered over the ten: h2, http/1.1, h3, other; selected in pyssl_tls12_http11.pcap
    # alone: http/1.1 only, first in its picture, still in http/1.1's colour
    offered = plots.plot_timeline(ten, top=3)
    alone = alpnsniff.read(CAPTURES / "pyssl_tls12_http11.pcap")
    selected = plots.plot_timeline(alone, of="selected")

    def colours(ax: object) -> dict[str, str]:
        labels = ticks(ax.get_legend().get_texts())  # type: ignore[attr-defined]
        faces = [to_hex(c.get_facecolor()[0]) for c in ax.collections]  # type: ignore[attr-defined]
        return {label.split(" (n=")[0]: face for label, face in zip(labels, faces, strict=True)}

    assert colours(offered) == {
        "h2": "#4e79a7", "http/1.1": "#f28e2b", "h3": "#59a14f", "other": "#bab0ac",
    }  # fmt: skip
    assert colours(selected) == {"http/1.1": "#f28e2b"}
    # the rest take the free colours in order
    assert plots.protocol_colours(["spdy/3", "h2", "other", "h2-14"]) == [
        "#76b7b2", "#4e79a7", "#bab0ac", "#edc948",
    ]  # fmt: skip


def test_a_tiny_share_is_not_written_as_zero() -> None:
    assert plots._pct(1 / 5000) == "<0.1%"
    assert plots._pct(0.0) == "0.0%" and plots._pct(0.001) == "0.1%"


def test_server_heatmap_cells(ten: pd.DataFrame) -> None:
    ax = plots.plot_offer_heatmap(ten, protocols=4)
    assert ticks(ax.get_yticklabels()) == [
        "www.example.test (n=4)",
        "quic.example.test (n=2)",
        "(no SNI) (n=1)",
        "localhost (n=1)",
    ]
    assert ticks(ax.get_xticklabels()) == ["h2", "http/1.1", "h3", "(no ALPN)"]
    (image,) = ax.images
    # www: h2 rows 8, 11; http/1.1 5, 8, 11; no ALPN 7 (of 4) · quic: h3 9, 10 · (no SNI): 4
    # offers h2 · localhost: 6 offers h2, http/1.1
    assert image.get_array().tolist() == [
        [0.5, 0.75, 0.0, 0.25],
        [0.0, 0.0, 1.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
        [1.0, 1.0, 0.0, 0.0],
    ]
    cells = [t.get_text() for t in ax.texts]
    assert cells[:4] == ["50%", "75%", "·", "25%"] and len(cells) == 16
    top2 = plots.plot_offer_heatmap(ten, top=2)
    assert len(top2.get_yticklabels()) == 2


def test_capture_heatmap(ten: pd.DataFrame) -> None:
    ax = plots.plot_offer_heatmap(ten, by="capture", top=3, protocols=2)
    labels = ticks(ax.get_yticklabels())
    # the base names; each capture has one counted ClientHello (ECH left out): ties by name
    assert labels == [
        "aioquic_alpn_mismatch.pcap (n=1)",
        "aioquic_h3_v1.pcap (n=1)",
        "gnutls_tls12_alpn.pcap (n=1)",
    ]
    assert ax.images[0].get_array().tolist() == [[0, 0], [0, 0], [0, 1]]


def test_preference_matrix(ten: pd.DataFrame) -> None:
    ax = plots.plot_preference(ten)
    assert ticks(ax.get_yticklabels()) == ["h2", "spdy/3"]
    assert ticks(ax.get_xticklabels()) == ["h2", "http/1.1"]
    assert ax.images[0].get_array().tolist() == [[3, 1], [0, 1]]
    assert [t.get_text() for t in ax.texts] == ["3", "1", "·", "1"]
    assert "n=5" in ax.get_xlabel()
    assert len(ax.patches) == 1  # the one diagonal cell, h2 -> h2, outlined


@pytest.mark.parametrize(
    "draw",
    [
        plots.plot_shares,
        plots.plot_offer_shares,
        plots.plot_outcomes,
        plots.plot_timeline,
        plots.plot_offer_heatmap,
        plots.plot_preference,
    ],
)
def test_an_empty_frame_says_no_data(ten: pd.DataFrame, draw: object) -> None:
    ax = draw(ten.iloc[0:0])  # type: ignore[operator]
    assert isinstance(ax, Axes)
    assert [t.get_text() for t in ax.texts] == [plots.NO_DATA]
    assert ax.get_title()
    png(ax)


def test_hostile_wire_text_is_drawn_as_text(ten: pd.DataFrame) -> None:
    df = ten.copy()
    df["sni"] = df["sni"].astype("object")
    df.loc[df.index[[4, 6, 7]], "sni"] = [HOSTILE_SNI, "$\\frac$", "a$b$c$d\\$"]
    df["sni"] = df["sni"].astype("string")
    # an offer of two IDs keeps two (the hex column says they are no GREASE)
    offered = list(df["alpn_offered"])
    offered[7] = ["$x^2$", "<b>h2</b>"]
    df["alpn_offered"] = offered
    for draw in (
        plots.plot_shares,
        plots.plot_offer_shares,
        plots.plot_timeline,
        plots.plot_offer_heatmap,
        plots.plot_preference,
    ):
        ax = draw(df)
        png(ax)  # renders: no mathtext error
        texts = [
            *ticks(ax.get_yticklabels()),
            *ticks(ax.get_xticklabels()),
            *(ticks(ax.get_legend().get_texts()) if ax.get_legend() else []),
            ax.get_title(),
        ]
        assert not [t for t in texts if cbook.is_math_text(t)]
    heat = ticks(plots.plot_offer_heatmap(df).get_yticklabels())
    assert "\\$\\frac{a}{b}\\$<script>alert(1)</script> (n=1)" in heat
    assert "\\$\\frac\\$ (n=1)" in heat  # as mathtext: a parse error, no picture
    assert "$x^2$" not in ticks(plots.plot_shares(df).get_yticklabels())
    assert "\\$x^2\\$" in ticks(plots.plot_shares(df).get_yticklabels())


def test_safe_label() -> None:
    assert plots.safe_label("$\\frac{a}{b}$") == "\\$\\frac{a}{b}\\$"
    long = "x" * 100
    assert plots.safe_label(long) == "x" * 39 + "…"
    assert not cbook.is_math_text(plots.safe_label("$a$" * 30))


_BACKEND = """
import sys
import alpnsniff, alpnsniff.analytics as a
assert "matplotlib" not in sys.modules, "importing analytics imported matplotlib"
df = alpnsniff.read(sys.argv[1])
a.plot_outcomes(df)
import matplotlib
print(matplotlib.get_backend().lower())
"""


@pytest.mark.parametrize(("chosen", "expected"), [(None, "agg"), ("svg", "svg")])
def test_agg_when_no_backend_is_chosen(tmp_path: object, chosen: str | None, expected: str) -> None:
    env = {
        k: v
        for k, v in subprocess_env().items()
        if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")
    }
    env["MPLCONFIGDIR"] = str(tmp_path)  # no user matplotlibrc
    if chosen:
        env["MPLBACKEND"] = chosen
    done = subprocess.run(
        [sys.executable, "-c", _BACKEND, str(CAPTURES / "nginx_curl_h2_tls12.pcap")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(CAPTURES),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected
