"""What can be captured (alpnsniff.capture.interfaces), in a network namespace of our own:
loopback at index 1 with the ring's loopback link type, a veth made there with its MTU and
addresses, interface names holding a terminal escape and a byte that is not UTF-8, printed
escaped; and the rtnetlink parser on cut and broken dumps."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator

import pytest

from alpnsniff.capture.interfaces import (
    HEADERS,
    IFA_ADDRESS,
    IFA_LOCAL,
    NLMSG_DONE,
    RTM_NEWADDR,
    Interface,
    format_table,
    list_interfaces,
    parse_addresses,
)
from alpnsniff.capture.ring import LINKTYPE_ETHERNET
from tests.conftest import subprocess_env
from tests.netns_lab import empty_namespace

LIST = r"""
import dataclasses, json, os
from alpnsniff.capture.interfaces import format_table, list_interfaces
found = list_interfaces()
print(json.dumps({"interfaces": [dict(dataclasses.asdict(i), name=os.fsencode(i.name).hex(),
                                      capturable=i.capturable) for i in found],
                  "table": format_table(found)}))
"""
ODD_A = b"v\x1b[1mx"  # an escape sequence (bold) in a name
ODD_B = b"p\xffq"  # a byte that is not UTF-8


def ip(*args: str | bytes) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespace() -> Iterator[str]:
    with empty_namespace("aif") as ns:
        yield ns


def test_the_interfaces_of_a_namespace(namespace: str) -> None:
    ns = namespace
    ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", ns, "link", "add", "cap0", "type", "veth", "peer", "name", "cap1")
    ip("-n", ns, "link", "set", "cap0", "mtu", "1432", "up")
    ip("-n", ns, "addr", "add", "10.78.0.1/24", "dev", "cap0")
    ip("-n", ns, "addr", "add", "fd00:78::1/64", "dev", "cap0", "nodad")
    ip("-n", ns, "link", "add", ODD_A, "type", "veth", "peer", "name", ODD_B)
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", LIST],
        capture_output=True, text=True, timeout=60, env=subprocess_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    found = {bytes.fromhex(i["name"]): i for i in out["interfaces"]}
    assert set(found) == {b"lo", b"cap0", b"cap1", ODD_A, ODD_B}
    lo = found[b"lo"]
    assert lo["index"] == 1 and lo["hardware_type"] == 772  # ARPHRD_LOOPBACK
    assert lo["linktype"] == LINKTYPE_ETHERNET and lo["capturable"]  # as the ring reads it
    assert lo["up"] and lo["mtu"] == 65536
    assert lo["addresses"] == ["127.0.0.1/8", "::1/128"]
    cap0, cap1 = found[b"cap0"], found[b"cap1"]
    assert cap0["mtu"] == 1432 and cap1["mtu"] == 1500
    assert cap0["up"] and not cap1["up"] and cap1["operstate"] == "down"
    assert cap0["hardware_type"] == 1 and cap0["capturable"]
    # IPv4 first; the IPv6 link-local address comes once the link is up, after ours
    assert cap0["addresses"][:2] == ["10.78.0.1/24", "fd00:78::1/64"]
    assert cap1["addresses"] == []
    # the index order, every index once
    indexes = [i["index"] for i in out["interfaces"]]
    assert indexes == sorted(set(indexes))
    # the table: a header, a line per interface, the odd names escaped
    table = out["table"]
    assert table[0].split() == ["index", "name", "link", "type", "hardware", "state", "mtu",
                                "capture", "addresses"]  # fmt: skip
    assert len(table) == 1 + len(found)
    text = "\n".join(table)
    assert text.isascii() and "\x1b" not in text
    assert "v\\x1b[1mx" in text and "p\\xffq" in text
    line = next(row for row in table if " cap0 " in row)
    header = table[0]
    cells = {}
    for column, nxt in zip(HEADERS, (*HEADERS[1:], None), strict=True):
        begin = header.index(column)
        cells[column] = line[begin : header.index(nxt) if nxt else None].strip()
    # (its peer is down: the kernel says lowerlayerdown)
    assert cells == {"index": str(cap0["index"]), "name": "cap0", "link type": "EN10MB",
                     "hardware": "ether", "state": "up (lowerlayerdown)", "mtu": "1432",
                     "capture": "yes", "addresses": " ".join(cap0["addresses"])}  # fmt: skip
    # fixed width: every column starts at the same place on every line
    start = table[0].index("mtu")
    assert all(row[start - 2 : start] == "  " for row in table)


def test_this_namespace_has_loopback() -> None:
    found = list_interfaces()
    lo = next(i for i in found if i.name == "lo")
    assert lo.hardware_type == 772 and lo.linktype == LINKTYPE_ETHERNET
    assert lo.index == socket.if_nametoindex("lo")


def _message(kind: int, body: bytes) -> bytes:
    data = struct.pack("=IHHII", 16 + len(body), kind, 2, 1, 0) + body
    return data + b"\0" * (-len(data) % 4)


def _attr(kind: int, value: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(value), kind) + value
    return data + b"\0" * (-len(data) % 4)


def _addr(family: int, prefix: int, index: int, *attrs: bytes) -> bytes:
    return _message(
        RTM_NEWADDR, struct.pack("=BBBBI", family, prefix, 0, 0, index) + b"".join(attrs)
    )


def test_the_netlink_parser_on_cut_and_broken_dumps() -> None:
    # hand-built messages: this is malformed input
    v4 = _addr(socket.AF_INET, 24, 7, _attr(IFA_ADDRESS, bytes([10, 0, 0, 9])),
               _attr(IFA_LOCAL, bytes([10, 0, 0, 1])))  # fmt: skip
    v6 = _addr(socket.AF_INET6, 64, 7, _attr(IFA_ADDRESS, bytes.fromhex("fd00" + "00" * 13 + "01")))
    done = _message(NLMSG_DONE, b"\0\0\0\0")
    whole = v4 + v6 + done
    # the interface's own address (IFA_LOCAL), not the peer's
    assert parse_addresses(whole) == ({7: ["10.0.0.1/24", "fd00::1/64"]}, True)
    # cut anywhere: what was whole before the cut, never an exception
    for cut in range(len(whole)):
        found, complete = parse_addresses(whole[:cut])
        assert not complete
        assert found in ({}, {7: ["10.0.0.1/24"]}, {7: ["10.0.0.1/24", "fd00::1/64"]})
    # a length that points past the end, or below the header: the parse stops there
    broken = bytearray(v6)
    broken[0:4] = struct.pack("=I", 4000)
    assert parse_addresses(v4 + bytes(broken) + done) == ({7: ["10.0.0.1/24"]}, False)
    broken[0:4] = struct.pack("=I", 3)
    assert parse_addresses(v4 + bytes(broken) + done) == ({7: ["10.0.0.1/24"]}, False)
    # an attribute too long for its message is left, as is an address of the wrong size
    bad_attr = _addr(socket.AF_INET, 8, 3, struct.pack("=HH", 400, IFA_LOCAL) + b"\1\2\3\4")
    wrong = _addr(socket.AF_INET, 8, 3, _attr(IFA_LOCAL, b"\1\2\3"))
    assert parse_addresses(bad_attr + wrong + v4 + done) == ({7: ["10.0.0.1/24"]}, True)


def test_the_table_of_nothing_and_of_what_cannot_be_read() -> None:
    assert format_table([]) == ["index  name  link type  hardware  state  mtu  capture  addresses"]
    odd = Interface(name="can0", index=9, hardware_type=280, linktype=None, up=False,
                    operstate="down", mtu=-1, addresses=())  # fmt: skip
    assert not odd.capturable
    assert format_table([odd])[1].split() == ["9", "can0", "-", "can", "down", "-", "no", "-"]
