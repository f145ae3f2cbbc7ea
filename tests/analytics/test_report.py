"""alpnsniff.analytics.report: the HTML page of captures/*.pcap*, opened in headless Chromium.

The page must show what ``alpnsniff read captures/*.pcap*`` prints (its summary is computed
by sinks/summary.py, one record at a time, without pandas: code independent of the
analytics): the counts of the header, every offered and selected share and count, the
selection and TLS version counts, the skip reasons. The rendered DOM is read back from
Chromium (``--dump-dom``), so what is checked is what a browser shows, not the text we wrote.
Also: nothing external is referenced, a screenshot is not blank, hostile wire text stays
text, and the page of an empty frame, of a frame without its run counts, of two captures.
"""

from __future__ import annotations

import html.parser
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import alpnsniff
from alpnsniff.analytics.report import render_report
from alpnsniff.tls.alpn import is_grease_alpn
from tests.analytics.test_shares import TEN
from tests.conftest import CAPTURES, subprocess_env

FILES = sorted(str(p) for p in CAPTURES.glob("*.pcap*"))
HOSTILE_SNI = "<script>alert(1)</script>$\\frac{a}{b}$"
HOSTILE_ID = "<img/src=x>"


class Page(html.parser.HTMLParser):
    """The parts of a page the tests read: each table's body rows (cell texts), keyed by the
    table's id; all text in order; every tag with its attributes."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.texts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._table: str | None = None
        self._body = False
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tbody":
            self._body = True
        elif tag == "tr" and self._body and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table, self._body = None, False
        elif tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if data.strip():
            self.texts.append(data.strip())

    def rows(self, table: str) -> list[list[str]]:
        """A table's rows, its folded rest (``<id>-more``) included."""
        return self.tables[table] + self.tables.get(f"{table}-more", [])

    def row(self, table: str, first: str) -> list[str]:
        found = [r for r in self.rows(table) if r and r[0] == first]
        assert len(found) == 1, f"{table}: {first!r} in {[r[0] for r in self.rows(table)]}"
        return found[0]


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("chromium is not installed")
    return path


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium (root: no sandbox; no network of its own) on a local file."""
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def dump_dom(page: Path, profile: Path) -> str:
    done = browse(page, profile, "--dump-dom")
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def summary() -> str:
    """What the installed ``alpnsniff read captures/*.pcap*`` prints."""
    exe = shutil.which("alpnsniff")
    assert exe is not None, "the alpnsniff command is not installed"
    done = subprocess.run(
        [exe, "read", *FILES], capture_output=True, text=True, timeout=120, env=subprocess_env()
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The page of captures/*.pcap* (path, text)."""
    text = render_report(alpnsniff.read(FILES))
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(text, encoding="utf-8")
    yield path, text


@pytest.fixture(scope="module")
def shown(report: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Page:
    """The page as Chromium rendered it."""
    return Page(dump_dom(report[0], tmp_path_factory.mktemp("profile")))


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def _offer_lines(summary: str) -> list[re.Match[str]]:
    """The summary's offered rows: label, share and count (one or two columns)."""
    lines = summary.split("\n")
    start = next(i for i, x in enumerate(lines) if x.startswith("offered ("))
    end = next(i for i, x in enumerate(lines) if x.startswith("selected ("))
    row = re.compile(r"  (\S.*?)\s+(\d+\.\d%)\s+([\d,]+)(?:\s+(\d+\.\d%)\s+([\d,]+))?(?:  .*)?$")
    found = [row.fullmatch(x) for x in lines[start + 1 : end] if not x.startswith("  …")]
    return [m for m in found if m is not None]


def _octets(text: str) -> bytes:
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m[1], 16)]), text.encode())


def test_the_page_shows_the_summary_of_the_cli(summary: str, shown: Page) -> None:
    first = summary.split("\n")[0]
    m = re.fullmatch(r"([\d,]+) captures?, ([\d,]+) packets?, ([\d,]+) handshakes? \((.*)\)", first)
    assert m is not None, first
    captures, packets, handshakes, transports = m.groups()
    texts = shown.texts
    for number, key in [
        (captures, "captures"),
        (packets, "packets"),
        (handshakes, f"handshakes ({transports})"),
    ]:
        i = texts.index(key)
        assert texts[i - 1] == number, (key, texts[i - 2 : i + 1])
    assert f"{handshakes} handshakes" in texts
    assert len(shown.rows("inputs")) == len(FILES)

    offers = _offer_lines(summary)
    assert len(offers) >= 10
    two_columns = offers[0].group(4) is not None
    for m in offers:
        label = m.group(1)
        if label != "(no ALPN)" and is_grease_alpn(_octets(label)):
            continue  # the summary lists GREASE IDs; the report never counts them as protocols
        row = shown.row("offered-table", label)
        assert row[1:3] == [m.group(2), m.group(3)], (label, row)
        if two_columns:
            assert row[3:5] == [m.group(4), m.group(5)], (label, row)
    h2 = shown.row("offered-table", "h2")
    assert h2[1] == next(m.group(2) for m in offers if m.group(1) == "h2")

    lines = summary.split("\n")
    i = next(i for i, x in enumerate(lines) if x.startswith("selected ("))
    selected = []
    for x in lines[i + 1 :]:
        s = re.fullmatch(r"  (\S+)\s+(\d+\.\d%)\s+([\d,]+)(?:  .*)?", x)
        if s is None:
            break
        selected.append(s.groups())
    assert selected
    column = 5 if two_columns else 3
    for label, share, n in selected:
        assert shown.row("offered-table", label)[column : column + 2] == [share, n], label

    (selection,) = [x for x in lines if x.startswith("selection: ")]
    pairs = dict(p.rsplit(" ", 1) for p in selection.removeprefix("selection: ").split(", "))
    outcomes = {r[0]: r[2] for r in shown.rows("outcomes-table")}
    for value, n in pairs.items():
        assert outcomes[value] == n, value
    assert sum(_n(v) for v in outcomes.values()) == _n(handshakes)

    (versions,) = [x for x in lines if x.startswith("tls version: ")]
    for part in versions.removeprefix("tls version: ").split(", "):
        version, n = part.rsplit(" ", 1)
        assert shown.row("tls-versions", version)[1] == n

    i = lines.index("skipped:")
    for x in lines[i + 1 :]:
        if not x.startswith("  "):
            break
        reason, n = x.split()
        assert shown.row("skipped", reason)[1] == n


def test_nothing_is_fetched_from_elsewhere(report: tuple[Path, str], shown: Page) -> None:
    text = report[1]
    for tag, attrs in shown.tags:
        for name in ("src", "href", "srcset", "data", "action", "poster"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("data:image/png;base64,", "#")), (tag, name, value[:80])
        assert tag not in ("link", "script", "iframe", "object", "embed", "base")
    assert not re.search(r"https?://|@import|url\(", text, re.I)
    images = [a for t, a in shown.tags if t == "img"]
    assert len(images) >= 6


def test_the_screenshot_is_a_page_with_pictures(
    report: tuple[Path, str], tmp_path: Path
) -> None:
    import matplotlib.image

    shot = tmp_path / "report.png"
    done = browse(
        report[0], tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,4000"
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-3000:]
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (4000, 1280)
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb[::7], axis=0)
    assert len(colours) > 500, len(colours)  # text, tables and the pictures' colours
    for band in range(4):  # no empty stretch: every 1000 pixels hold text or pictures
        part = (pixels[band * 1000 : (band + 1) * 1000, :, :3] * 255).astype(np.uint8)
        assert len(np.unique(part.reshape(-1, 3)[::5], axis=0)) > 50, band


def test_hostile_wire_text_stays_text(tmp_path: Path) -> None:
    df = alpnsniff.read([CAPTURES / name for name in TEN])
    sni = df["sni"].astype("object")
    sni.iloc[4] = HOSTILE_SNI  # gnutls_tls12_alpn: a counted ClientHello, ECH left out
    df["sni"] = sni.astype("string")
    offered = list(df["alpn_offered"])
    offered[4] = [HOSTILE_ID, "http/1.1"]  # still two IDs, as the hex column says
    df["alpn_offered"] = offered
    text = render_report(df, title="<b>title</b>")
    assert "<script" not in text and "<img/src" not in text and "<b>title" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    path = tmp_path / "hostile.html"
    path.write_text(text, encoding="utf-8")
    dom = dump_dom(path, tmp_path / "profile")
    page = Page(dom)
    assert not [t for t, _ in page.tags if t == "script"]
    assert [a.get("src", "")[:5] for t, a in page.tags if t == "img"] == ["data:"] * 6
    assert page.row("servers-table", HOSTILE_SNI)[1:3] == ["1", "1"]
    assert page.row("offered-table", HOSTILE_ID)[1:3] == ["12.5%", "1"]  # 1 of 8
    assert "<b>title</b>" in page.texts


def test_an_empty_frame_and_a_frame_without_counts() -> None:
    df = alpnsniff.read(CAPTURES / "nginx_curl_h2_tls12.pcap")
    empty = render_report(df.iloc[0:0])
    page = Page(empty)
    for section in ("read", "offered", "outcomes", "ech", "servers", "timeline", "captures"):
        assert f'id="{section}"' in empty
    assert "no data" in page.texts
    # 18 packets (tshark -r nginx_curl_h2_tls12.pcap | wc -l), no handshake in the empty frame
    assert page.row("inputs", str(CAPTURES / "nginx_curl_h2_tls12.pcap"))[3:5] == ["18", "0"]
    bare = df.copy()
    bare.attrs = {}
    text = render_report(bare, pictures=False)
    page = Page(text)
    assert "<img" not in text
    assert "This DataFrame carries no run counts (df.attrs)." in page.texts
    assert page.row("offered-table", "h2")[1:3] == ["100.0%", "1"]
    assert page.row("outcomes-table", "visible")[2] == "1"


def test_two_captures_are_compared() -> None:
    # TEN's rows 8 (nginx_curl_h2_tls12: h2, http/1.1) and 5 (gnutls_tls12_alpn: spdy/3,
    # http/1.1), one ClientHello each
    a, b = CAPTURES / "nginx_curl_h2_tls12.pcap", CAPTURES / "gnutls_tls12_alpn.pcap"
    page = Page(render_report(alpnsniff.read([a, b]), pictures=False))
    assert page.rows("compare-table") == [
        ["http/1.1", "100.0%", "100.0%", "+0.0 pp"],
        ["spdy/3", "0.0%", "100.0%", "+100.0 pp"],
        ["h2", "100.0%", "0.0%", "-100.0 pp"],
    ]
    # one ClientHello each: by name
    assert [r[:3] for r in page.rows("captures-table")] == [[b.name, "1", "1"], [a.name, "1", "1"]]


def test_the_two_readings_of_ech(tmp_path: Path) -> None:
    # TEN: 8 ClientHellos without ECH, 11 with; h2 4 of 8 and 6 of 11
    df = alpnsniff.read([CAPTURES / name for name in TEN])
    page = Page(render_report(df, pictures=False))
    assert page.row("offered-table", "h2")[1:5] == ["50.0%", "4", "54.5%", "6"]
    swapped = Page(render_report(df, include_ech=True, pictures=False))
    assert swapped.row("offered-table", "h2")[1:5] == ["54.5%", "6", "50.0%", "4"]
    assert swapped.row("ech-table", "www.example.test")[1:3] == ["2", "33.3%"]  # 2 of 6
    assert pd.notna(df["ech"]).all()


def test_a_capture_whose_hellos_all_carry_ech_is_named_under_the_table() -> None:
    # chromium_nginx_h2_veth1500.pcap: 2 ClientHellos, both with (GREASE) ECH; left out of
    # the per-capture offer table by default, and the page says so
    ech_only = CAPTURES / "chromium_nginx_h2_veth1500.pcap"
    plain = CAPTURES / "openssl_tls12_h2.pcap"
    df = alpnsniff.read([ech_only, plain])
    page = Page(render_report(df, pictures=False))
    assert [r[0] for r in page.rows("captures-table")] == [plain.name]
    note = re.search(r"id='captures-ech-only'>([^<]*)<", render_report(df, pictures=False))
    assert note and "1 capture whose ClientHellos all carry ECH" in note[1]
    assert str(ech_only) in note[1]
    counted = Page(render_report(df, include_ech=True, pictures=False))
    assert len(counted.rows("captures-table")) == 2
    assert "captures-ech-only" not in render_report(df, include_ech=True, pictures=False)


def test_hostile_capture_names_stay_text(tmp_path: Path) -> None:
    # file names are the user's or an attacker's: markup, quotes and & in two of them
    names = ['a"><img src=x onerror=alert(1)>_1.pcap', "b'&amp;<script>-2.pcap"]
    paths = []
    for name, source in zip(names, ("nginx_curl_h2_tls12.pcap", "gnutls_tls12_alpn.pcap"),
                            strict=True):  # fmt: skip
        paths.append(tmp_path / name)
        shutil.copyfile(CAPTURES / source, paths[-1])
    text = render_report(alpnsniff.read(paths), pictures=False)
    assert "<img" not in text and "<script" not in text
    page = Page(text)
    assert [r[0] for r in page.rows("inputs")] == [str(p) for p in paths]  # whole, as text
    assert {r[0] for r in page.rows("captures-table")} == set(names)  # base names
    titles = Counter(a["title"] for t, a in page.tags if t == "span" and "title" in a)
    # each whole name in a title: its inputs row, its captures row, the compare column's head
    assert titles == {str(p): 3 for p in paths}
    # sizes (3416 and 3964 bytes) and packets (tshark -r F | wc -l) of the two sources
    assert [[r[1], r[3]] for r in page.rows("inputs")] == [["3.4 kB", "18"], ["4.0 kB", "15"]]
