"""Record filters: which handshake records to keep (``--host``, ``--port``, ``--sni``,
``--alpn``). Pure: no I/O.

A :class:`RecordFilter` keeps a record when it matches any value of each kind given (OR
within one kind) and every kind given (AND across kinds); one with no criterion keeps all.

* ``hosts``: IPv4 / IPv6 addresses or CIDR prefixes (``10.0.0.1``, ``10.0.0.0/8``,
  ``2001:db8::/32``), matched against the client's and the server's address. A prefix with
  host bits set (``10.1.2.3/8``) is refused, as tcpdump's ``net`` refuses it.
* ``ports``: 1-65535, the client's or the server's port.
* ``sni_globs``: :mod:`fnmatch` globs (``*``, ``?``, ``[seq]``, ``[!seq]``), case-insensitive,
  on the record's escaped ``sni``; a record without SNI matches no glob.
* ``alpns``: the escaped text of an ALPN ID as alpnsniff prints it (``h2``, ``http/1.1``,
  ``a\\x20b``), matched exactly against every ID the client offered and the server's choice.

The values are parsed once, at construction; a bad one raises :class:`ValueError` with one
line naming it.
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .records import Handshake
from .tls.alpn import alpn_text

__all__ = ["RecordFilter"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_ESCAPED_ID = re.compile(r"(?:\\x[0-9a-f]{2}|[!-\[\]-~])*")  # alpn_text's alphabet
_ESCAPE = re.compile(r"\\x([0-9a-f]{2})")


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> Address | None:
    """A record's address (inet_ntop text), parsed; None if it is not one."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _tuple(name: str, values: Iterable[Any]) -> tuple[Any, ...]:
    if isinstance(values, str | bytes):
        raise TypeError(f"RecordFilter {name}: a tuple of values, not {type(values).__name__}")
    return tuple(values)


def _network(text: str) -> Network:
    if not isinstance(text, str):
        raise ValueError(f"--host {text!r}: not an address or CIDR prefix")
    try:
        return ipaddress.ip_network(text.strip())
    except ValueError as err:
        raise ValueError(f"--host {text!r}: {err}") from None


def _port(value: int | str) -> int:
    if isinstance(value, str) and value.strip().isdecimal():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"--port {value!r}: not a port number (1-65535)")
    return value


def _alpn_raw(text: str) -> bytes:
    """The octets whose escaped text (:func:`alpn_text`) is ``text``."""
    if not isinstance(text, str):
        raise ValueError(f"--alpn {text!r}: not an ALPN ID")
    if _ESCAPED_ID.fullmatch(text) is None:
        hint = alpn_text(text.encode("utf-8", "surrogateescape"))
        raise ValueError(
            f"--alpn {text!r}: not an ALPN ID as alpnsniff prints it (octets outside "
            f"0x21-0x7e, and the backslash, are written \\xNN: {hint})"
        )
    raw = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text).encode("latin-1")
    if alpn_text(raw) != text:  # (a safe octet written \xNN: alpnsniff never prints that)
        raise ValueError(
            f"--alpn {text!r}: not an ALPN ID as alpnsniff prints it (it writes {alpn_text(raw)})"
        )
    return raw


def _glob_regex(globs: tuple[str, ...]) -> re.Pattern[str] | None:
    for glob in globs:
        if not isinstance(glob, str):
            raise ValueError(f"--sni {glob!r}: not a glob")
    if not globs:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs), re.IGNORECASE)


@dataclass(frozen=True)
class RecordFilter:
    """``filter(record)`` is True to keep the record (see the module's docstring)."""

    hosts: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    sni_globs: tuple[str, ...] = ()
    alpns: tuple[str, ...] = ()
    # what __post_init__ parses, once
    _addresses: frozenset[Address] = field(init=False, repr=False, compare=False)
    _networks: tuple[Network, ...] = field(init=False, repr=False, compare=False)
    _ports: frozenset[int] = field(init=False, repr=False, compare=False)
    _sni: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _alpns: frozenset[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hosts = _tuple("hosts", self.hosts)
        ports = tuple(_port(p) for p in _tuple("ports", self.ports))
        globs = _tuple("sni_globs", self.sni_globs)
        alpns = _tuple("alpns", self.alpns)
        networks = [_network(h) for h in hosts]
        single = {n.network_address for n in networks if n.num_addresses == 1}
        prefixes = tuple(n for n in networks if n.num_addresses > 1)
        values: dict[str, object] = {
            "hosts": hosts,
            "ports": ports,
            "sni_globs": globs,
            "alpns": alpns,
            "_addresses": frozenset(single),
            "_networks": prefixes,
            "_ports": frozenset(ports),
            "_sni": _glob_regex(globs),
            "_alpns": frozenset(_alpn_raw(a) for a in alpns),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def active(self) -> bool:
        """Any criterion given (an inactive filter keeps every record)."""
        return bool(self.hosts or self.ports or self.sni_globs or self.alpns)

    def __call__(self, h: Handshake) -> bool:
        if self.hosts and not (self._host(h.client_ip) or self._host(h.server_ip)):
            return False
        ports = self._ports
        if ports and h.client_port not in ports and h.server_port not in ports:
            return False
        sni = self._sni
        if sni is not None and (h.sni is None or sni.match(h.sni) is None):
            return False
        alpns = self._alpns
        if alpns and h.alpn_selected_raw not in alpns:
            return any(raw in alpns for raw in h.alpn_offered_raw or ())
        return True

    def _host(self, text: str) -> bool:
        address = _address(text)
        if address is None:
            return False
        if address in self._addresses:
            return True
        return any(address in network for network in self._networks)
