"""The terminal table: which columns, fitting a width, unambiguous lists, no markup."""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess
from typing import Any

import pytest

from alpnsniff.pipeline import analyze_file
from alpnsniff.records import Handshake, Selection
from alpnsniff.sinks.table import print_table
from alpnsniff.tls.alpn import alpn_text
from tests.conftest import CAPTURES

TCP = CAPTURES / "openssl_tls12_h2.pcap"
QUIC = CAPTURES / "aioquic_h3_v1.pcap"


def _items(*paths: object) -> list[tuple[str, Handshake]]:
    return [(str(p), h) for p in paths for h in analyze_file(str(p)).handshakes]


def _render(items: list[tuple[str, Handshake]], width: int | None = None) -> list[str]:
    out = io.StringIO()
    if width is None:
        print_table(items, out)  # a file: no width
    else:
        print_table(items, out, width=width)
    return out.getvalue().splitlines()


def _one(**changes: Any) -> list[tuple[str, Handshake]]:
    (capture, h), *_ = _items(TCP)
    return [(capture, dataclasses.replace(h, **changes))]


def test_rows_from_two_captures_name_their_capture_and_transport() -> None:
    lines = _render(_items(TCP, QUIC))
    assert lines[0].split() == [
        "frame",
        "capture",
        "transport",
        "client",
        "server",
        "sni",
        "offered",
        "selected",
        "selection",
        "tls",
    ]
    assert len(lines) == 3  # the header, one row per handshake, no legend: nothing was cut
    tcp, quic = lines[1].split(), lines[2].split()
    assert tcp[1:3] == ["openssl_tls12_h2.pcap", "tcp"]  # the base name, not the path
    assert quic[1:3] == ["aioquic_h3_v1.pcap", "quic"]
    assert "www.example.test" in tcp and "visible" in tcp
    assert "quic.example.test" in quic and "encrypted" in quic


def test_one_capture_shows_no_capture_column() -> None:
    lines = _render(_items(TCP))
    assert "capture" not in lines[0].split() and "transport" in lines[0].split()
    assert TCP.name not in lines[1]


def test_same_base_name_in_two_folders_shows_the_names_given() -> None:
    (_, h), *_ = _items(TCP)
    lines = _render([("a/x.pcap", h), ("b/x.pcap", h)])
    assert lines[1].split()[1] == "a/x.pcap" and lines[2].split()[1] == "b/x.pcap"


def _long_rows() -> list[tuple[str, Handshake]]:
    """Both real captures plus rows whose free text is far too long for 80 columns."""
    items = _items(TCP, QUIC)
    capture, tcp = items[0]
    _, quic = items[1]
    long_sni = "r28---sn-262670.video.really-long-subdomain.example"
    offers = (b"h2", b"http/1.1", b"spdy/3.1", b"h2c", b"acme-tls/1")
    return [
        *items,
        (capture, dataclasses.replace(tcp, sni=long_sni, alpn_offered_raw=offers)),
        (capture, dataclasses.replace(quic, sni=long_sni, selection=Selection.NOT_OFFERED)),
    ]


@pytest.mark.parametrize("width", [80, 100, 120])
def test_a_width_is_fitted_by_cutting_free_text_never_by_wrapping(width: int) -> None:
    items = _long_rows()
    lines = _render(items, width=width)
    assert len(lines) == len(items) + 2  # header, rows, the legend: no row broken over lines
    assert all(len(line) <= width for line in lines)
    assert lines[-1].startswith("… cut to fit") and f"{width} columns" in lines[-1]
    for line, (_, h) in zip(lines[1:-1], items, strict=True):
        words = line.split()
        assert h.selection.value in words and words[-1] == h.tls_version  # never cut
        assert line.lstrip().startswith(f"{h.frame}  ")
    assert "encry" not in "\n".join(lines).replace("encrypted", "")
    assert any("…" in line for line in lines[1:-1])


def test_without_a_width_a_file_gets_full_rows() -> None:
    items = _long_rows()
    lines = _render(items)
    assert len(lines) == len(items) + 1 and not any("…" in line for line in lines)
    assert "h2 http/1.1 spdy/3.1 h2c acme-tls/1" in lines[3]
    assert max(map(len, lines)) > 120


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_its_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # shutil.get_terminal_size reads it first
    out = _Terminal()
    print_table(_long_rows(), out)
    text = out.getvalue()
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80 and "80 columns" in lines[-1]
    assert "encry" not in text.replace("encrypted", "")
    assert all(" " <= ch <= "~" or ch == "…" for ch in "".join(lines))  # no styling codes


def test_one_id_with_a_comma_prints_apart_from_two_ids() -> None:
    one = _render(_one(alpn_offered_raw=(b"h2,http/1.1",)))
    two = _render(_one(alpn_offered_raw=(b"h2", b"http/1.1")))
    assert one[1] != two[1]
    assert " h2,http/1.1 " in one[1] and " h2 http/1.1 " in two[1]


def test_wire_text_prints_escaped_never_as_markup_or_escape_codes() -> None:
    sni = alpn_text(b"\x1b[31m[bold]x")
    assert sni == "\\x1b[31m[bold]x"
    lines = _render(_one(sni=sni, alpn_selected_raw=b"[red]\x1b]0;t\x07"))
    assert "\\x1b[31m[bold]x" in lines[1].split()
    assert "[red]\\x1b]0;t\\x07" in lines[1].split()
    assert all(" " <= ch <= "~" for ch in "".join(lines))  # printable ASCII only


def test_a_capture_name_with_control_characters_prints_escaped() -> None:
    (_, h), *_ = _items(TCP)
    lines = _render([("evil\x1b[2J.pcap", h), ("b.pcap", h)])
    assert lines[1].split()[1] == "evil\\x1b[2J.pcap"
    assert "\x1b" not in "".join(lines)


def test_no_rows_prints_the_header() -> None:
    assert _render([]) == [
        "frame  transport  client  server  sni  offered  selected  selection  tls"
    ]


def test_cli_table_of_two_captures() -> None:
    exe = shutil.which("alpnsniff")
    if exe is None:
        pytest.skip("the alpnsniff command is not installed")
    proc = subprocess.run(
        [exe, "read", str(TCP), str(QUIC), "--format", "table", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3  # not a terminal: full rows, no legend
    header, tcp, quic = (line.split() for line in lines)
    assert header[:3] == ["frame", "capture", "transport"]
    assert tcp == [
        "4",
        "openssl_tls12_h2.pcap",
        "tcp",
        "127.0.0.1:45872",
        "127.0.0.1:4431",
        "www.example.test",
        "h2",
        "http/1.1",
        "h2",
        "visible",
        "1.2",
    ]
    assert quic[1:3] == ["aioquic_h3_v1.pcap", "quic"]
    assert quic[-4:] == ["quic.example.test", "h3", "encrypted", "1.3"]
