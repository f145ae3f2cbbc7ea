"""The public columns as rows: one flat, JSON-ready dict per handshake.

Every sink (ndjson, CSV, Parquet, DataFrame, table) writes the columns of
:data:`~alpnsniff.records.COLUMN_TABLE`, in its order, with its meanings (documented in the
README). Wire strings are already escaped here (:func:`~alpnsniff.tls.alpn.alpn_text`):
printable ASCII but the backslash as is, every other octet as ``\\xNN``. The raw octets stay
available as hex.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from hashlib import sha1
from itertools import chain, repeat, starmap
from operator import attrgetter, call
from socket import AF_INET, AF_INET6, inet_pton
from struct import Struct
from time import gmtime, strftime
from typing import Any

from ..records import COLUMN_TABLE, DERIVE_FIELDS, Column, Derive, Handshake, Kind
from ..tls.alpn import alpn_text

COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMN_TABLE)

# Columns whose values came from the wire as text (escaped, but still attacker-chosen).
WIRE_TEXT_COLUMNS: frozenset[str] = frozenset(c.name for c in COLUMN_TABLE if c.wire_text)

_ISO_SECONDS = "%Y-%m-%dT%H:%M:%S"
# datetime's range, years 1 to 9999, in seconds since the epoch: in it time.gmtime gives the
# same fields as datetime (one proleptic Gregorian calendar, no leap seconds), faster.
_DATETIME_SECONDS = range(-62_135_596_800, 253_402_300_800)
# the last second iso_ts wrote, and its text
_last_second: list[Any] = [None, ""]


def iso_ts(ts_ns: int) -> str:
    """Nanosecond UTC timestamp as ISO 8601 with 9 fraction digits and a Z."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    if seconds == _last_second[0]:  # records come in time order: mostly the same second
        return f"{_last_second[1]}.{nanos:09d}Z"
    if seconds in _DATETIME_SECONDS:
        try:
            text = strftime(_ISO_SECONDS, gmtime(seconds))
        except (OverflowError, OSError):  # a platform's gmtime that cannot: datetime decides
            pass
        else:
            _last_second[:] = [seconds, text]
            return f"{text}.{nanos:09d}Z"
    # datetime raises ValueError out of its range, as it always did here
    return f"{datetime.fromtimestamp(seconds, UTC).strftime(_ISO_SECONDS)}.{nanos:09d}Z"


# IP protocol number of each transport (Community ID hashes it): QUIC and DTLS run on UDP.
IP_PROTOCOLS: dict[str, int] = {"tcp": 6, "quic": 17, "dtls": 17, "udp": 17}
# the hashed tuple's tail: protocol, a zero pad byte, the two ports (network byte order)
_PROTO_PORTS = Struct("!BxHH")
_SEED_0 = bytes(2)


def community_id(
    client_ip: str, client_port: int, server_ip: str, server_port: int, transport: str
) -> str:
    """Community ID v1 with seed 0 (github.com/corelight/community-id-spec) of a connection.

    SHA-1 of seed . addr . addr . proto . 0 . port . port (network byte order), the smaller
    (address, port) end first, base64, after ``1:``: the value Zeek, Suricata, Arkime and
    Elastic log for the same connection, whichever end is the client. Written out here
    rather than taken from the ``communityid`` package: 1.3 µs a row against 42 µs (the
    package builds ``ipaddress`` objects); the tests hold the two equal.
    """
    family = AF_INET6 if ":" in client_ip else AF_INET
    client = inet_pton(family, client_ip)
    server = inet_pton(family, server_ip)
    proto = IP_PROTOCOLS.get(transport)
    if proto is None:
        raise ValueError(f"transport {transport!r}: no IP protocol known for it (IP_PROTOCOLS)")
    if client < server or (client == server and client_port < server_port):
        hashed = _SEED_0 + client + server + _PROTO_PORTS.pack(proto, client_port, server_port)
    else:
        hashed = _SEED_0 + server + client + _PROTO_PORTS.pack(proto, server_port, client_port)
    return "1:" + b2a_base64(sha1(hashed).digest(), newline=False).decode("ascii")


# How a column's value is read from a Handshake: one attribute path (an enum's ``.value``
# included, read in C), then, unless the value is the field's as it is, one function per
# Derive, in two forms: of one value (for row) and of a whole column (for the DataFrame and
# Parquet sinks, which build their columns at once). Both give the raw Python value: ``ts``
# in ns since the epoch, lists as lists; json_value adds the ISO text of ``ts``. A
# derivation of several fields (records.DERIVE_FIELDS) reads them as one tuple, in the
# order its functions take them.


def field_path(column: Column) -> str | None:
    """The attribute path a column of one source field reads from a :class:`Handshake`
    (None: the capture); a column of several fields has none (:func:`value_getter`)."""
    if column.source is None:
        return None
    if not isinstance(column.source, str):
        raise ValueError(f"column {column.name} reads the fields {column.source}: value_getter")
    return f"{column.source}.value" if column.derive is Derive.ENUM else column.source


def value_getter(column: Column) -> Callable[[Handshake], Any] | None:
    """What a column reads from a :class:`Handshake`, for :func:`derive_value` and
    :func:`derive_column`: the value at its :func:`field_path`, or the tuple of its fields'
    values (a derivation of several); None: the capture."""
    if column.derive in DERIVE_FIELDS:
        return attrgetter(*column.fields)
    path = field_path(column)
    return None if path is None else attrgetter(path)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else alpn_text(raw)


def _hex(raw: bytes | None) -> str | None:
    return None if raw is None else raw.hex()


# A list column is None when its field is (a ClientHello not seen: records.Handshake).
# (`if raws else …`: most of these tuples are empty, and an empty one needs no comprehension.)
def _list(values: tuple[Any, ...] | None) -> list[Any] | None:
    return None if values is None else list(values)


def _text_list(raws: tuple[bytes, ...] | None) -> list[str] | None:
    return [alpn_text(p) for p in raws] if raws else None if raws is None else []


def _hex_list(raws: tuple[bytes, ...] | None) -> list[str] | None:
    return [p.hex() for p in raws] if raws else None if raws is None else []


def _texts(raws: Iterable[bytes]) -> dict[bytes, str]:
    """Escaped text of each distinct octet string (a column repeats a few IDs many times)."""
    return {raw: alpn_text(raw) for raw in raws}


def _list_column(values: list[tuple[Any, ...] | None]) -> list[list[Any] | None]:
    return [None if v is None else list(v) for v in values]


def _text_column(values: list[bytes | None]) -> list[str | None]:
    texts = _texts({v for v in values if v is not None})
    return [None if v is None else texts[v] for v in values]


def _hex_column(values: list[bytes | None]) -> list[str | None]:
    return [None if v is None else v.hex() for v in values]


def _text_list_column(values: list[tuple[bytes, ...] | None]) -> list[list[str] | None]:
    texts = _texts(set(chain.from_iterable(v for v in values if v)))
    return [[texts[p] for p in v] if v else None if v is None else [] for v in values]


def _hex_list_column(values: list[tuple[bytes, ...] | None]) -> list[list[str] | None]:
    return [[p.hex() for p in v] if v else None if v is None else [] for v in values]


def _community_id(five: tuple[str, int, str, int, str]) -> str:
    return community_id(*five)


def _community_id_column(values: list[tuple[str, int, str, int, str]]) -> list[str]:
    return list(starmap(community_id, values))


_ValueFn = Callable[[Any], Any]
_ColumnFn = Callable[[list[Any]], list[Any]]

# Derive -> (of one value, of a column); None: the value read is the column's value.
_DERIVE: dict[Derive, tuple[_ValueFn, _ColumnFn] | None] = {
    Derive.FIELD: None,
    Derive.ENUM: None,  # field_path reads the enum's .value
    Derive.LIST: (_list, _list_column),
    Derive.TEXT: (_text, _text_column),
    Derive.HEX: (_hex, _hex_column),
    Derive.TEXT_LIST: (_text_list, _text_list_column),
    Derive.HEX_LIST: (_hex_list, _hex_list_column),
    Derive.CAPTURE: None,
    Derive.COMMUNITY_ID: (_community_id, _community_id_column),
}


def derive_value(column: Column) -> _ValueFn | None:
    """The column's value from what its :func:`value_getter` reads; None: that value."""
    pair = _DERIVE[column.derive]
    return None if pair is None else pair[0]


def derive_column(column: Column) -> _ColumnFn | None:
    """The column's values from what its :func:`value_getter` reads of each record; None:
    those values."""
    pair = _DERIVE[column.derive]
    return None if pair is None else pair[1]


def json_value(column: Column) -> _ValueFn | None:
    """The column's JSON-ready value from what its :func:`value_getter` reads; None: that."""
    if column.kind is Kind.TIMESTAMP:
        return iso_ts  # a Derive.FIELD column (Column checks it): ns since the epoch
    return derive_value(column)


def _getter(paths: tuple[str, ...]) -> Callable[[Handshake], tuple[Any, ...]]:
    """The attributes named, from one record, as a tuple (one C call for them all)."""
    if len(paths) == 1:  # attrgetter of one name returns the bare value
        one = attrgetter(paths[0])
        return lambda h: (one(h),)
    return attrgetter(*paths) if paths else lambda h: ()


# row() runs no Python loop over the columns: it copies a dict that holds every key in
# table order (updating a key keeps its place), then fills in the plain values (one
# attrgetter), the derived ones (one attrgetter, each value through its function, mapped in
# C), those derived from several fields (a getter of their tuple each, then the function,
# both mapped in C) and the capture's name.
_TEMPLATE: dict[str, Any] = dict.fromkeys(COLUMNS)
_ONE_FIELD = tuple(c for c in COLUMN_TABLE if isinstance(c.source, str))
_PLAIN = tuple(c for c in _ONE_FIELD if json_value(c) is None)
_DERIVED = tuple(c for c in _ONE_FIELD if json_value(c) is not None)
_SEVERAL = tuple(c for c in COLUMN_TABLE if isinstance(c.source, tuple))
_PLAIN_NAMES = tuple(c.name for c in _PLAIN)
_DERIVED_NAMES = tuple(c.name for c in _DERIVED)
_DERIVED_STEPS = tuple(f for c in _DERIVED if (f := json_value(c)) is not None)
_SEVERAL_NAMES = tuple(c.name for c in _SEVERAL)
_SEVERAL_GETTERS = tuple(g for c in _SEVERAL if (g := value_getter(c)) is not None)
_SEVERAL_STEPS = tuple(f for c in _SEVERAL if (f := json_value(c)) is not None)
_CAPTURE_NAMES = tuple(c.name for c in COLUMN_TABLE if c.derive is Derive.CAPTURE)
_get_plain = _getter(tuple(p for c in _PLAIN if (p := field_path(c))))
_get_derived = _getter(tuple(p for c in _DERIVED if (p := field_path(c))))


def row(h: Handshake, capture: str) -> dict[str, Any]:
    """A JSON-ready dict of the public columns (``ts`` as ISO 8601 text)."""
    out = _TEMPLATE.copy()
    out.update(zip(_PLAIN_NAMES, _get_plain(h), strict=True))
    out.update(zip(_DERIVED_NAMES, map(call, _DERIVED_STEPS, _get_derived(h)), strict=True))
    several = map(call, _SEVERAL_GETTERS, repeat(h))
    out.update(zip(_SEVERAL_NAMES, map(call, _SEVERAL_STEPS, several), strict=True))
    for name in _CAPTURE_NAMES:
        out[name] = capture
    return out
