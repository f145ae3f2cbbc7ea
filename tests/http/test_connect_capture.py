"""HTTP CONNECT with RFC 7639's ALPN header through a real proxy (tinyproxy 1.11.1 from
Debian, captures/tinyproxy_connect_alpn.pcap; how it was made: captures/README.md), read as a
user reads it, and compared with tshark.

The seven connections, as tshark shows them (``-Y 'http.request.method == "CONNECT"' -e
http.request.line``, ``-Y http.response.code``, ``-Y tls.handshake.type==1``)::

    stream CONNECT  target          ALPN header line(s)           status   ClientHello offer
    0      4        127.0.0.1:8443  "h2, http%2F1.1"              6: 200   8: h2,http/1.1
    1      20       127.0.0.1:8443  "h%32, http%2f1.1"            22: 200  24: h2,http/1.1
    2      36       127.0.0.1:8443  "h2" and "http%2F1.1"         38: 200  40: h2,http/1.1
    3      52       127.0.0.1:8443  (none)                        54: 200  56: h2,http/1.1
    4      71       127.0.0.1:8443  "h2"                          73: 200  75: http/1.1
    5      87       127.0.0.1:9999  "h2"                          93: 403  (refused: no TLS)
    6      99       127.0.0.1:8443  (none: curl -x)               101: 200 103: h2,http/1.1

Stream 5's 403 head is in frame 89 (its body in 91, the proxy's FIN in 93): tshark shows the
response at frame 93, once the body ended with the connection; alpnsniff takes the status
from the head's segment, 89 (see test_the_status_and_target_agree_with_tshark).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import alpnsniff
from tests.conftest import CAPTURES, subprocess_env

CAPTURE = CAPTURES / "tinyproxy_connect_alpn.pcap"
SQUID = CAPTURES / "squid_connect_auth.pcap"
KEYS = CAPTURES / "tinyproxy_connect_alpn.keys"
TARGET = "127.0.0.1:8443"

# frame: (offer, connect_alpn, header, canonical, status, agrees, selection with the key log)
EXPECTED = {
    8: (["h2", "http/1.1"], ["h2", "http/1.1"], "h2,\\x20http%2F1.1", True, 200, True, "h2"),
    24: (["h2", "http/1.1"], ["h2", "http/1.1"], "h%32,\\x20http%2f1.1", False, 200, True, "h2"),
    # two header lines, combined as RFC 9110 §5.3 combines them
    40: (["h2", "http/1.1"], ["h2", "http/1.1"], "h2,\\x20http%2F1.1", True, 200, True, "h2"),
    56: (["h2", "http/1.1"], None, None, None, 200, None, "h2"),
    75: (["http/1.1"], ["h2"], "h2", True, 200, False, "http/1.1"),
    103: (["h2", "http/1.1"], None, None, None, 200, None, "h2"),
}


def test_every_connect_gives_its_facts_to_its_row() -> None:
    df = alpnsniff.read(CAPTURE, keylog=KEYS)
    assert list(df["frame"]) == [8, 24, 40, 56, 75, 87, 103]  # frame order, refusal included
    for r in df.itertuples(index=False):
        if r.frame == 87:
            continue
        offer, declared, header, canonical, status, agrees, chosen = EXPECTED[r.frame]
        assert r.connect_target == TARGET
        assert r.alpn_offered == offer
        assert r.connect_alpn == declared, r.frame
        assert (None if r.connect_alpn_header is pd_na() else r.connect_alpn_header) == header
        assert _opt(r.connect_alpn_canonical) == canonical, r.frame
        assert r.connect_status == status
        assert _opt(r.connect_alpn_agrees) == agrees, r.frame
        assert (r.selection, r.alpn_selected) == ("decrypted", chosen)
    # the refused CONNECT: a row of its own, without a ClientHello
    refused = df[df["frame"] == 87].iloc[0]
    assert refused["connect_target"] == "127.0.0.1:9999"
    assert refused["connect_status"] == 403 and refused["server_frame"] == 89
    assert list(refused["connect_alpn"]) == ["h2"] and bool(refused["connect_alpn_canonical"])
    assert refused["alpn_offered"] is None and refused["selection"] == "unseen"
    assert _opt(refused["connect_alpn_agrees"]) is None  # no ClientHello to agree with
    assert list(refused["notes"]) == ["connect-refused"]
    stats = df.attrs["stats"]
    assert stats["tcp_connect_requests"] == 7 and stats["tcp_connect_refused"] == 1
    assert stats["tcp_client_hellos"] == 6
    assert "tcp_still_probing_at_end" not in stats  # the refused connection is done


def test_without_a_key_log_the_connect_facts_are_the_same() -> None:
    # the CONNECT is clear text: only the server's TLS 1.3 choice needs the key log
    df = alpnsniff.read(CAPTURE)
    assert list(df["selection"]) == ["encrypted"] * 5 + ["unseen", "encrypted"]
    assert list(df["connect_status"]) == [200, 200, 200, 200, 200, 403, 200]
    agrees = [_opt(v) for v in df["connect_alpn_agrees"]]
    assert agrees == [True, True, True, None, False, None, None]


def test_the_command_writes_the_connect_columns(tmp_path: Path) -> None:
    exe = shutil.which("alpnsniff")
    assert exe is not None, "the alpnsniff command is not installed"
    out = tmp_path / "rows.ndjson"
    done = subprocess.run(
        [exe, "read", str(CAPTURE), "-T", "ndjson", "-o", str(out), "-q"],
        capture_output=True, timeout=60, env=subprocess_env(),
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["connect_alpn_header"] for r in rows] == [
        "h2,\\x20http%2F1.1", "h%32,\\x20http%2f1.1", "h2,\\x20http%2F1.1", None, "h2", "h2", None,
    ]  # fmt: skip
    assert [r["connect_alpn_canonical"] for r in rows] == [True, False, True, None, True, True, None]
    csv = tmp_path / "rows.csv"
    done = subprocess.run(
        [exe, "read", str(CAPTURE), "-T", "csv", "-o", str(csv), "-q"],
        capture_output=True, timeout=60, env=subprocess_env(),
    )  # fmt: skip
    assert done.returncode == 0
    header = csv.read_text().splitlines()[0].split(",")
    assert [c for c in header if c.startswith("connect_")] == [
        "connect_target", "connect_alpn", "connect_alpn_header", "connect_alpn_canonical",
        "connect_status", "connect_alpn_agrees",
    ]  # fmt: skip


@pytest.mark.tshark
def test_the_status_and_target_agree_with_tshark() -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")

    def fields(display: str, *names: str) -> list[list[str]]:
        done = subprocess.run(
            ["tshark", "-r", str(CAPTURE), "-Y", display, "-T", "fields", "-E", "separator=|",
             "-E", "aggregator=^",
             *[a for n in names for a in ("-e", n)]],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return [line.split("|") for line in done.stdout.splitlines()]

    requests = fields('http.request.method == "CONNECT"', "tcp.stream", "http.request.uri",
                      "http.request.line")  # fmt: skip
    responses = {s: int(code) for s, code in fields("http.response.code", "tcp.stream",
                                                     "http.response.code")}  # fmt: skip
    df = alpnsniff.read(CAPTURE)
    assert len(requests) == len(df) == 7
    for (stream, uri, lines), row in zip(requests, df.itertuples(index=False), strict=True):
        assert row.connect_target == uri
        assert row.connect_status == responses[stream]
        # tshark shows each ALPN line as a request line, undecoded; alpnsniff joins them
        values = [ln.split(": ", 1)[1].removesuffix("\\r\\n") for ln in lines.split("^")
                  if ln.lower().startswith("alpn:")]  # fmt: skip
        header = row.connect_alpn_header
        if values:
            assert header.replace("\\x20", " ") == ", ".join(values)
        else:
            assert header is pd_na()
    # the refusal's frame differs, both right: tshark dissects the response once its body
    # ended (frame 93, the proxy's FIN), alpnsniff reads the status line where it arrived (89)
    (frame,) = fields("http.response.code == 403", "frame.number")[0]
    assert int(frame) == 93
    assert int(df[df["connect_status"] == 403]["server_frame"].iloc[0]) == 89


def pd_na() -> object:
    import pandas as pd

    return pd.NA


def _opt(value: object) -> object:
    """A nullable boolean cell as None / True / False."""
    import pandas as pd

    return None if value is pd.NA or value is None else bool(value)


def test_the_summary_says_what_the_connects_declared() -> None:
    exe = shutil.which("alpnsniff")
    assert exe is not None, "the alpnsniff command is not installed"
    done = subprocess.run(
        [exe, "read", str(CAPTURE)], capture_output=True, text=True, timeout=60,
        env=subprocess_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # 7 CONNECTs, 1 refused; a header on 5 (streams 0, 1, 2, 4, 5), stream 1's not canonical;
    # 4 with a header and a ClientHello, of which stream 4's declares h2 but offers http/1.1
    assert lines[1] == (
        "HTTP CONNECT: 7 requests before TLS (1 refused by the proxy: a row without a "
        "ClientHello); an ALPN header (RFC 7639) on 5, 1 not in canonical form; the declared "
        "list is the ClientHello's offer on 3 of 4"
    )
    # the refused row is neither a one-sided capture's row nor a ClientHello
    assert not any(line.startswith("no offer:") for line in lines)
    assert "ECH: carried by none of the 6 ClientHellos" in lines


def test_a_407_then_credentials_on_the_same_connection() -> None:
    # squid_connect_auth.pcap (squid 5.7, Basic auth), one TCP connection (tcp.stream 0):
    # CONNECT 4 without credentials -> 407 in 6 (keep-alive), CONNECT 8 with
    # Proxy-Authorization -> 200 in 9, ClientHello 10 h2,http/1.1, EncryptedExtensions h2
    df = alpnsniff.read(SQUID, keylog=SQUID.with_suffix(".keys"))
    assert list(df["frame"]) == [4, 10]
    refused, tls = df.iloc[0], df.iloc[1]
    assert (refused["connect_status"], refused["server_frame"]) == (407, 6)
    assert list(refused["notes"]) == ["connect-refused"] and refused["alpn_offered"] is None
    assert tls["connect_status"] == 200 and list(tls["connect_alpn"]) == ["h2", "http/1.1"]
    assert _opt(tls["connect_alpn_agrees"]) is True
    assert (tls["selection"], tls["alpn_selected"]) == ("decrypted", "h2")
    assert refused["community_id"] == tls["community_id"]  # the same connection
    assert df.attrs["stats"]["tcp_connect_requests"] == 2
    assert df.attrs["stats"]["tcp_connect_refused"] == 1
