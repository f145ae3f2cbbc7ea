"""The live view: its counts agree with the summary's, its rates with the time passed in,
hostile wire text reaches the terminal escaped, memory stays bounded."""

from __future__ import annotations

import dataclasses
import io
import os
import random
import threading
from collections import Counter

import pytest

from alpnsniff.records import Handshake, Selection
from alpnsniff.sinks.live_view import LiveScreen, LiveView, TopCounter, console
from alpnsniff.sinks.summary import Summary

Records = list[tuple[str, Handshake]]


def _text(view: LiveView, now_s: float, *, width: int = 160, terminal: bool = False) -> str:
    buf = io.StringIO()
    c = console(buf, width=width)
    if terminal:  # as on a terminal: colours and styles as escape sequences
        c = type(c)(
            file=buf, width=width, force_terminal=True, color_system="truecolor", markup=False
        )
    c.print(view.render(now_s))
    return buf.getvalue()


def _view(records: Records, start_s: float = 100.0) -> LiveView:
    view = LiveView(start_s, label="veth0")
    for _, h in records:
        view.add(h)
    return view


def test_counts_agree_with_the_summary(real_records: Records) -> None:
    view = _view(real_records)
    summary = Summary()  # (it counts an answer without a ClientHello as "no ALPN")
    offers = Summary()
    for _, h in real_records:
        summary.add(h)
        if h.alpn_offered_raw is not None:
            offers.add(h)
    assert view.handshakes == summary.handshakes == len(real_records)
    assert view.offers_seen == offers.handshakes
    assert view.offers_unseen == len(real_records) - offers.handshakes
    assert dict(view.offered.counts) == dict(offers.offered_plain + offers.offered_ech)
    assert dict(view.selected.counts) == dict(summary.selected)
    assert view.selection == summary.selection
    assert dict(view.sni.counts) == dict(Counter(h.sni for _, h in real_records))
    # few distinct values: every count exact
    assert not any(view.offered.errors.values()) and not any(view.sni.errors.values())


def test_frame_shows_the_counts(real_records: Records) -> None:
    view = _view(real_records)
    n = len(real_records)
    text = _text(view, 102.0)
    assert f"handshakes {n}" in text
    assert "veth0" in text and "0:00:02 elapsed" in text
    visible = sum(h.selection is Selection.VISIBLE for _, h in real_records)
    assert f"{100 * visible / n:.2f}%" in text
    seen = [h for _, h in real_records if h.alpn_offered_raw is not None]
    h2 = sum(b"h2" in (h.alpn_offered_raw or ()) for h in seen)
    assert f"offered ({len(seen)} ClientHellos)" in text
    assert f"{100 * h2 / len(seen):.2f}%" in text and "HTTP/2 over TLS" in text
    assert "www.example.test" in text
    assert "kernel:" not in text and "upstream loss" not in text  # no such counts yet


def test_rates_follow_the_time_passed_in(real_records: Records) -> None:
    view = _view(real_records, start_s=100.0)
    n = len(real_records)
    assert view.due(100.0)  # nothing drawn yet
    text = _text(view, 102.0)
    assert f"{n / 2:,.1f}/s last second" in text and f"{n / 2:,.1f}/s average" in text
    assert not view.due(102.5) and view.due(103.0)
    text = _text(view, 103.0)  # no record in that second
    assert "0.0/s last second" in text and f"{n / 3:,.1f}/s average" in text
    for _, h in real_records[:10]:
        view.add(h)
    text = _text(view, 105.0)
    assert "5.0/s last second" in text and f"{(n + 10) / 5:,.1f}/s average" in text


def test_kernel_and_upstream_loss(real_records: Records) -> None:
    view = _view(real_records)
    view.update({"packets": 12_345, "kernel_packets": 13_000, "kernel_drops": 13})
    text = _text(view, 101.0)
    assert "12,345 packets" in text
    assert "kernel: 13,000 packets, 13 dropped (0.10%)" in text
    assert "upstream loss" not in text
    view.update({"loss_acks": 2_000, "loss_gaps": 7})
    text = _text(view, 102.0)
    assert "upstream loss (estimated): 0.35%" in text and "7 of 2,000 ACKs" in text
    assert "kernel: 13,000 packets" in text  # the counts not given again keep their value


HOSTILE_SNI = "\x1b[31mEVIL[bold]x\n:smile:\x07"  # (fits the column: 34 escaped)
HOSTILE_ALPN = (b"\x1b[2Jwipe", b"[red]h2[/red]")


def test_hostile_wire_text_is_escaped(real_records: Records) -> None:
    _, h = real_records[0]
    # (a record's sni is escaped text already; this one is not, as if that ever failed)
    evil = dataclasses.replace(
        h,
        sni=HOSTILE_SNI,
        alpn_offered_raw=HOSTILE_ALPN,
        alpn_selected_raw=HOSTILE_ALPN[0],
        selection=Selection.VISIBLE,
    )
    view = LiveView(0.0, label="eth0\x1b]0;title\x07\r", top=3)
    for _ in range(5):  # at the top of every list
        view.add(evil)
    for terminal in (False, True):
        text = _text(view, 1.0, width=200, terminal=terminal)
        for raw in ("\x1b[31m", "\x1b[2J", "\x1b]0;", "\x07", "\r"):
            assert raw not in text
        assert "\\x1b[31mEVIL[bold]x\\x0a:smile:\\x07" in text
        assert "\\x1b[2Jwipe" in text and "[red]h2[/red]" in text  # markup shown as it is
        assert "eth0\\x1b]0;title\\x07\\x0d" in text
        assert "😄" not in text
        sni_lines = [line for line in text.splitlines() if "EVIL" in line]
        assert len(sni_lines) == 1  # the newline did not break the row


def test_top_counter_is_bounded_and_keeps_heavy_hitters() -> None:
    rng = random.Random(7)
    counter: TopCounter[str | None] = TopCounter(100)
    truth: Counter[str | None] = Counter()
    heavy = [f"heavy{i}.example" for i in range(5)] + [None]
    for i in range(30_000):
        key: str | None = (
            heavy[rng.randrange(len(heavy))] if i % 4 == 0 else f"scan-{rng.getrandbits(40):x}"
        )
        counter.add(key)
        truth[key] += 1
    assert len(counter) == 100 and counter.total == 30_000
    bound = counter.total / counter.capacity
    for key, count in counter.counts.items():
        error = counter.errors[key]
        assert count - error <= truth[key] <= count  # Space-Saving's guarantee
        assert error <= bound
    for key, n in truth.items():  # every key seen more than total/capacity times is kept
        if n > bound:
            assert key in counter.counts
    top = [k for k, _, _ in counter.top(6)]
    assert set(top) == set(heavy)


def test_many_server_names_stay_bounded(real_records: Records) -> None:
    _, h = real_records[0]
    view = LiveView(0.0, sni_capacity=50)
    for i in range(2_000):
        view.add(dataclasses.replace(h, sni=f"host{i}.scan.example"))
    view.add(h)
    assert len(view.sni) == 50
    text = _text(view, 10.0)
    assert "~" in text and "an estimate" in text


def test_screen_on_a_stream_that_is_no_terminal(real_records: Records) -> None:
    view = _view(real_records[:5], start_s=0.0)
    out = io.StringIO()
    screen = LiveScreen(view, out)
    assert not screen.is_terminal
    screen.start(0.0)
    assert screen.refresh(1.0) and not screen.refresh(1.5)
    for _, h in real_records[5:]:
        view.add(h)
    screen.stop(2.0)
    text = out.getvalue()
    assert text.count("alpnsniff live") == 1  # the last frame, once
    assert f"handshakes {len(real_records)}" in text
    screen.stop(3.0)  # twice: nothing more
    assert out.getvalue() == text


def test_screen_on_a_terminal_redraws_and_leaves_the_last_frame(real_records: Records) -> None:
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stream = os.fdopen(slave, "w", encoding="utf-8")
    try:
        view = _view(real_records[:3], start_s=0.0)
        screen = LiveScreen(view, stream)
        assert screen.is_terminal
        screen.start(0.0)
        for t in range(1, 4):
            for _, h in real_records[3 * t : 3 * t + 3]:
                view.add(h)
            assert screen.refresh(float(t))
        screen.stop(4.0)
        stream.flush()
    finally:
        stream.close()
        reader.join(timeout=5)
        os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert text.count("alpnsniff live") == 5  # the first frame, three redraws, the last
    assert "\x1b[2K" in text  # drawn over in place
    tail = text[text.rindex("alpnsniff live") :]
    assert "handshakes 12" in tail and "0:00:04 elapsed" in tail


def test_answer_without_a_client_hello(real_records: Records) -> None:
    """A one-sided capture's record (server side only: no offer seen) is not counted as
    an offer of no ALPN; its selection is."""
    _, h = next((c, h) for c, h in real_records if h.selection is Selection.VISIBLE)
    view = LiveView(0.0)
    view.add(h)
    view.add(dataclasses.replace(h, alpn_offered_raw=None))
    assert view.offers_seen == 1 and view.offers_unseen == 1
    assert None not in view.offered.counts
    assert h.alpn_selected_raw is not None
    assert view.selected.counts == {h.alpn_selected_raw: 2}
    text = _text(view, 1.0)
    assert "offered (1 ClientHellos)" in text
    assert "+ 1 answer without a ClientHello (one-sided capture)" in text


def test_refuses_a_counter_of_nothing() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TopCounter(0)
