"""One-sided captures (an asymmetric span port): the server's side alone gives each visible
selection as a row without an offer; the client's side alone gives the offers, unseen.

The one-direction copies are made here (tests/flows/one_sided.py) from real captures:
captures/ (openssl, nginx, curl, gnutls, chromium, aioquic) and the public corpus
(../shared/corpus/pcaps: nDPI, Zeek, Suricata, mercury, …), the side of each frame decided
by the full capture's own records.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from alpnsniff.pipeline import analyze_file
from alpnsniff.records import COLUMN_TABLE, Handshake, Selection
from alpnsniff.sinks.frame import to_dataframe
from alpnsniff.sinks.rows import row
from alpnsniff.sinks.summary import Summary
from tests.flows.one_sided import write_one_side

REPO = Path(__file__).resolve().parents[2]
CAPTURES = sorted((REPO / "captures").glob("*.pcap*"))
CORPUS = REPO.parent / "shared" / "corpus" / "pcaps"
# the ClientHello's columns: None in a row of the server's side alone
CLIENT_COLUMNS = ("sni", "alpn_offered", "alpn_offered_hex", "client_version", "ech", "npn",
                  "alps", "extensions", "grease", "sslv2", "ech_config_id", "ech_payload_len")  # fmt: skip
# the server's columns: as in the full capture's row
SERVER_COLUMNS = ("alpn_selected", "selection", "tls_version", "cipher_suite", "server_frame",
                  "alert", "npn_server", "transport")  # fmt: skip


def _ends(h: Handshake) -> tuple[str, int, str, int]:
    return (h.client_ip, h.client_port, h.server_ip, h.server_port)


def _corpus() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is absent (../shared is only beside the repo in CI and dev)")
    return sorted(CORPUS.iterdir())


def _server_only_tally(paths: list[Path], tmp_path: Path) -> Counter[str]:
    """Every visible TCP selection of the full captures, looked for in the server-only
    copies: same endpoints, same server frame, same selection, no offer."""
    tally: Counter[str] = Counter()
    for path in paths:
        full = analyze_file(path)
        visible = [
            h for h in full.handshakes
            if h.selection is Selection.VISIBLE and h.transport == "tcp"
            and h.alpn_offered_raw is not None
        ]  # fmt: skip
        if not visible:
            continue
        copy = tmp_path / f"{path.name}.server.pcapng"
        write_one_side(path, copy, full.handshakes, "server")
        got = analyze_file(copy)
        rows = {(_ends(h), h.alpn_selected_raw): h for h in got.handshakes}
        tally["visible"] += len(visible)
        for h in visible:
            found = rows.get((_ends(h), h.alpn_selected_raw))
            if found is None:
                tally["missing"] += 1
                continue
            assert found.selection is Selection.VISIBLE, (path.name, found)
            assert found.alpn_offered_raw is None and found.sni is None, (path.name, found)
            full_row, one_row = row(h, "x"), row(found, "x")
            for name in CLIENT_COLUMNS:
                assert one_row[name] is None, (path.name, name, one_row[name])
            for name in SERVER_COLUMNS:
                if name != "server_frame":  # (the copy has fewer frames)
                    assert one_row[name] == full_row[name], (path.name, name)
            tally["found"] += 1
        assert got.stats["tcp_server_hello_without_client_hello"] == sum(
            1 for h in got.handshakes if h.alpn_offered_raw is None and h.transport == "tcp"
        )
    return tally


def test_server_side_alone_gives_every_visible_selection_of_captures(tmp_path: Path) -> None:
    tally = _server_only_tally(CAPTURES, tmp_path)
    assert tally["visible"] >= 10 and tally["found"] == tally["visible"], tally


def test_server_side_alone_gives_every_visible_selection_of_the_corpus(tmp_path: Path) -> None:
    tally = _server_only_tally(_corpus(), tmp_path)
    # 132 visible selections over TCP in the corpus (0 came out of these copies before)
    assert tally["visible"] >= 130 and tally["found"] == tally["visible"], tally


def test_client_side_alone_gives_every_offer_unseen(tmp_path: Path) -> None:
    for path in CAPTURES:
        full = analyze_file(path)
        tcp = [
            h for h in full.handshakes if h.transport == "tcp" and h.alpn_offered_raw is not None
        ]
        if not tcp:
            continue
        copy = tmp_path / f"{path.name}.client.pcapng"
        write_one_side(path, copy, full.handshakes, "client")
        got = {(_ends(h), h.frame): h for h in analyze_file(copy).handshakes}
        for h in tcp:
            # the frame numbers of the copy differ: match by endpoints and offer
            same = [g for (e, _), g in got.items() if e == _ends(h) and g.sni == h.sni
                    and g.alpn_offered_raw == h.alpn_offered_raw]  # fmt: skip
            assert same, (path.name, h)
            assert all(g.selection is Selection.UNSEEN for g in same), (path.name, same)


def test_tls13_server_side_alone_is_encrypted_and_keys_cannot_help(tmp_path: Path) -> None:
    path = REPO / "captures" / "nginx_curl_h2_tls13.pcap"
    full = analyze_file(path)
    copy = tmp_path / "tls13.server.pcapng"
    write_one_side(path, copy, full.handshakes, "server")
    from alpnsniff.keys.keylog import KeyLog

    keylog = (
        KeyLog.from_paths([path.with_suffix(".keys")]) if hasattr(KeyLog, "from_paths") else None
    )
    got = analyze_file(copy, keylog=keylog)
    assert [h.selection for h in got.handshakes] == [Selection.ENCRYPTED]
    assert got.handshakes[0].alpn_offered_raw is None
    assert got.stats["tcp_server_only_encrypted"] == 1
    # the key log is looked up by the client random, which only the ClientHello carries
    assert got.stats["tcp_server_only_keylog_unusable"] == 1


def test_null_offer_in_the_dataframe_and_summary(tmp_path: Path) -> None:
    path = REPO / "captures" / "openssl_tls12_h2.pcap"
    full = analyze_file(path)
    copy = tmp_path / "server.pcapng"
    write_one_side(path, copy, full.handshakes, "server")
    mixed = [("one", h) for h in analyze_file(copy).handshakes] + [
        ("two", h) for h in full.handshakes
    ]
    df = to_dataframe(mixed)
    assert df["alpn_offered"][0] is None and df["alpn_offered"][1] == ["h2", "http/1.1"]
    assert df["ech"].isna()[0] and not df["ech"].isna()[1]
    assert df["client_version"].isna()[0]
    nullable = {c.name for c in COLUMN_TABLE if c.nullable}
    assert set(CLIENT_COLUMNS) <= nullable
    summary = Summary()
    for _, h in mixed:
        summary.add(h)
    lines = summary.lines(Counter({"packets": 1}), captures=2)
    assert any(x.startswith("no offer: 1 row without a ClientHello") for x in lines), lines
    # the offer shares are over the one ClientHello seen
    assert "offered (share of 1 ClientHello):" in lines, lines
