"""``alpnsniff report`` as a user meets it: the installed command run on real captures, the
page it writes opened in headless Chromium, and every figure the browser shows checked
against what ``alpnsniff read`` says of the same files (its NDJSON rows, ``--stats`` and
summary, run apart: the page's figures come from pandas, these from the row writer).

Also: the screenshot is a real picture, the page fetches nothing, no text spills out of its
cell at 1280 px (a long capture name once ran over the size column), an output that is an
input is refused, and a failing run leaves no report behind (nor spoils an older one).

The page is made and rendered once for the module (three Chromium runs side by side: the
DOM, a screenshot, a layout probe); the file takes about 12 s on two cores. Chromium is
Debian's (``.ci/run`` installs it); without it those tests are skipped.
"""

from __future__ import annotations

import base64
import html.parser
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CAPTURES, subprocess_env
from tests.test_cli_outputs import ALPNSNIFF

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH (CI installs Debian's: see .ci/run)"
)

INPUTS = (
    "openssl_tls12_h2.pcap",  # TLS 1.2: h2 selected in the clear (visible)
    "openssl_tls13_h2.pcap",  # TLS 1.3: h2 in EncryptedExtensions, read with KEYLOG (decrypted)
    "aioquic_h3_v1.pcap",  # QUIC v1: h3 offered, the choice encrypted
    "chromium_nginx_h2_veth1500.pcap",  # Chromium, GREASE ECH; 1 or 2 connections a run
    "openssl_tls12_alert120.pcap",  # no common protocol: alert 120 (rejected)
    "gnutls_tls12_alpn.pcap",  # spdy/3,http/1.1 offered, http/1.1 selected
    "openssl_tls12_vlan.pcap",  # 802.1Q: its 2 ARP frames are skipped as non-ip
)
KEYLOG = CAPTURES / "openssl_tls13_h2.keys"
# a copy of openssl_tls12_h2.pcap under a name as long as a rotated span-port capture's
LONG_NAME = "span_uplink_core_switch_rack42_2026-11-22T00-54-32_rotated_part0001_of_0024.pcap"
TITLE = 'ALPN <b>audit</b> & "review"'  # markup in the title stays text
KNOWN = ("visible", "decrypted")  # the selections whose choice is known
SELECTIONS = ("visible", "encrypted", "decrypted", "none", "not-offered", "rejected",
              "aborted", "retried", "unseen")  # fmt: skip
WIDTH = 1280
PNG = b"\x89PNG\r\n\x1a\n"


def alpnsniff(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it."""
    if ALPNSNIFF is None:
        pytest.skip("the alpnsniff command is not installed (pip install -e .)")
    return subprocess.run(
        [ALPNSNIFF, *args], capture_output=True, text=True, timeout=120, env=subprocess_env(),
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def browsers(runs: Sequence[tuple[Path, Path, Sequence[str]]]) -> list[str]:
    """Headless Chromium on local pages, side by side: (page, profile folder, arguments) each;
    returns each run's stdout. Root needs --no-sandbox; nothing but the file is loaded."""
    assert CHROMIUM is not None
    flags = [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--window-size={WIDTH},4000",
    ]  # fmt: skip
    started = [
        subprocess.Popen(
            [CHROMIUM, *flags, f"--user-data-dir={profile}", *args, page.as_uri()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for page, profile, args in runs
    ]
    outputs = []
    for proc in started:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        outputs.append(out)
    return outputs


# --- the page as a tree (html.parser; a browser's DOM dump is well formed) ---

VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"]
)  # fmt: skip


class Node:
    """An element: its tag, attributes, and children (nodes and text)."""

    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[Node | str] = []

    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def text(self) -> str:
        """Its text, white space (no-break spaces too) folded to one space."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag) and (cls is None or cls in n.classes())
        ]

    def one(self, tag: str | None = None, cls: str | None = None) -> Node:
        found = self.all(tag, cls)
        assert len(found) == 1, (tag, cls, len(found))
        return found[0]


class Page(html.parser.HTMLParser):
    """A page parsed into :class:`Node` s, with the lookups the tests use."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self._open = [self.root]
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self._open[-1].children.append(node)
        if tag not in VOID:
            self._open.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, 0, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)

    def by_id(self, element_id: str) -> Node | None:
        return next((n for n in self.root.iter() if n.attrs.get("id") == element_id), None)

    def table(self, table_id: str) -> list[Node]:
        """A table's body rows (``tr`` nodes), its folded rest (``<id>-more``) included."""
        rows = []
        for tid in (table_id, f"{table_id}-more"):
            table = self.by_id(tid)
            assert table is not None or tid != table_id, f"no table #{table_id}"
            if table is not None:
                rows += table.one("tbody").all("tr")
        return rows

    def cells(self, table_id: str) -> dict[str, list[str]]:
        """Each body row's cell texts, keyed by its first cell's (which must be unique)."""
        out: dict[str, list[str]] = {}
        for row in self.table(table_id):
            texts = [td.text() for td in row.all("td")]
            assert texts[0] not in out, (table_id, texts[0])
            out[texts[0]] = texts
        return out

    def head(self, table_id: str) -> list[list[str]]:
        """A table's header rows (cell texts)."""
        table = self.by_id(table_id)
        assert table is not None, table_id
        return [[th.text() for th in tr.all("th")] for tr in table.one("thead").all("tr")]

    def tiles(self, section: str) -> dict[str, str]:
        """A section's number tiles: caption -> number."""
        node = self.by_id(section)
        assert node is not None, section
        return {t.one("div", "k").text(): t.one("div", "n").text() for t in node.all("div", "tile")}


# --- what `alpnsniff read` says of the same captures ---


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def is_grease(hex_id: str) -> bool:
    """RFC 8701 GREASE: the two octets 0x?A?A, equal."""
    return len(hex_id) == 4 and hex_id[:2] == hex_id[2:] and hex_id[1] == "a"


Row = dict[str, Any]  # an NDJSON row
Where = dict[str, Any] | None  # column -> value a row must have


@dataclass
class Read:
    """``alpnsniff read`` of the inputs: its rows (NDJSON), counts (--stats) and summary;
    each capture's packets and skips from a run of its own."""

    rows: list[Row]
    stats: dict[str, int]
    summary: str
    packets: dict[str, int]
    skipped: dict[str, int]

    def offered(self, include_ech: bool, where: Where = None) -> Counter[str]:
        """ClientHellos offering each protocol (distinct non-GREASE IDs; ``(no ALPN)``), over
        the ClientHellos seen, ECH ones left out unless ``include_ech``; ``where``: only the
        rows with these values."""
        out: Counter[str] = Counter()
        for row in self.hellos(include_ech, where):
            ids = {i for i, h in zip(row["alpn_offered"], row["alpn_offered_hex"], strict=True)
                   if not is_grease(h)}  # fmt: skip
            out.update(ids or {"(no ALPN)"})
        return out

    def hellos(self, include_ech: bool, where: Where = None) -> list[Row]:
        """The ClientHellos seen (ECH ones only with ``include_ech``)."""
        return [
            r
            for r in self.rows
            if r["alpn_offered"] is not None and (include_ech or not r["ech"]) and matches(r, where)
        ]

    def selected(self, where: Where = None) -> Counter[str]:
        """The known selections (visible or decrypted), by protocol."""
        return Counter(
            str(r["alpn_selected"])
            for r in self.rows
            if r["selection"] in KNOWN and r["alpn_selected"] is not None and matches(r, where)
        )


def matches(row: Row, where: Where) -> bool:
    return all(row[k] == v for k, v in (where or {}).items())


@dataclass
class Report:
    files: list[str]
    output: Path
    done: subprocess.CompletedProcess[str]


@dataclass
class Rendered:
    page: Page  # the DOM Chromium rendered
    screenshot: Path
    layout: dict[str, Any]  # what the probe measured


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """``alpnsniff report INPUTS… LONG_NAME --keylog KEYLOG --title TITLE -o report.html``."""
    folder = tmp_path_factory.mktemp("cli_report")
    long_copy = folder / LONG_NAME
    shutil.copyfile(CAPTURES / "openssl_tls12_h2.pcap", long_copy)
    files = [str(CAPTURES / name) for name in INPUTS] + [str(long_copy)]
    output = folder / "report.html"
    done = alpnsniff("report", *files, "--keylog", str(KEYLOG), "--title", TITLE,
                     "-o", str(output))  # fmt: skip
    return Report(files, output, done)


@pytest.fixture(scope="module")
def read(report: Report, tmp_path_factory: pytest.TempPathFactory) -> Read:
    stats_file = tmp_path_factory.mktemp("stats") / "stats.json"
    whole = ["read", *report.files, "--keylog", str(KEYLOG), "-T", "ndjson",
             "--stats", str(stats_file)]  # fmt: skip
    with ThreadPoolExecutor(max_workers=4) as pool:  # the runs are independent: side by side
        done, *each = pool.map(lambda args: alpnsniff(*args), [whole] +
                               [["read", name] for name in report.files])  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    packets, skipped = {}, {}
    for name, one in zip(report.files, each, strict=True):
        assert one.returncode == 0, one.stderr
        m = re.match(r"1 capture, ([\d,]+) packets?, ", one.stdout)
        assert m is not None, one.stdout[:200]
        packets[name] = int(m[1].replace(",", ""))
        skipped[name] = sum(n for _, n in skip_lines(one.stdout))
    stats = json.loads(stats_file.read_text())
    return Read(rows, stats, done.stderr, packets, skipped)


def skip_lines(summary: str) -> list[tuple[str, int]]:
    """The summary's ``skipped:`` block: (reason, count) each."""
    lines = summary.split("\n")
    if "skipped:" not in lines:
        return []
    out = []
    for line in lines[lines.index("skipped:") + 1 :]:
        if not line.startswith("  "):
            break
        reason, n = line.split()
        out.append((reason, int(n.replace(",", ""))))
    return out


# Measures, once the page is laid out, every cell or block whose text is wider than its box
# (it would run over its neighbour), every table that scrolls sideways, each picture's box.
PROBE = """<script>
addEventListener('load', () => {
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className ? '.' + String(el.className).split(' ').join('.') : '');
  const spills = [];
  for (const el of document.querySelectorAll('td,th,h1,h2,h3,p,li,summary,.tile,.meta,nav')) {
    if (el.scrollWidth > el.clientWidth + 1) {
      const table = el.closest('table');
      spills.push([name(el), table ? table.id : '', el.scrollWidth, el.clientWidth,
                   el.textContent.slice(0, 80)]);
    }
  }
  const scrolled = [...document.querySelectorAll('.scroll')]
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => [el.firstElementChild.id, el.scrollWidth, el.clientWidth]);
  const outside = [...document.querySelectorAll('img')].filter(img => {
    const box = img.getBoundingClientRect(), sec = img.closest('section').getBoundingClientRect();
    return box.width < 50 || box.left < sec.left || box.right > sec.right;
  }).map(img => img.alt);
  const heights = [...document.querySelectorAll('#inputs td.file')]
    .map(td => td.getBoundingClientRect().height);
  const doc = document.documentElement;
  const out = {spills, scrolled, outside, input_row_heights: heights,
               page: [doc.scrollWidth, doc.clientWidth, doc.scrollHeight]};
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def rendered(report: Report, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The page in Chromium at 1280 px: its DOM, a screenshot, the layout probe's findings."""
    assert report.done.returncode == 0, report.done.stderr
    work = tmp_path_factory.mktemp("chromium")
    shot = work / "report.png"
    probed = work / "probed.html"
    text = report.output.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    probed.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom, _, probe_dom = browsers(
        [
            (report.output, work / "p1", ["--dump-dom"]),
            (report.output, work / "p2", [f"--screenshot={shot}"]),
            (probed, work / "p3", ["--dump-dom"]),
        ]
    )
    assert "</html>" in dom
    probe = Page(probe_dom).by_id("probe")
    assert probe is not None, "the layout probe did not run"
    return Rendered(Page(dom), shot, json.loads(probe.text()))


# --- the run ---


def test_the_report_run_succeeds_with_one_line(report: Report, read: Read) -> None:
    assert report.done.returncode == 0, report.done.stderr
    assert report.done.stdout == ""
    assert report.done.stderr.splitlines() == [
        f"{report.output}: {len(read.rows):,} handshakes from {len(report.files):,} captures"
    ]
    assert report.output.read_bytes().startswith(b"<!DOCTYPE html>")
    # 8 captures, one of them QUIC; Chromium made 1 or 2 connections this run
    assert len(report.files) == 8 and 8 <= len(read.rows) <= 9


# --- what the browser shows, against `alpnsniff read` ---


@needs_chromium
def test_the_header_and_what_was_read(report: Report, read: Read, rendered: Rendered) -> None:
    page = rendered.page
    assert page.root.one("h1").text() == TITLE
    assert page.root.one("title").text() == TITLE
    transports = Counter(r["transport"] for r in read.rows)
    words = ", ".join(f"{t} {n}" for t, n in sorted(transports.items()))
    first = read.summary.split("\n")[0]
    assert first == (
        f"{len(report.files)} captures, {read.stats['packets']} packets, "
        f"{len(read.rows)} handshakes ({words})"
    )
    meta = page.root.one("div", "meta").text()
    for part in (f"{len(report.files)} captures", f"{read.stats['packets']} packets",
                 f"{len(read.rows)} handshakes", "1 key log"):  # fmt: skip
        assert f"· {part}" in meta, (part, meta)
    skips = skip_lines(read.summary)
    assert skips == [("non-ip", 2)]  # openssl_tls12_vlan.pcap's ARP request and reply
    assert page.tiles("read") == {
        "captures": str(len(report.files)),
        "packets": str(read.stats["packets"]),
        f"handshakes ({words})": str(len(read.rows)),
        "ClientHellos seen": str(len(read.hellos(include_ech=True))),
        "skipped (by reason below)": str(sum(n for _, n in skips)),
    }
    assert {k: v[1] for k, v in page.cells("skipped").items()} == {r: str(n) for r, n in skips}


@needs_chromium
def test_the_inputs_table(report: Report, read: Read, rendered: Rendered) -> None:
    page = rendered.page
    rows = page.table("inputs")
    assert [r.all("td")[0].text() for r in rows] == report.files  # whole names, in order
    handshakes = Counter(r["capture"] for r in read.rows)
    for row in rows:
        name, size, _mtime, packets, n_hs, skipped, errors = (td.text() for td in row.all("td"))
        # the whole name in a title too (a hover shows it), beside the wrapped text
        assert row.all("td")[0].one("span").attrs["title"] == name
        assert packets == str(read.packets[name])
        assert n_hs == str(handshakes[name])
        assert skipped == str(read.skipped[name])
        assert errors == ""
        low, high = shown_bytes(size)
        assert low <= os.stat(name).st_size <= high, (name, size)
    assert sum(read.packets.values()) == read.stats["packets"]
    assert [r.all("td")[0].text() for r in page.table("keylogs")] == [str(KEYLOG)]


def shown_bytes(text: str) -> tuple[float, float]:
    """The bounds of a size as the page writes it (``987 B``, ``8.1 kB``, ``1.2 MB``)."""
    number, unit = text.split()
    scale = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    value = float(number.replace(",", ""))
    if unit == "B":
        return value, value
    return (value - 0.05) * scale, (value + 0.05) * scale


@needs_chromium
def test_offered_and_selected(read: Read, rendered: Rendered) -> None:
    page = rendered.page
    left_out, counted, selected = read.offered(False), read.offered(True), read.selected()
    n_plain, n_all = len(read.hellos(False)), len(read.hellos(True))
    n_known = sum(selected.values())
    assert n_all > n_plain  # Chromium's ClientHellos carry (GREASE) ECH: two offer columns
    assert page.head("offered-table")[0] == [
        "", f"offered, ECH left out ({n_plain})", f"offered, ECH counted ({n_all})",
        f"selected ({n_known} known)", "",
    ]  # fmt: skip
    table = page.cells("offered-table")
    assert set(table) == set(left_out) | set(counted) | set(selected)
    for protocol, cells in table.items():
        expected = []
        for counts, base in ((left_out, n_plain), (counted, n_all), (selected, n_known)):
            expected += [pct(counts[protocol], base), str(counts[protocol])]
        assert cells[1:7] == expected, protocol
    # hand-counted: h2,http/1.1 from openssl TLS 1.2, its long-named copy, TLS 1.3, alert 120
    # and VLAN; spdy/3,http/1.1 from gnutls; h3 from aioquic: 7 ClientHellos without ECH
    assert n_plain == 7 and left_out == {"http/1.1": 6, "h2": 5, "h3": 1, "spdy/3": 1}
    # h2 visible (TLS 1.2, its copy, VLAN) and decrypted (TLS 1.3 + key log); http/1.1 gnutls
    assert selected == {"h2": 4, "http/1.1": 1}
    assert table["h2"][7] == "HTTP/2 over TLS"


@needs_chromium
def test_outcomes_and_versions(read: Read, rendered: Rendered) -> None:
    page = rendered.page
    outcomes = Counter(r["selection"] for r in read.rows)
    table = page.cells("outcomes-table")
    assert list(table) == list(SELECTIONS)
    for selection, cells in table.items():
        n = outcomes[selection]
        assert cells[2:4] == [str(n), pct(n, len(read.rows))], selection
    (line,) = [x for x in read.summary.split("\n") if x.startswith("selection: ")]
    said = dict(p.rsplit(" ", 1) for p in line.removeprefix("selection: ").split(", "))
    assert {k: int(v) for k, v in said.items()} == outcomes
    # hand-counted: visible (TLS 1.2, its copy, VLAN, gnutls), decrypted (TLS 1.3 + key log),
    # rejected (alert 120), encrypted (aioquic and Chromium's 1 or 2 connections, no key log)
    assert outcomes == {"visible": 4, "decrypted": 1, "rejected": 1,
                        "encrypted": len(read.rows) - 6}  # fmt: skip

    versions = Counter(r["tls_version"] or "(no ServerHello)" for r in read.rows)
    assert {k: v[1] for k, v in page.cells("tls-versions").items()} == {
        k: str(n) for k, n in versions.items()
    }
    known = [r for r in read.hellos(False) if r["selection"] in KNOWN and r["alpn_offered"]]
    first = sum(r["alpn_selected"] == r["alpn_offered"][0] for r in known)
    honoured = page.by_id("honoured")
    assert honoured is not None
    assert f"in {first} of {len(known)} handshakes" in honoured.text()


@needs_chromium
def test_ech_and_servers(read: Read, rendered: Rendered) -> None:
    page = rendered.page
    seen = read.hellos(include_ech=True)
    ech = [r for r in seen if r["ech"]]
    assert page.tiles("ech") == {
        "ClientHellos carrying ECH": str(len(ech)),
        f"of {len(seen)} ClientHellos seen": pct(len(ech), len(seen)),
    }
    by_sni = Counter(r["sni"] for r in ech)
    assert {k: v[1:3] for k, v in page.cells("ech-table").items()} == {
        sni: [str(n), pct(n, sum(r["sni"] == sni for r in seen))] for sni, n in by_sni.items()
    }
    check_matrix(page, "servers-table", read, "sni")


@needs_chromium
def test_per_capture(report: Report, read: Read, rendered: Rendered) -> None:
    check_matrix(rendered.page, "captures-table", read, "capture")
    # the base names tell the captures apart: they are shown, the whole name in the title
    shown = {r.all("td")[0].text(): r.all("td")[0].one("span").attrs["title"]
             for r in rendered.page.table("captures-table")}  # fmt: skip
    assert all(os.path.basename(str(full)) == base for base, full in shown.items())
    # the long name is on the page whole (its text, wrapped where the browser chose)
    assert LONG_NAME in shown


def check_matrix(page: Page, table_id: str, read: Read, by: str) -> None:
    """A per-value table (servers, captures): each value with counted ClientHellos, its
    handshakes, ClientHellos, known selections, encrypted ones and offer shares."""
    head = page.head(table_id)[1]
    protocols = head[5:]
    assert 1 <= len(protocols) <= 8
    rows = {r.all("td")[0].one("span").attrs["title"] if by == "capture"
            else r.all("td")[0].text(): [td.text() for td in r.all("td")]
            for r in page.table(table_id)}  # fmt: skip
    values = {r[by] for r in read.hellos(include_ech=False)}
    assert set(rows) == {v if v is not None else "(no SNI)" for v in values}
    for value in values:
        cells = rows[value if value is not None else "(no SNI)"]
        where = {by: value}
        hellos = read.hellos(False, where)
        offered = read.offered(False, where)
        selected = read.selected(where)
        handshakes = [r for r in read.rows if r[by] == value]
        assert cells[1:3] == [str(len(handshakes)), str(len(hellos))], value
        shown = dict(p.rsplit(" ", 1) for p in cells[3].split(", ")) if cells[3] else {}
        assert {k: int(v) for k, v in shown.items()} == selected, value
        assert cells[4] == str(sum(r["selection"] == "encrypted" for r in handshakes)), value
        for protocol, share in zip(protocols, cells[5:], strict=True):
            n = offered[protocol]
            assert share == (pct(n, len(hellos)) if n else "·"), (value, protocol)


# --- what the browser draws ---


@needs_chromium
def test_the_screenshot_is_a_picture_of_the_page(rendered: Rendered) -> None:
    import matplotlib.image
    import numpy as np

    data = rendered.screenshot.read_bytes()
    assert data.startswith(PNG) and len(data) > 100_000, len(data)
    pixels = matplotlib.image.imread(rendered.screenshot)
    assert pixels.shape[:2] == (4000, WIDTH)
    rgb = (pixels[..., :3] * 255).astype(np.uint32)
    colours = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]  # one number per pixel
    assert len(np.unique(colours)) > 500  # text, tables, pictures
    for band in range(4):  # the page is taller than the window: no blank stretch of 1000 px
        assert len(np.unique(colours[band * 1000 : (band + 1) * 1000])) > 50, band


@needs_chromium
def test_nothing_spills_at_1280_px(rendered: Rendered) -> None:
    layout = rendered.layout
    assert layout["spills"] == []
    assert layout["scrolled"] == []  # every table fits the width, none scrolls sideways
    assert layout["outside"] == []  # every picture drawn, inside its section
    width, viewport, height = layout["page"]
    assert width == viewport == WIDTH and height > 4000
    # the long name wraps (its row is taller than the others), the rest are one line each
    heights = layout["input_row_heights"]
    assert max(heights) > 1.5 * min(heights) and sorted(heights)[-2] == min(heights)


@needs_chromium
def test_the_page_fetches_nothing(report: Report, rendered: Rendered) -> None:
    nodes = list(rendered.page.root.iter())
    for node in nodes:
        assert node.tag not in ("script", "link", "iframe", "object", "embed", "base"), node.tag
        for name in ("src", "href", "srcset", "data", "action", "poster", "formaction"):
            value = node.attrs.get(name)
            if value is not None:
                assert value.startswith(("data:image/png;base64,", "#")), (node.tag, value[:80])
    text = report.output.read_text(encoding="utf-8")
    assert not re.search(r"https?://|@import|url\(", text, re.I)
    images = [n for n in nodes if n.tag == "img"]
    assert len(images) == 6  # offered, outcomes, preference, servers, timeline, captures
    for img in images:
        assert img.attrs.get("alt")
        src = str(img.attrs["src"])
        assert base64.b64decode(src.removeprefix("data:image/png;base64,")).startswith(PNG)


# --- refusals and failures (no browser needed) ---


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink", "hard link", "key log"])
def test_an_output_that_is_an_input_is_refused(tmp_path: Path, spelling: str) -> None:
    capture = tmp_path / "in.pcap"
    keylog = tmp_path / "in.keys"
    shutil.copyfile(CAPTURES / "openssl_tls13_h2.pcap", capture)
    shutil.copyfile(KEYLOG, keylog)
    output = {"same": capture, "dotted": tmp_path / "." / "in.pcap", "symlink": tmp_path / "l",
              "hard link": tmp_path / "h", "key log": keylog}[spelling]  # fmt: skip
    if spelling == "symlink":
        output.symlink_to(capture)
    if spelling == "hard link":
        os.link(capture, output)
    before = {p.name: (p.read_bytes(), p.lstat().st_mtime_ns) for p in tmp_path.iterdir()}
    done = alpnsniff("report", str(capture), "--keylog", str(keylog), "-o", str(output))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"alpnsniff: error: {output}: is an input "
        f"({keylog if spelling == 'key log' else capture}); refusing to overwrite it"
    ]
    after = {p.name: (p.read_bytes(), p.lstat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert after == before  # the input untouched, no file left beside it


@pytest.mark.parametrize("earlier", [False, True], ids=["no earlier report", "earlier report"])
@pytest.mark.parametrize("bad", ["not a capture", "missing"])
def test_a_failing_run_leaves_no_report(tmp_path: Path, bad: str, earlier: bool) -> None:
    good = tmp_path / "good.pcap"
    shutil.copyfile(CAPTURES / "openssl_tls12_h2.pcap", good)
    broken = tmp_path / "broken.pcap"
    if bad == "not a capture":
        broken.write_text("# notes, not a capture\n" * 50)
    output = tmp_path / "report.html"
    if earlier:
        output.write_text("<p>the report of yesterday</p>\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    done = alpnsniff("report", str(good), str(broken), "-o", str(output))  # good is read first
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"alpnsniff: error: {broken}: "), line
    # no report, no half-written one, no temporary file; an earlier report as it was
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_capture_cut_short_is_reported_and_exits_1(tmp_path: Path) -> None:
    # as `alpnsniff read`: the page is written with what was read, the first error line of
    # the capture is on stderr, and the exit status says an input ended early
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "openssl_tls12_h2.pcap").read_bytes()[:-30])
    output = tmp_path / "report.html"
    done = alpnsniff("report", str(cut), "-o", str(output))
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"alpnsniff: error: {cut}: last record (at offset 8041) cut short by the end of the "
        "file: 52 of 82 bytes",
        f"{output}: 1 handshake from 1 capture",
    ]
    assert "last record (at offset 8041) cut short" in output.read_text(encoding="utf-8")
