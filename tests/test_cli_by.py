"""``alpnsniff read --by COLUMN --top N``: the summary's shares per group, through the
installed command, its numbers counted by hand from tshark's view of five real captures:

    tshark -r F -Y 'tls.handshake.type==1 || tls.handshake.type==2' -T fields \\
        -e tls.handshake.extensions_server_name -e tls.handshake.extensions_alpn_str

    nginx_curl_h2_tls12   ClientHello www.example.test  h2,http/1.1   ServerHello h2
    nginx_curl_noalpn     ClientHello www.example.test  (no ALPN)     ServerHello (none)
    openssl_tls12_h2      ClientHello www.example.test  h2,http/1.1   ServerHello h2
    pyssl_tls12_http11    ClientHello localhost         h2,http/1.1   ServerHello http/1.1
    aioquic_h3_v1         ClientHello quic.example.test h3            (QUIC: encrypted)

By sni: www.example.test 3 ClientHellos (h2 2 = 66.7%, http/1.1 2 = 66.7%, no ALPN 1 =
33.3%) and 2 selections (h2 2 = 100%); localhost 1 (h2 100%, http/1.1 100%), 1 selection
(http/1.1); quic.example.test 1 (h3 100%), no selection known.
"""

from __future__ import annotations

import pytest

from tests.test_cli_outputs import CAPTURES, cli

FIVE = [
    str(CAPTURES / n)
    for n in (
        "nginx_curl_h2_tls12.pcap",
        "nginx_curl_noalpn.pcap",
        "openssl_tls12_h2.pcap",
        "pyssl_tls12_http11.pcap",
        "aioquic_h3_v1.pcap",
    )
]


def _section(text: str, head: str) -> list[str]:
    """The lines of the section whose first line starts with ``head``, split in words."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(head))
    out = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        out.append(line)
    return out


def test_by_sni_counts_each_group_as_counted_by_hand() -> None:
    proc = cli(*FIVE, "--by", "sni")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    offered = _section(out, "offered by sni")
    assert offered[0] == "offered by sni (3 values by ClientHellos; ECH left out: 0):"
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in offered[2:]}
    assert rows == {
        "www.example.test": ["3", "h2 66.7%, http/1.1 66.7%, (no ALPN) 33.3%"],
        "localhost": ["1", "h2 100.0%, http/1.1 100.0%"],
        "quic.example.test": ["1", "h3 100.0%"],
    }
    # the first group is the one with the most ClientHellos
    assert offered[2].split()[0] == "www.example.test"
    selected = _section(out, "selected by sni")
    assert selected[0] == "selected by sni (2 values by selections):"
    assert [line.split(None, 2) for line in selected[2:]] == [
        ["www.example.test", "2", "h2 100.0%"],
        ["localhost", "1", "http/1.1 100.0%"],
    ]


def test_top_sums_the_groups_left_out() -> None:
    proc = cli(*FIVE, "--by", "capture", "--top", "2")
    assert proc.returncode == 0, proc.stderr.decode()
    offered = _section(proc.stdout.decode(), "offered by capture")
    assert (
        offered[0] == "offered by capture (the top 2 of 5 values by ClientHellos; ECH left out: 0):"
    )
    assert len(offered) == 2 + 2 + 1  # title, header, two groups, the rest
    assert offered[-1].split() == ["…", "3", "more", "3"]


def test_by_goes_with_the_summary_on_stderr_for_row_formats() -> None:
    proc = cli(*FIVE, "--by", "server_port", "-T", "ndjson")
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 5  # the rows
    # ports 8445, 8443, 4431 (twice), 4433
    assert "offered by server_port (4 values" in proc.stderr.decode()


@pytest.mark.parametrize("column", ["alpn_offered", "ts", "nosuch"])
def test_by_refuses_a_column_of_no_single_value(column: str) -> None:
    proc = cli(*FIVE, "--by", column)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.startswith(f"alpnsniff: error: --by {column}: not a column of one value per row")
    assert "sni" in err and proc.stdout == b""
