"""The community_id column: Community ID v1, seed 0, against the spec's own vectors and the
``communityid`` package (corelight/pycommunityid, the spec's reference implementation)."""

from __future__ import annotations

from dataclasses import replace

import pytest

import alpnsniff
from alpnsniff.records import COLUMN_TABLE, DERIVE_FIELDS, Column, Derive, Handshake, Kind
from alpnsniff.sinks.frame import columns, to_dataframe
from alpnsniff.sinks.rows import community_id, row
from tests.conftest import CAPTURES

communityid = pytest.importorskip("communityid")

_REFERENCE = communityid.CommunityID(seed=0)


def reference(h: Handshake) -> str:
    """The package's value for a record's 5-tuple (TCP for tcp, UDP for quic and dtls)."""
    make = (
        communityid.FlowTuple.make_tcp if h.transport == "tcp" else communityid.FlowTuple.make_udp
    )
    return str(_REFERENCE.calc(make(h.client_ip, h.server_ip, h.client_port, h.server_port)))


# corelight/community-id-spec, baseline/baseline_deflt.json (commit c4ec2bc4, seed 0): the
# TCP, UDP and IPv6 entries; each flow appears in both directions with the same ID.
SPEC_VECTORS = [
    ("128.232.110.120", 34855, "66.35.250.204", 80, "tcp", "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    ("66.35.250.204", 80, "128.232.110.120", 34855, "tcp", "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    ("192.168.1.52", 54585, "8.8.8.8", 53, "quic", "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    ("8.8.8.8", 53, "192.168.1.52", 54585, "quic", "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        63943,
        "2607:f8b0:400c:c03::1a",
        25,
        "tcp",
        "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
    ),
    (
        "2607:f8b0:400c:c03::1a",
        25,
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        63943,
        "tcp",
        "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
    ),
]


@pytest.mark.parametrize(("cip", "cport", "sip", "sport", "transport", "expected"), SPEC_VECTORS)
def test_the_specs_own_vectors(
    cip: str, cport: int, sip: str, sport: int, transport: str, expected: str
) -> None:
    assert community_id(cip, cport, sip, sport, transport) == expected


def test_equal_ends_are_ordered_by_port_and_dtls_hashes_as_udp() -> None:
    # the same address at both ends: the smaller port first, whichever end is the client
    a = community_id("10.0.0.1", 5000, "10.0.0.1", 443, "tcp")
    assert a == community_id("10.0.0.1", 443, "10.0.0.1", 5000, "tcp")
    make = communityid.FlowTuple.make_tcp
    assert a == _REFERENCE.calc(make("10.0.0.1", "10.0.0.1", 5000, 443))
    udp = communityid.FlowTuple.make_udp("10.0.0.1", "10.0.0.2", 5000, 4433)
    assert community_id("10.0.0.1", 5000, "10.0.0.2", 4433, "dtls") == _REFERENCE.calc(udp)
    assert community_id("10.0.0.1", 5000, "10.0.0.2", 4433, "tcp") != _REFERENCE.calc(udp)


def test_every_record_of_the_captures_equals_the_package(
    real_records: list[tuple[str, Handshake]],
) -> None:
    rows = [row(h, capture) for capture, h in real_records]
    assert [r["community_id"] for r in rows] == [reference(h) for _, h in real_records]
    # the column form (DataFrame, Parquet) gives the same
    assert columns(real_records)["community_id"] == [r["community_id"] for r in rows]
    # the captures hold what must be covered: IPv4 and IPv6, TCP and QUIC
    kinds = {(h.ip_version, h.transport) for _, h in real_records}
    assert {(4, "tcp"), (6, "tcp"), (4, "quic"), (6, "quic")} <= kinds


def test_the_ipv6_capture_by_hand() -> None:
    # captures/openssl_aioquic_ipv6.pcap: `tshark -T fields -e ipv6.src -e tcp.srcport
    # -e udp.srcport -Y tls.handshake.type==1` gives fd00:99::2 port 45560 (TCP, to
    # fd00:99::1 4431) and 51015 (UDP, to 4433)
    (result,) = alpnsniff.analyze(CAPTURES / "openssl_aioquic_ipv6.pcap")
    got = [(h.client_ip, h.client_port, h.server_port, h.transport) for h in result.handshakes]
    assert got == [("fd00:99::2", 45560, 4431, "tcp"), ("fd00:99::2", 51015, 4433, "quic")]
    ids = [row(h, result.name)["community_id"] for h in result.handshakes]
    tcp = communityid.FlowTuple.make_tcp("fd00:99::2", "fd00:99::1", 45560, 4431)
    udp = communityid.FlowTuple.make_udp("fd00:99::2", "fd00:99::1", 51015, 4433)
    assert ids == [_REFERENCE.calc(tcp), _REFERENCE.calc(udp)]


def test_the_column_in_the_table_and_the_dataframe(
    real_records: list[tuple[str, Handshake]],
) -> None:
    names = [c.name for c in COLUMN_TABLE]
    assert names.index("community_id") == names.index("capture") + 1
    (column,) = [c for c in COLUMN_TABLE if c.name == "community_id"]
    assert column.source == column.fields == DERIVE_FIELDS[Derive.COMMUNITY_ID]
    assert column.kind is Kind.STR and not column.nullable and not column.wire_text
    df = to_dataframe(real_records[:5])
    assert str(df["community_id"].dtype) == "string"
    assert list(df["community_id"]) == [reference(h) for _, h in real_records[:5]]


def test_a_swapped_record_keeps_its_id(real_records: list[tuple[str, Handshake]]) -> None:
    _, h = real_records[0]
    swapped = replace(
        h,
        client_ip=h.server_ip,
        client_port=h.server_port,
        server_ip=h.client_ip,
        server_port=h.client_port,
    )
    assert row(swapped, "x")["community_id"] == row(h, "x")["community_id"]


FIVE = ("client_ip", "client_port", "server_ip", "server_port", "transport")


@pytest.mark.parametrize(
    ("derive", "source", "message"),
    [
        (Derive.COMMUNITY_ID, "client_ip", "reads the fields"),
        (Derive.COMMUNITY_ID, FIVE[::-1], "reads the fields"),
        (Derive.COMMUNITY_ID, None, "source field"),
        (Derive.FIELD, ("client_ip",), "one source field"),
        (Derive.TEXT, ("sni", "alpn_selected_raw"), "one source field"),
    ],
)
def test_a_source_that_does_not_fit_its_derivation_is_refused(
    derive: Derive, source: str | tuple[str, ...] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Column("x", Kind.STR, derive, source, meaning="x", wire_text=True)


def test_a_community_id_column_cannot_be_another_kind() -> None:
    with pytest.raises(ValueError, match="cannot give"):
        Column("x", Kind.INT, Derive.COMMUNITY_ID, FIVE, meaning="x", bits=64)


def test_an_unknown_transport_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="no IP protocol"):
        community_id("10.0.0.1", 1, "10.0.0.2", 2, "sctp")
