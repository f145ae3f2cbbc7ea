"""The record of one handshake, and the table of the public columns derived from it.

A :class:`Handshake` keeps the wire values as they came (``alpn_offered_raw``: raw octets).
The public columns (``alpnsniff.read``'s DataFrame, ndjson keys, CSV header, Parquet) are
*derived* from it by :data:`COLUMN_TABLE`, the one place that names them, types them and says
where each value comes from: ``alpn_offered`` is the escaped text of ``alpn_offered_raw``
(:func:`alpnsniff.tls.alpn.alpn_text`: printable ASCII kept, every other octet ``\\xNN``),
``alpn_offered_hex`` its hex, ``ts`` is ``ts_ns`` as a time, and ``capture`` is the name of
the capture the run read. The sinks (:mod:`alpnsniff.sinks.rows`, :mod:`alpnsniff.sinks.frame`)
build their rows, dtypes and schemas from the table; the README documents it.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any


class Selection(StrEnum):
    """How the server's ALPN choice was learnt (column ``selection``)."""

    VISIBLE = "visible"  # in a cleartext ServerHello (TLS <= 1.2, or a 1.3 stack that echoes it)
    ENCRYPTED = "encrypted"  # TLS 1.3 / QUIC: in EncryptedExtensions, no key to read it
    DECRYPTED = "decrypted"  # read from EncryptedExtensions with a key log
    # the client offered ALPN (or its ClientHello was not seen); the server selected none
    NONE = "none"
    NOT_OFFERED = "not-offered"  # the client offered no ALPN; the server answered
    REJECTED = "rejected"  # the server sent alert 120 no_application_protocol
    ABORTED = "aborted"  # the server sent another fatal alert instead of a ServerHello
    RETRIED = "retried"  # the server answered with HelloRetryRequest; the next row continues
    UNSEEN = "unseen"  # no answer from the server in the capture


@dataclass(frozen=True, slots=True, kw_only=True)
class Handshake:
    """One ClientHello and what became of it (the public columns: :data:`COLUMN_TABLE`)."""

    ts_ns: int  # capture time of the packet that completed the ClientHello, ns since epoch (UTC)
    frame: int  # 1-based number of that packet, as Wireshark numbers it
    transport: str  # "tcp" or "quic" ("dtls" next)
    ip_version: int  # 4 or 6 (of the innermost IP header)
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    # The ClientHello's columns (sni … sslv2 below) are None when the ClientHello was not
    # seen: a one-sided capture (an asymmetric span port) or a capture begun late shows the
    # server's answer alone (``alpn_offered_raw`` None, as against ``()``: a ClientHello
    # without ALPN); ``ts_ns`` and ``frame`` are then the server's answer's.
    sni: str | None  # server_name host_name, escaped text (None: no SNI extension)
    alpn_offered_raw: tuple[bytes, ...] | None  # ALPN protocol IDs, client order, raw octets
    alpn_selected_raw: bytes | None  # the server's choice, raw octets (None: not known / none)
    selection: Selection
    tls_version: str | None  # negotiated: "1.3", "1.2", ..., None when the server never answered
    client_version: (
        str | None
    )  # highest version the client offers (supported_versions, else legacy)
    cipher_suite: int | None  # the server's choice
    ech: bool | None  # ClientHello carries encrypted_client_hello (0xfe0d): real or GREASE
    ech_config_id: int | None
    ech_payload_len: int | None
    npn: bool | None  # ClientHello carries next_protocol_negotiation (13172)
    npn_server: tuple[bytes, ...]  # the server's NPN list (TLS <= 1.2 ServerHello)
    npn_selected_raw: bytes | None = None  # the client's encrypted NextProtocol choice (keys)
    alps: tuple[bytes, ...] | None  # ALPS (17513/17613) protocol IDs the client offers
    extensions: tuple[int, ...] | None  # ClientHello extension types, wire order, GREASE included
    grease: bool | None  # ClientHello carries any GREASE value (RFC 8701)
    sslv2: bool | None  # the ClientHello was in SSLv2 format (no extensions, so no ALPN)
    hello_retry: bool  # this ClientHello follows a HelloRetryRequest on the same connection
    alert: int | None  # the server's plaintext alert description, if it sent one
    violation: str | None  # protocol violation seen in the server's answer, else None
    server_frame: int | None  # frame that completed the server's answer
    quic_version: str | None = None  # QUIC only: "1", "2", "draft-29", …
    quic_dcid: str | None = (
        None  # QUIC: DCID of the client's first Initial (RFC 9000 §7.3 "original"), hex
    )
    quic_scid: str | None = None  # QUIC: the client's Source Connection ID, hex
    quic_restarts: int | None = (
        None  # QUIC: ClientHellos superseded after Retry / Version Negotiation
    )
    # HTTP CONNECT before the TLS (RFC 7639): None when the connection began otherwise
    connect_target: str | None = None  # the request's authority, escaped text
    connect_alpn_raw: tuple[bytes, ...] | None = None  # its ALPN header, decoded (None: none)
    connect_alpn_header_raw: bytes | None = None  # the header's raw value (lines joined)
    connect_alpn_canonical: bool | None = None  # RFC 7639 §2.1's canonical form
    connect_status: int | None = None  # the proxy's status code (None: no answer seen)
    connect_alpn_agrees: bool | None = None  # the declared list is the ClientHello's offer
    # what the connection carried before its TLS: "smtp", "imap", "rdp", "openvpn",
    # "http-connect", "proxy-protocol", … (None: TLS from the first byte)
    upgraded_from: str | None = None
    # client fingerprints of the ClientHello (None: not seen, or an SSLv2-format hello)
    ja4: str | None = None  # FoxIO JA4 (t/q/d), hashed parts
    ja4_r: str | None = None  # JA4 with its lists in the clear (sorted)
    ja3: str | None = None  # Salesforce JA3 string (GREASE removed)
    ja3_hash: str | None = None  # its MD5, hex
    notes: tuple[str, ...] = field(default=())  # anomalies worth a human look

    def __reduce__(self) -> tuple[Any, tuple[tuple[Any, ...]]]:
        """Pickled as its field values in field order (records travel back from a parallel
        run's worker processes): the default way sets each slot after creating the object,
        which a frozen dataclass compiled by mypyc refuses; values without their names make
        half the bytes of a dict's."""
        return (_handshake_from_values, (tuple([getattr(self, name) for name in _FIELD_NAMES]),))


def _handshake_from_values(values: tuple[Any, ...]) -> Handshake:
    return Handshake(**dict(zip(_FIELD_NAMES, values, strict=True)))


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Handshake))


class Kind(Enum):
    """The closed set of column types; each sink maps a kind to its own type.

    ========== ============================== ============================ ==================
    kind       pandas                         Parquet                      ndjson / CSV
    ========== ============================== ============================ ==================
    INT        ``int64`` (nullable: Int64)    ``int<bits>`` (``int64``     number
                                              unless nullable)
    BOOL       ``bool`` (nullable: boolean)   ``bool``                     true / false
    STR        ``string`` (StringDtype,       ``string``                   text
               null: ``<NA>``)
    CATEGORY   ``CategoricalDtype`` of the    ``dictionary<int<bits>,      text
               column's ``categories``, in    string>``: the dictionary
               their order                    is every category, in order
    SELECTION  as CATEGORY: the Selection     as CATEGORY                  text
               values, in their order
    TIMESTAMP  ``datetime64[ns, UTC]``        ``timestamp[ns, UTC]``       ISO 8601, ns, ``Z``
    LIST_STR   ``object`` (lists)             ``list<string>``             list (CSV: spaced)
    LIST_INT   ``object`` (lists)             ``list<int<bits>>``          list (CSV: spaced)
    ========== ============================== ============================ ==================

    A nullable column's null is ``None`` in a row and in a list cell of the DataFrame,
    ``<NA>`` in a typed pandas column (Int64, boolean, string), null in Parquet and ndjson,
    an empty cell in CSV. The ClientHello's columns are nullable: null when the ClientHello
    was not seen (a one-sided capture), so that ``alpn_offered`` null ("no ClientHello seen")
    is told from ``[]`` ("a ClientHello without ALPN") everywhere but in CSV, where both are
    an empty cell (there ``client_version``, always set when the ClientHello was seen, tells
    them apart).

    Every dtype is fixed by the table, never inferred from the data: an empty read, an
    all-null column and a read of other captures have the same dtypes, so ``pd.concat`` of
    two reads keeps every one of them.

    CATEGORY is for closed sets only (``transport``): its categories are the same for every
    read, and a value outside them is refused (an error, never a silent NaN). Open-ended text
    with few distinct values (``tls_version``, ``client_version``, ``quic_version``: drafts,
    GREASE, ``0x…`` codes) is STR: a fixed category list would turn an unknown version into
    NaN, and categories taken from the data differ from read to read, which ``pd.concat``
    turns into ``object``. pandas' ``string`` dtype keeps every value and concatenates as
    itself.

    Parquet carries the pandas metadata, so ``pd.read_parquet`` gives back these dtypes (list
    cells come back as numpy arrays; ``alpnsniff.load`` gives lists, as ``read`` does). A
    non-nullable INT is ``int64`` in Parquet because pandas would read a narrower integer back
    as that narrower numpy dtype; a nullable one keeps its width (``Int64`` reads any width).
    """

    INT = "int"
    BOOL = "bool"
    STR = "str"
    CATEGORY = "category"  # text from a closed set, Column.categories
    SELECTION = "selection"  # a :class:`Selection`, as its string value
    TIMESTAMP = "timestamp"  # ns since the epoch, UTC
    LIST_STR = "list of str"
    LIST_INT = "list of int"


class Derive(Enum):
    """How a column's value comes from a :class:`Handshake` (and the capture's name)."""

    FIELD = "field"  # the field as it is
    ENUM = "enum"  # the enum field's string value
    LIST = "list"  # the tuple field as a list
    TEXT = "text"  # escaped text (alpn_text) of the raw octets; None stays None
    HEX = "hex"  # hex of the raw octets; None stays None
    TEXT_LIST = "text list"  # escaped text of each raw octet string, in order
    HEX_LIST = "hex list"  # hex of each raw octet string, in order
    CAPTURE = "capture"  # not in the record: the name of the capture the run read
    # Community ID v1, seed 0 (github.com/corelight/community-id-spec) of the 5-tuple: one
    # derivation of several fields, its ``source`` the tuple :data:`DERIVE_FIELDS` names
    COMMUNITY_ID = "community id"


# The derivations of several fields: the fields each reads, in the order its function takes
# them (a column of one is sourced by exactly this tuple; every other column by one field).
DERIVE_FIELDS: dict[Derive, tuple[str, ...]] = {
    Derive.COMMUNITY_ID: ("client_ip", "client_port", "server_ip", "server_port", "transport"),
}

_INT_BITS = (8, 16, 32, 64)
# Kinds a column of may be None (a TIMESTAMP, a SELECTION is always there).
_NULLABLE_KINDS = (Kind.INT, Kind.BOOL, Kind.STR, Kind.CATEGORY, Kind.LIST_STR, Kind.LIST_INT)
_KINDS_OF: dict[Derive, tuple[Kind, ...]] = {
    Derive.FIELD: (Kind.INT, Kind.BOOL, Kind.STR, Kind.CATEGORY, Kind.TIMESTAMP),
    Derive.ENUM: (Kind.SELECTION,),
    Derive.LIST: (Kind.LIST_STR, Kind.LIST_INT),
    Derive.TEXT: (Kind.STR,),
    Derive.HEX: (Kind.STR,),
    Derive.TEXT_LIST: (Kind.LIST_STR,),
    Derive.HEX_LIST: (Kind.LIST_STR,),
    Derive.CAPTURE: (Kind.STR,),
    Derive.COMMUNITY_ID: (Kind.STR,),
}


@dataclass(frozen=True, slots=True)
class Column:
    """One public column: its name, type, meaning, and where its value comes from."""

    name: str
    kind: Kind
    derive: Derive
    # the Handshake field it is derived from (None: Derive.CAPTURE; a tuple: the fields of a
    # derivation of several, DERIVE_FIELDS)
    source: str | tuple[str, ...] | None
    _: KW_ONLY
    meaning: str  # one line; the README's column table says more
    nullable: bool = False  # may be None (not TIMESTAMP, SELECTION)
    # Parquet width: INT (64 unless nullable), LIST_INT items, a dictionary's index
    bits: int | None = None
    wire_text: bool = False  # text from the wire: escaped, but still attacker-chosen
    categories: tuple[str, ...] = ()  # CATEGORY, SELECTION: every value, in order

    def __post_init__(self) -> None:
        if (self.source is None) != (self.derive is Derive.CAPTURE):
            raise ValueError(f"column {self.name}: a source field iff not derived from capture")
        several = DERIVE_FIELDS.get(self.derive)
        if several is not None and self.source != several:
            raise ValueError(f"column {self.name}: {self.derive} reads the fields {several}")
        if several is None and isinstance(self.source, tuple):
            raise ValueError(f"column {self.name}: {self.derive} reads one source field")
        for name in self.fields:
            if name not in Handshake.__dataclass_fields__:
                raise ValueError(f"column {self.name}: no Handshake field {name!r}")
        if self.kind not in _KINDS_OF[self.derive]:
            raise ValueError(f"column {self.name}: {self.derive} cannot give {self.kind}")
        if self.nullable and self.kind not in _NULLABLE_KINDS:
            raise ValueError(f"column {self.name}: {self.kind} cannot be nullable")
        sized = self.kind in (Kind.INT, Kind.LIST_INT, Kind.SELECTION, Kind.CATEGORY)
        if sized != (self.bits in _INT_BITS):
            raise ValueError(f"column {self.name}: bits {self.bits} for {self.kind}")
        # pandas reads a narrower Parquet integer back as that narrower numpy dtype
        if self.kind is Kind.INT and not self.nullable and self.bits != 64:
            raise ValueError(f"column {self.name}: a non-nullable INT is 64 bits in Parquet")
        closed = self.kind in (Kind.CATEGORY, Kind.SELECTION)
        if closed != bool(self.categories) or len(set(self.categories)) != len(self.categories):
            raise ValueError(f"column {self.name}: categories {self.categories} for {self.kind}")
        if closed and len(self.categories) > 2 ** ((self.bits or 0) - 1):
            raise ValueError(f"column {self.name}: too many categories for {self.bits} bits")
        if self.kind is Kind.SELECTION and self.categories != tuple(s.value for s in Selection):
            raise ValueError(f"column {self.name}: the categories of a selection are its values")
        if self.derive in (Derive.TEXT, Derive.TEXT_LIST) and not self.wire_text:
            raise ValueError(f"column {self.name}: escaped wire text must be wire_text")

    @property
    def fields(self) -> tuple[str, ...]:
        """The Handshake fields the column reads, in order (none: Derive.CAPTURE)."""
        if self.source is None:
            return ()
        if isinstance(self.source, str):
            return (self.source,)
        return self.source


# One line per column: name, kind, derive, source field, then what is not the default.
# fmt: off
COLUMN_TABLE: tuple[Column, ...] = (
    # The fixed set, first and in this order (notebooks and scripts index it).
    Column("ts", Kind.TIMESTAMP, Derive.FIELD, "ts_ns",
           meaning="time of the packet that completed the ClientHello (ns, UTC)"),
    Column("frame", Kind.INT, Derive.FIELD, "frame", bits=64,
           meaning="1-based number of that packet, as Wireshark numbers it"),
    Column("transport", Kind.CATEGORY, Derive.FIELD, "transport", bits=8,
           categories=("tcp", "quic", "dtls"), meaning="tcp or quic (dtls later)"),
    Column("client_ip", Kind.STR, Derive.FIELD, "client_ip",
           meaning="the client's address (it sent the ClientHello), innermost IP header"),
    Column("client_port", Kind.INT, Derive.FIELD, "client_port", bits=64,
           meaning="the client's port"),
    Column("server_ip", Kind.STR, Derive.FIELD, "server_ip",
           meaning="the server's address, innermost IP header"),
    Column("server_port", Kind.INT, Derive.FIELD, "server_port", bits=64,
           meaning="the server's port"),
    Column("sni", Kind.STR, Derive.FIELD, "sni", nullable=True, wire_text=True,
           meaning="server_name, escaped text; None without the extension"),
    Column("alpn_offered", Kind.LIST_STR, Derive.TEXT_LIST, "alpn_offered_raw", nullable=True,
           wire_text=True, meaning="the client's ALPN protocol IDs, in its order, escaped "
           "text; [] a ClientHello without ALPN, None the ClientHello not seen"),
    Column("alpn_selected", Kind.STR, Derive.TEXT, "alpn_selected_raw", nullable=True,
           wire_text=True, meaning="the server's ALPN choice when known, escaped text"),
    Column("selection", Kind.SELECTION, Derive.ENUM, "selection", bits=8,
           categories=tuple(s.value for s in Selection),
           meaning="how the server's choice was learnt (a Selection value)"),
    Column("tls_version", Kind.STR, Derive.FIELD, "tls_version", nullable=True,
           meaning="negotiated version (1.3, 1.2, …); None if the server never said"),
    Column("ech", Kind.BOOL, Derive.FIELD, "ech", nullable=True,
           meaning="the ClientHello carries encrypted_client_hello (0xfe0d)"),
    Column("npn", Kind.BOOL, Derive.FIELD, "npn", nullable=True,
           meaning="the ClientHello carries next_protocol_negotiation (13172)"),
    # More, beyond the fixed set.
    Column("capture", Kind.STR, Derive.CAPTURE, None,
           meaning="the capture file the row came from"),
    Column("community_id", Kind.STR, Derive.COMMUNITY_ID, DERIVE_FIELDS[Derive.COMMUNITY_ID],
           meaning="Community ID v1 (seed 0) of the 5-tuple (proto 6: tcp, 17: quic, dtls)"),
    Column("ip_version", Kind.INT, Derive.FIELD, "ip_version", bits=64,
           meaning="4 or 6"),
    Column("client_version", Kind.STR, Derive.FIELD, "client_version", nullable=True,
           meaning="highest version the client offers (supported_versions, else legacy)"),
    Column("cipher_suite", Kind.INT, Derive.FIELD, "cipher_suite", nullable=True, bits=32,
           meaning="the server's cipher suite"),
    Column("alpn_offered_hex", Kind.LIST_STR, Derive.HEX_LIST, "alpn_offered_raw", nullable=True,
           meaning="the exact octets of alpn_offered, hex"),
    Column("alpn_selected_hex", Kind.STR, Derive.HEX, "alpn_selected_raw", nullable=True,
           meaning="the exact octets of alpn_selected, hex"),
    Column("alps", Kind.LIST_STR, Derive.TEXT_LIST, "alps", nullable=True, wire_text=True,
           meaning="ALPS (0x4469 / 0x44cd) protocol IDs the client offers, escaped text"),
    Column("npn_server", Kind.LIST_STR, Derive.TEXT_LIST, "npn_server", wire_text=True,
           meaning="the server's NPN list (TLS <= 1.2 ServerHello), escaped text"),
    Column("npn_selected", Kind.STR, Derive.TEXT, "npn_selected_raw", nullable=True,
           wire_text=True, meaning="the client's NPN choice (decrypted with a key log)"),
    Column("ech_config_id", Kind.INT, Derive.FIELD, "ech_config_id", nullable=True, bits=16,
           meaning="config_id of the outer ECH extension"),
    Column("ech_payload_len", Kind.INT, Derive.FIELD, "ech_payload_len", nullable=True, bits=32,
           meaning="payload length of the outer ECH extension"),
    Column("grease", Kind.BOOL, Derive.FIELD, "grease", nullable=True,
           meaning="the ClientHello carries GREASE values (RFC 8701)"),
    Column("sslv2", Kind.BOOL, Derive.FIELD, "sslv2", nullable=True,
           meaning="the ClientHello came in SSLv2 format (it cannot carry ALPN)"),
    Column("hello_retry", Kind.BOOL, Derive.FIELD, "hello_retry",
           meaning="this ClientHello answers a HelloRetryRequest"),
    Column("alert", Kind.INT, Derive.FIELD, "alert", nullable=True, bits=16,
           meaning="the server's plaintext alert description, if it sent one"),
    Column("violation", Kind.STR, Derive.FIELD, "violation", nullable=True,
           meaning="protocol violations in the server's answer, ;-separated"),
    Column("server_frame", Kind.INT, Derive.FIELD, "server_frame", nullable=True, bits=64,
           meaning="the packet that completed the server's answer"),
    Column("quic_version", Kind.STR, Derive.FIELD, "quic_version", nullable=True,
           meaning="QUIC: version of the Initial that carried the ClientHello"),
    Column("quic_dcid", Kind.STR, Derive.FIELD, "quic_dcid", nullable=True,
           meaning="QUIC: the client's original Destination Connection ID, hex"),
    Column("quic_scid", Kind.STR, Derive.FIELD, "quic_scid", nullable=True,
           meaning="QUIC: the client's Source Connection ID, hex"),
    Column("quic_restarts", Kind.INT, Derive.FIELD, "quic_restarts", nullable=True, bits=32,
           meaning="QUIC: ClientHellos superseded after a Retry or Version Negotiation"),
    Column("connect_target", Kind.STR, Derive.FIELD, "connect_target", nullable=True,
           wire_text=True, meaning="HTTP CONNECT before the TLS: the request's target"),
    Column("connect_alpn", Kind.LIST_STR, Derive.TEXT_LIST, "connect_alpn_raw", nullable=True,
           wire_text=True, meaning="the CONNECT's ALPN header (RFC 7639), decoded, escaped"),
    Column("connect_alpn_header", Kind.STR, Derive.TEXT, "connect_alpn_header_raw",
           nullable=True, wire_text=True, meaning="the ALPN header's value as sent, escaped"),
    Column("connect_alpn_canonical", Kind.BOOL, Derive.FIELD, "connect_alpn_canonical",
           nullable=True, meaning="the ALPN header is in RFC 7639's canonical form"),
    Column("connect_status", Kind.INT, Derive.FIELD, "connect_status", nullable=True, bits=16,
           meaning="the proxy's status code for the CONNECT"),
    Column("connect_alpn_agrees", Kind.BOOL, Derive.FIELD, "connect_alpn_agrees",
           nullable=True, meaning="the CONNECT's ALPN list is the ClientHello's offer"),
    Column("upgraded_from", Kind.STR, Derive.FIELD, "upgraded_from", nullable=True,
           meaning="what the connection carried before its TLS (smtp, rdp, openvpn, …)"),
    Column("ja4", Kind.STR, Derive.FIELD, "ja4", nullable=True,
           meaning="JA4 client fingerprint of the ClientHello"),
    Column("ja4_r", Kind.STR, Derive.FIELD, "ja4_r", nullable=True,
           meaning="JA4 with its sorted lists in the clear"),
    Column("ja3", Kind.STR, Derive.FIELD, "ja3", nullable=True,
           meaning="JA3 string of the ClientHello (GREASE removed)"),
    Column("ja3_hash", Kind.STR, Derive.FIELD, "ja3_hash", nullable=True,
           meaning="MD5 of the JA3 string, hex"),
    Column("extensions", Kind.LIST_INT, Derive.LIST, "extensions", nullable=True, bits=32,
           meaning="ClientHello extension types in wire order, GREASE included"),
    Column("notes", Kind.LIST_STR, Derive.LIST, "notes",
           meaning="anomalies worth a look"),
)
# fmt: on
"""The public columns, in their order: the one source of every sink's keys, types and schema."""
