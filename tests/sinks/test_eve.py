"""The EVE writer against Suricata's schema and real captures, read back with jq."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from dataclasses import replace
from typing import Any

import pytest

import alpnsniff
from alpnsniff.records import Handshake, Selection
from alpnsniff.sinks.eve import EveWriter, eve_event, eve_ip, quic_version, tls_version
from alpnsniff.sinks.rows import row
from tests.conftest import CAPTURES

# Suricata's EVE schema, the part these events touch, transcribed: the types of the top-level
# properties and of ``tls``, ``quic`` and a ``quic.extensions`` item, from Suricata 8's
# generated reference (OISF/suricata doc/userguide/_generated/eve-index.rst and quic.rst,
# commit 2cce6dcc, generated from etc/schema.json); the timestamp pattern from etc/schema.json
# (commit 0d3cfbbe). Every object there is ``"additionalProperties": false``, the top level
# too: a property not listed is not Suricata's.
TOP_LEVEL: dict[str, type | tuple[type, ...]] = {
    "timestamp": str,
    "flow_id": int,
    "pcap_cnt": int,
    "event_type": str,
    "src_ip": str,
    "src_port": int,
    "dest_ip": str,
    "dest_port": int,
    "proto": str,
    "community_id": str,
    "app_proto": str,
    "pkt_src": str,
    "tx_id": int,
    "tls": dict,
    "quic": dict,
}
TLS: dict[str, type | tuple[type, ...]] = {
    "client": dict,
    "client_alpns": list,
    "server_alpns": list,
    "fingerprint": str,
    "from_proto": str,
    "issuerdn": str,
    "subjectaltname": list,
    "notafter": str,
    "notbefore": str,
    "serial": str,
    "session_resumed": bool,
    "sni": str,
    "subject": str,
    "version": str,
    "ja3": dict,
    "ja3s": dict,
    "ja4": str,
}
QUIC: dict[str, type | tuple[type, ...]] = {
    "cyu": list,
    "extensions": list,
    "ja3": dict,
    "ja3s": dict,
    "ja4": str,
    "sni": str,
    "ua": str,
    "version": str,
}
QUIC_EXTENSION: dict[str, type | tuple[type, ...]] = {"name": str, "type": int, "values": list}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+[+\-]\d+$")
# The one key that is alpnsniff's, not Suricata's (sinks/eve.py says why).
OURS = "alpnsniff"


def check_object(obj: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    unknown = set(obj) - set(schema)
    assert not unknown, f"{where}: not in Suricata's schema: {sorted(unknown)}"
    for key, value in obj.items():
        assert isinstance(value, schema[key]), (where, key, value)
        assert schema[key] is bool or not isinstance(value, bool), (where, key)


def check_event(event: dict[str, Any]) -> None:
    """What a validator with Suricata's schema checks, but for the ``alpnsniff`` key."""
    assert set(event[OURS]) == {"selection", "alpn_selected", "capture", "frame"}
    check_object({k: v for k, v in event.items() if k != OURS}, TOP_LEVEL, "event")
    assert TIMESTAMP.match(event["timestamp"]), event["timestamp"]
    assert event["event_type"] in ("tls", "quic")
    assert {"tls", "quic"} & set(event) == {event["event_type"]}
    assert event["proto"] == ("UDP" if event["event_type"] == "quic" else "TCP")
    if "tls" in event:
        check_object(event["tls"], TLS, "tls")
        for key in ("client_alpns", "server_alpns"):
            assert all(isinstance(p, str) and p for p in event["tls"].get(key, ["x"])), key
    if "quic" in event:
        check_object(event["quic"], QUIC, "quic")
        for ext in event["quic"].get("extensions", []):
            check_object(ext, QUIC_EXTENSION, "quic.extensions")
            assert "type" in ext and all(isinstance(v, str) for v in ext.get("values", []))


def events(paths: list[str], keylog: list[str] | None = None) -> list[dict[str, Any]]:
    out = io.StringIO()
    writer = EveWriter(out)
    for result in alpnsniff.analyze([CAPTURES / p for p in paths], keylog=keylog):
        for h in result.handshakes:
            writer.write(row(h, result.name))
    writer.close()
    lines = out.getvalue().splitlines()
    assert all(line and "\n" not in line for line in lines)
    return [json.loads(line) for line in lines]


def test_every_event_of_the_captures_fits_suricatas_schema(
    real_records: list[tuple[str, Handshake]],
) -> None:
    got = [eve_event(row(h, capture)) for capture, h in real_records]
    for event in got:
        check_event(event)
    assert {e["event_type"] for e in got} == {"tls", "quic"}
    # flow_id, pcap_cnt (Suricata's own packet), tx_id: never guessed
    assert not {"flow_id", "pcap_cnt", "tx_id", "pkt_src", "app_proto"} & set().union(*got)


def test_tls12_h2_as_tshark_shows_it() -> None:
    # captures/openssl_tls12_h2.pcap, tshark: frame 4 at 1795308872.086361, 127.0.0.1:45872 ->
    # 127.0.0.1:4431, SNI www.example.test, ALPN h2,http/1.1; frame 6, the ServerHello:
    # version 0x0303, ALPN h2; tshark's tls.handshake.ja3 / ja3_full of frame 4 as below
    (event,) = events(["openssl_tls12_h2.pcap"])
    assert event == {
        "timestamp": "2026-11-22T00:54:32.086361+0000",
        "event_type": "tls",
        "src_ip": "127.0.0.1",
        "src_port": 45872,
        "dest_ip": "127.0.0.1",
        "dest_port": 4431,
        "proto": "TCP",
        "community_id": event["community_id"],  # (test_community_id checks the value)
        "tls": {
            "sni": "www.example.test",
            "version": "TLS 1.2",
            "ja3": {
                "hash": "5a1edc7f170af1014fc65c994878e63c",
                "string": "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-"
                "49188-49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-"
                "47-255,0-11-10-35-16-22-23-13-43-45-51,29-23-30-25-24-256-257-258-259-260,0-1-2",
            },
            "ja4": event["tls"]["ja4"],  # (tests/tls/test_fingerprint.py checks JA4)
            "client_alpns": ["h2", "http/1.1"],
            "server_alpns": ["h2"],
        },
        "alpnsniff": {
            "selection": "visible",
            "alpn_selected": "h2",
            "capture": str(CAPTURES / "openssl_tls12_h2.pcap"),
            "frame": 4,
        },
    }
    assert list(event)[:8] == [  # Suricata's order (CreateEveHeader)
        "timestamp",
        "event_type",
        "src_ip",
        "src_port",
        "dest_ip",
        "dest_port",
        "proto",
        "community_id",
    ]


def test_quic_over_ipv6_as_suricata_writes_it() -> None:
    # captures/openssl_aioquic_ipv6.pcap, frame 22: a QUIC v1 Initial from [fd00:99::2]:51015
    # to [fd00:99::1]:4433, SNI quic.example.test, ALPN h3; tshark's
    # tls.handshake.extension.type of that ClientHello: 51, 43, 13, 10, 0, 16, 57; its
    # tls.handshake.ja3 121f6e4f22ee3205214b0676ed64b9e2 (no point formats: the last field empty)
    tcp, quic = events(["openssl_aioquic_ipv6.pcap"])
    assert tcp["src_ip"] == "fd00:0099:0000:0000:0000:0000:0000:0002"
    assert tcp["dest_ip"] == "fd00:0099:0000:0000:0000:0000:0000:0001"
    assert quic["event_type"] == "quic" and quic["proto"] == "UDP"
    assert (quic["src_port"], quic["dest_port"]) == (51015, 4433)
    assert quic["quic"] == {
        "version": "1",
        "sni": "quic.example.test",
        "ja3": {
            "hash": "121f6e4f22ee3205214b0676ed64b9e2",
            "string": "771,4866-4865-4867,51-43-13-10-0-16-57,23-24-29-30,",
        },
        "ja4": quic["quic"]["ja4"],
        "extensions": [
            {"name": "key_share", "type": 51},
            {"name": "supported_versions", "type": 43},
            {"name": "signature_algorithms", "type": 13},
            {"name": "supported_groups", "type": 10},
            {"name": "server_name", "type": 0, "values": ["quic.example.test"]},
            {"name": "alpn", "type": 16, "values": ["h3"]},
            {"name": "quic_transport_parameters", "type": 57},
        ],
    }
    assert quic["alpnsniff"]["frame"] == 22 and quic["alpnsniff"]["selection"] == "encrypted"


def test_quic_v2_and_the_decrypted_choice() -> None:
    # aioquic_h3_v2.pcap: version 0x6b3343cf (RFC 9369); aioquic_h3_v1.pcap with its key log:
    # the server's h3, decrypted (Suricata has no quic field for it: alpnsniff's key)
    (v2,) = events(["aioquic_h3_v2.pcap"])
    assert v2["quic"]["version"] == "6b3343cf"
    (v1,) = events(["aioquic_h3_v1.pcap"], keylog=[str(CAPTURES / "aioquic_h3_v1.keys")])
    assert v1["quic"]["version"] == "1"
    assert v1["alpnsniff"]["selection"] == "decrypted" and v1["alpnsniff"]["alpn_selected"] == "h3"


def test_tls13_server_alpns_only_when_known() -> None:
    # nginx_curl_h2_tls13.pcap: TLS 1.3, the choice encrypted; with its key log: h2
    (hidden,) = events(["nginx_curl_h2_tls13.pcap"])
    assert hidden["tls"]["version"] == "TLS 1.3" and "server_alpns" not in hidden["tls"]
    (shown,) = events(
        ["nginx_curl_h2_tls13.pcap"], keylog=[str(CAPTURES / "nginx_curl_h2_tls13.keys")]
    )
    assert shown["tls"]["server_alpns"] == ["h2"]


def test_no_serverhello_no_alpn() -> None:
    # openssl_tls12_alert120.pcap: alert 120 instead of a ServerHello; nginx_curl_noalpn.pcap:
    # a ClientHello without ALPN (tshark: no tls.handshake.extensions_alpn_str)
    (refused,) = events(["openssl_tls12_alert120.pcap"])
    assert refused["tls"]["version"] == "UNDETERMINED"
    assert refused["alpnsniff"]["selection"] == "rejected"
    (plain,) = events(["nginx_curl_noalpn.pcap"])
    assert "client_alpns" not in plain["tls"] and "server_alpns" not in plain["tls"]


def test_wire_text_stays_escaped_and_empty_ids_are_left_out() -> None:
    (result,) = alpnsniff.analyze(CAPTURES / "openssl_tls12_h2.pcap")
    odd = replace(
        result.handshakes[0],
        sni='x"\\\n',  # (records hold the escaped text already: this is what is written)
        alpn_offered_raw=(b"h2", b"", b"a b\x00\xff", b'"'),
        alpn_selected_raw=b"",
    )
    line_out = io.StringIO()
    EveWriter(line_out).write(row(odd, "odd.pcap"))
    line = line_out.getvalue()
    assert line.isascii() and line.count("\n") == 1
    event = json.loads(line)
    check_event(event)
    assert event["tls"]["client_alpns"] == ["h2", "a\\x20b\\x00\\xff", '"']
    assert "server_alpns" not in event["tls"]  # an empty selected ID: Suricata writes none


def test_one_sided_and_synthetic_versions() -> None:
    (result,) = alpnsniff.analyze(CAPTURES / "openssl_tls12_h2.pcap")
    h = result.handshakes[0]
    server_only = replace(
        h, sni=None, alpn_offered_raw=None, extensions=None, ja3=None, ja3_hash=None, ja4=None
    )
    event = eve_event(row(server_only, "x"))
    check_event(event)
    assert event["tls"] == {"version": "TLS 1.2", "server_alpns": ["h2"]}
    # a STARTTLS start: Suricata's tls.from_proto
    smtp = eve_event(row(replace(server_only, upgraded_from="smtp"), "x"))
    check_event(smtp)
    assert smtp["tls"]["from_proto"] == "smtp"
    quic = replace(h, transport="quic", quic_version="draft-29", selection=Selection.ENCRYPTED)
    assert eve_event(row(quic, "x"))["quic"]["version"] == "ff00001d"


@pytest.mark.parametrize(
    ("ours", "suricatas"),
    [
        ("1.3", "TLS 1.3"),
        ("1.2", "TLS 1.2"),
        ("1.1", "TLS 1.1"),
        ("1.0", "TLSv1"),
        ("ssl3", "SSLv3"),
        ("ssl2", "SSLv2"),
        ("1.3-draft28", "TLS 1.3 draft-28"),
        ("1.3-draft16", "TLS 1.3 draft-16"),
        ("1.3-draft5", "TLS 1.3 draft-<16"),
        ("1.3-draft29", "0x7f1d"),
        ("1.3-fb23", "TLS 1.3 draft-23-fb"),
        ("1.3-fb24", "0xfb18"),
        ("dtls1.2", "0xfefd"),
        ("0x0305", "0x0305"),
        (None, "UNDETERMINED"),
    ],
)
def test_tls_version_spellings(ours: str | None, suricatas: str) -> None:
    # Suricata's SCTlsVersion::as_str (rust/src/tls_version.rs) and SSLVersionToString
    assert tls_version(ours) == suricatas


@pytest.mark.parametrize(
    ("ours", "suricatas"),
    [("1", "1"), ("2", "6b3343cf"), ("draft-29", "ff00001d"), ("T051", "54303531")],
)
def test_quic_version_spellings(ours: str, suricatas: str) -> None:
    # Suricata: format!("{:x}", version) (rust/src/quic/parser.rs, From<QuicVersion>)
    assert quic_version(ours) == suricatas
    assert quic_version("0x1a2a3a4a") == "1a2a3a4a"


def test_ipv6_is_written_with_every_group() -> None:
    assert eve_ip("2001:db8::1") == "2001:0db8:0000:0000:0000:0000:0000:0001"
    assert eve_ip("::ffff:192.0.2.1") == "0000:0000:0000:0000:0000:ffff:c000:0201"
    assert eve_ip("192.0.2.1") == "192.0.2.1"


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_jq_reads_the_events_as_an_eve_user_would() -> None:
    out = io.StringIO()
    writer = EveWriter(out)
    for result in alpnsniff.analyze(
        [CAPTURES / "openssl_tls12_h2.pcap", CAPTURES / "openssl_aioquic_ipv6.pcap"]
    ):
        for h in result.handshakes:
            writer.write(row(h, result.name))
    text = out.getvalue()

    def jq(program: str) -> list[str]:
        done = subprocess.run(
            ["jq", "-c", program], input=text, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    assert jq('select(.event_type=="tls") | [.tls.sni, .tls.client_alpns]') == [
        '["www.example.test",["h2","http/1.1"]]',
        '["www.example.test",["h2","http/1.1"]]',
    ]
    assert jq(
        'select(.event_type=="quic") | [.quic.version, '
        "(.quic.extensions[] | select(.type==16) | .values)]"
    ) == ['["1",["h3"]]']
    assert jq("[.community_id, .proto] | @tsv")[0].startswith('"1:')
