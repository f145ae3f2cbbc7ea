"""What can be captured: the network interfaces of this host (``alpnsniff interfaces``).

:func:`list_interfaces` gives one :class:`Interface` per interface of the process's network
namespace, in index order: its name, index, hardware type (``ARPHRD_*``) and the link type
of the frames a packet socket reads on it (the mapping of the ring,
:data:`alpnsniff.capture.ring._LINKTYPE_OF_ARPHRD`: Ethernet, loopback as Ethernet, raw IP
for tun/WireGuard; ``None`` for what the ring does not read), whether it is up, its MTU and
its IPv4/IPv6 addresses. :func:`format_table` makes the plain fixed-width table the CLI
prints.

Where it comes from: names and indexes from ``socket.if_nameindex()``; hardware type, flags,
MTU and operational state from ``/sys/class/net/NAME/`` (what ``ip link`` shows; sysfs is
the namespace's when mounted for it, as ``ip netns exec`` does); addresses from the kernel
over rtnetlink (an ``RTM_GETADDR`` dump: sysfs has none), parsed with bounds checked —
a message that does not add up ends the parse, the addresses read so far are kept. No
scapy: ``scapy.interfaces`` offers the same names and addresses, but importing scapy costs
about a second and it would still not know our link types.

A name is the kernel's bytes (decoded as the OS decodes file names: an odd byte becomes a
surrogate); the table escapes every byte outside printable ASCII as ``\\xNN``, so a name
cannot carry a terminal control sequence.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .ring import _LINKTYPE_OF_ARPHRD

SYS_CLASS_NET = Path("/sys/class/net")
IFF_UP = 0x1

# Hardware types by name (<linux/if_arp.h>), for the table; others show as their number.
ARPHRD_NAMES = {
    1: "ether",
    24: "ieee1394",
    32: "infiniband",
    280: "can",
    512: "ppp",
    768: "ipip",
    769: "ip6ip6",
    772: "loopback",
    776: "sit",
    778: "gre",
    783: "irda",
    801: "ieee80211",
    803: "ieee80211-radiotap",
    823: "ip6gre",
    65534: "none",
}
# Link types by their libpcap (DLT) name, for the table.
LINKTYPE_NAMES = {1: "EN10MB", 101: "RAW"}

# rtnetlink (<linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_addr.h>)
NETLINK_ROUTE = 0
RTM_NEWADDR = 20
RTM_GETADDR = 22
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
IFA_ADDRESS = 1
IFA_LOCAL = 2
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTATTR = struct.Struct("=HH")  # len, type
NETLINK_TIMEOUT_S = 2.0
MAX_DUMP_BYTES = 16 << 20  # a dump larger than this is cut (a host with 100,000 addresses)


@dataclass(frozen=True, slots=True, kw_only=True)
class Interface:
    """One network interface, as :func:`list_interfaces` found it."""

    name: str  # the kernel's name (odd bytes as surrogates, os.fsencode gives them back)
    index: int  # the interface index (if_nametoindex)
    hardware_type: int  # ARPHRD_* (/sys/class/net/NAME/type); -1: could not be read
    linktype: int | None  # LINKTYPE_* of its frames in the ring; None: not capturable by us
    up: bool  # administratively up (IFF_UP)
    operstate: str  # the kernel's operational state: up, down, unknown (loopback), ...
    mtu: int  # -1: could not be read
    addresses: tuple[str, ...]  # "10.0.0.1/24", "fe80::1/64": IPv4 first, then IPv6

    @property
    def capturable(self) -> bool:
        """Whether the ring (alpnsniff live) can capture on it: a link type it reads."""
        return self.linktype is not None


def _read_int(path: Path, base: int = 10) -> int:
    try:
        return int(path.read_text(encoding="ascii").strip(), base)
    except (OSError, ValueError):
        return -1


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def parse_addresses(data: bytes) -> tuple[dict[int, list[str]], bool]:
    """The addresses of an rtnetlink RTM_GETADDR dump's messages, by interface index, and
    whether the dump is complete (NLMSG_DONE seen). Bounds are checked: a message or an
    attribute that does not fit ends the parse (what was read before is kept)."""
    found: dict[int, list[str]] = {}
    at = 0
    while at + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, at)
        if length < _NLMSGHDR.size or at + length > len(data):
            return found, False
        if kind == NLMSG_DONE:
            return found, True
        if kind == NLMSG_ERROR:
            return found, False
        body = at + _NLMSGHDR.size
        end = at + length
        if kind == RTM_NEWADDR and body + _IFADDRMSG.size <= end:
            family, prefixlen, _f, _scope, index = _IFADDRMSG.unpack_from(data, body)
            local = address = b""
            attr = body + _IFADDRMSG.size
            while attr + _RTATTR.size <= end:
                alen, atype = _RTATTR.unpack_from(data, attr)
                if alen < _RTATTR.size or attr + alen > end:
                    break
                value = data[attr + _RTATTR.size : attr + alen]
                if atype == IFA_LOCAL:
                    local = value
                elif atype == IFA_ADDRESS:
                    address = value
                attr += (alen + 3) & ~3
            # IPv4: IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on
            # a point-to-point link); IPv6 has IFA_ADDRESS only
            raw = local or address
            text = ""
            if family == socket.AF_INET and len(raw) == 4:
                text = str(ipaddress.IPv4Address(raw))
            elif family == socket.AF_INET6 and len(raw) == 16:
                text = str(ipaddress.IPv6Address(raw))
            if text:
                found.setdefault(index, []).append(f"{text}/{prefixlen}")
        at += (length + 3) & ~3
    return found, False


def _addresses() -> dict[int, list[str]]:
    """Every address of the namespace by interface index ({} when rtnetlink says nothing)."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    except OSError:
        return {}
    with sock:
        sock.settimeout(NETLINK_TIMEOUT_S)
        request = _NLMSGHDR.pack(
            _NLMSGHDR.size + _IFADDRMSG.size, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0
        ) + _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        found: dict[int, list[str]] = {}
        try:
            sock.sendto(request, (0, 0))
            received = 0
            while received < MAX_DUMP_BYTES:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                received += len(chunk)
                part, done = parse_addresses(chunk)
                for index, addrs in part.items():
                    found.setdefault(index, []).extend(addrs)
                # a datagram holds whole messages: one without NLMSG_DONE is followed by
                # more, unless it held an error or a message that does not fit
                if done or _ends_badly(chunk):
                    break
        except OSError:
            pass
        return found


def _ends_badly(chunk: bytes) -> bool:
    """Whether a netlink datagram holds an error or a message that does not fit."""
    at = 0
    while at + _NLMSGHDR.size <= len(chunk):
        length, kind, *_ = _NLMSGHDR.unpack_from(chunk, at)
        if length < _NLMSGHDR.size or at + length > len(chunk) or kind == NLMSG_ERROR:
            return True
        at += (length + 3) & ~3
    return at < len(chunk)


def list_interfaces() -> list[Interface]:
    """The interfaces of this network namespace, in index order (see the module docstring).
    An interface that goes away while it is looked at is left out."""
    addresses = _addresses()
    out = []
    for index, name in sorted(socket.if_nameindex()):
        sys_dir = SYS_CLASS_NET / name
        if "/" in name or name in (".", "..") or not sys_dir.is_dir():
            continue
        hardware = _read_int(sys_dir / "type")
        flags = _read_int(sys_dir / "flags", 16)
        addrs = addresses.get(index, [])
        # IPv4 first (as `ip -brief addr`), each family in the kernel's order
        ordered = tuple(a for a in addrs if ":" not in a) + tuple(a for a in addrs if ":" in a)
        out.append(
            Interface(
                name=name,
                index=index,
                hardware_type=hardware,
                linktype=_LINKTYPE_OF_ARPHRD.get(hardware),
                up=flags >= 0 and bool(flags & IFF_UP),
                operstate=_read_text(sys_dir / "operstate") or "unknown",
                mtu=_read_int(sys_dir / "mtu"),
                addresses=ordered,
            )
        )
    return out


HEADERS = ("index", "name", "link type", "hardware", "state", "mtu", "capture", "addresses")


def _cells(iface: Interface, escape: Callable[[str], str]) -> tuple[str, ...]:
    name = escape(os.fsencode(iface.name).decode("latin-1"))
    linktype = (
        "-" if iface.linktype is None else LINKTYPE_NAMES.get(iface.linktype, str(iface.linktype))
    )
    hardware = ARPHRD_NAMES.get(iface.hardware_type, str(iface.hardware_type))
    state = ("up" if iface.up else "down") + (
        f" ({iface.operstate})" if iface.operstate not in ("up", "down") else ""
    )
    if iface.up and iface.operstate == "down":
        state = "up (no carrier)"
    return (
        str(iface.index),
        name,
        linktype,
        hardware,
        state,
        str(iface.mtu) if iface.mtu >= 0 else "-",
        "yes" if iface.capturable else "no",
        " ".join(iface.addresses) or "-",
    )


def format_table(interfaces: list[Interface]) -> list[str]:
    """The lines of a plain fixed-width table (a header, one line per interface), every
    column as wide as its widest cell, the last (addresses) unpadded; names escaped as the
    terminal table escapes text (every byte outside printable ASCII as ``\\xNN``)."""
    from ..sinks.table import safe_text  # (the terminal table's escape; imported when printing)

    rows = [HEADERS, *(_cells(i, safe_text) for i in interfaces)]
    widths = [max(len(row[c]) for row in rows) for c in range(len(HEADERS) - 1)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
