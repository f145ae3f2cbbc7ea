"""A Zeek ``ssl.log`` in Zeek's ASCII log format, one line per handshake, for the tools that
read Zeek logs (zeek-cut, zat, Zeek's input framework, the SIEM parsers of Zeek TSV).

The file is what Zeek's ASCII writer (src/logging/writers/ascii/Ascii.cc) writes for an
``ssl`` stream logging these fields: the header lines ``#separator \\x09``,
``#set_separator``, ``#empty_field``, ``#unset_field``, ``#path``, ``#open``, ``#fields``,
``#types``, the rows (tab-separated; ``-`` unset, ``(empty)`` an empty string or vector,
vectors comma-separated), and ``#close`` at the end. The fields are Zeek's
``base/protocols/ssl/main.zeek`` ones alpnsniff can fill, in Zeek's order, and
``orig_alpn`` of Zeek's ``policy/protocols/ssl/ssl-log-ext.zeek`` (``vector of string``: the
client's ALPN IDs):

- ``ts`` (time): the ClientHello's packet (Zeek: the connection's first), microseconds;
- ``uid`` (string): ``C`` and 96 bits of SHA-1 of ``"<community_id> <ts>"`` (ts as the line
  writes it) in base62: the same row gives the same uid in every run (Zeek's are random);
- ``id.orig_h``, ``id.orig_p``, ``id.resp_h``, ``id.resp_p`` (addr, port): the client
  (Zeek's "originator") and the server;
- ``version`` (string): the negotiated version as Zeek spells it: ``TLSv13``, ``TLSv12``,
  ``TLSv11``, ``TLSv10``, ``SSLv3``, ``SSLv2``, ``DTLSv12``, ``TLSv13-draft28``,
  ``unknown-<code>``;
- ``cipher`` (string): the server's suite by Zeek's name (:mod:`alpnsniff.tls.cipher_names`),
  ``unknown-<code>`` for a code without one;
- ``server_name`` (string): the SNI;
- ``next_protocol`` (string): the server's ALPN choice, from its ServerHello or decrypted with
  a key log (Zeek sees the first only);
- ``established`` (bool): ``F`` when the server refused the handshake with an alert
  (``selection`` rejected or aborted); unset otherwise, never ``T``: alpnsniff reads up to
  the server's first flight, not the Finished messages Zeek waits for;
- ``orig_alpn`` (vector[string]): the client's ALPN IDs; unset without the extension.

Deviations, each on purpose: a row is a ClientHello, so a connection with a HelloRetryRequest
gives two lines (Zeek: one); ``#open`` and ``#close`` are the first row's time and the
latest row's, in UTC (Zeek writes its wall clock in local time: alpnsniff reads no clock; a
log with no row has the epoch), as ``YYYY-MM-DD-HH-MM-SS``. Text from the wire is written as
every alpnsniff format writes it (``\\xNN`` for every octet outside 0x21-0x7e and for the
backslash, README: Escaping), which Zeek's readers unescape to the same octets, plus Zeek's
own rules (a value that is exactly ``-`` or ``(empty)`` has its first character escaped, a
comma inside a vector element is ``\\x2c``); ``#`` is also written ``\\x23``, so that a reader
that takes ``#`` as a comment (pandas, zat) never cuts a line short.
"""

from __future__ import annotations

from calendar import timegm
from hashlib import sha1
from time import gmtime, strftime, strptime
from typing import Any, TextIO

from ..tls.cipher_names import CIPHER_NAMES

FIELDS: tuple[tuple[str, str], ...] = (
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("version", "string"),
    ("cipher", "string"),
    ("server_name", "string"),
    ("next_protocol", "string"),
    ("established", "bool"),
    ("orig_alpn", "vector[string]"),
    ("ja3", "string"),  # as the zeek/ja3 package logs it: the MD5
    ("ja4", "string"),  # as FoxIO's JA4 Zeek package logs it
)
"""The ssl.log fields written, (name, Zeek type), in order."""

SEPARATOR = "\t"
SET_SEPARATOR = ","
EMPTY_FIELD = "(empty)"
UNSET_FIELD = "-"
_ALPN = 16  # extension type

# alpnsniff's version text (registry.version_name) -> Zeek's (SSL::version_strings).
_VERSIONS: dict[str, str] = {
    "ssl2": "SSLv2",
    "ssl3": "SSLv3",
    "1.0": "TLSv10",
    "1.1": "TLSv11",
    "1.2": "TLSv12",
    "1.3": "TLSv13",
    "dtls1.0": "DTLSv10",
    "dtls1.2": "DTLSv12",
    "dtls1.3": "DTLSv13",
}
_REFUSED = frozenset(("rejected", "aborted"))  # the server answered with an alert
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ISO_SECONDS = "%Y-%m-%dT%H:%M:%S"
_ZEEK_TIME = "%Y-%m-%d-%H-%M-%S"


def zeek_version(version: str | None) -> str:
    """Zeek's text for the negotiated version (alpnsniff's text; None: unset)."""
    if version is None:
        return UNSET_FIELD
    known = _VERSIONS.get(version)
    if known is not None:
        return known
    if version.startswith("1.3-draft"):
        return f"TLSv13-draft{int(version[9:])}"
    if version.startswith("1.3-fb"):  # Zeek names no fizz draft: 0xfbNN is unknown to it
        return f"unknown-{0xFB00 + int(version[6:])}"
    if version.startswith("0x"):
        return f"unknown-{int(version, 16)}"
    return UNSET_FIELD  # "grease": alpnsniff did not keep the code


def zeek_cipher(code: int | None) -> str:
    """Zeek's name of a cipher suite (None: unset)."""
    if code is None:
        return UNSET_FIELD
    return CIPHER_NAMES.get(code) or f"unknown-{code}"


def zeek_uid(community_id: str, ts: str) -> str:
    """A Zeek-style connection uid, ``C`` and 96 bits in base62, from the row's community
    id and its ``ts`` as the line writes it (``1795308872.086361``): deterministic, so one
    capture gives the same uids in every run, and a line's uid follows from the line."""
    number = int.from_bytes(sha1(f"{community_id} {ts}".encode()).digest()[:12], "big")
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "C" + "".join(reversed(digits or ["0"]))


def zeek_text(text: str | None, *, in_vector: bool = False) -> str:
    """An escaped wire string as a Zeek ASCII value (None: unset)."""
    if text is None:
        return UNSET_FIELD
    if not text:
        return EMPTY_FIELD
    if text in (UNSET_FIELD, EMPTY_FIELD):
        return f"\\x{ord(text[0]):02x}{text[1:]}"
    text = text.replace("#", "\\x23")
    return text.replace(SET_SEPARATOR, "\\x2c") if in_vector else text


def zeek_vector(items: list[str] | None) -> str:
    """A vector[string] value: its escaped elements, comma-separated (None: unset)."""
    if items is None:
        return UNSET_FIELD
    if not items:
        return EMPTY_FIELD
    return SET_SEPARATOR.join(zeek_text(item, in_vector=True) for item in items)


def _orig_alpn(row: dict[str, Any]) -> str:
    """Zeek sets orig_alpn from the client's ALPN extension, and only when it is there."""
    offered = row["alpn_offered"]
    extensions = row["extensions"]
    if offered is None or (not offered and (extensions is None or _ALPN not in extensions)):
        return UNSET_FIELD
    return zeek_vector(offered)


class ZeekWriter:
    """ssl.log lines from :func:`~alpnsniff.sinks.rows.row`'s dicts: the header when the
    first row comes (its ``#open`` is that row's time), ``#close`` in :meth:`close`."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.rows = 0
        self._opened = False
        self._latest = 0  # the latest row's time, whole seconds since the epoch
        self._second: tuple[str, int] = ("", 0)  # the last "YYYY-MM-DDTHH:MM:SS" parsed

    def _seconds(self, iso: str) -> int:
        head = iso[:19]
        if head != self._second[0]:  # rows come in time order: mostly the same second
            self._second = (head, timegm(strptime(head, _ISO_SECONDS)))
        return self._second[1]

    def _header(self, open_seconds: int) -> None:
        names = SEPARATOR.join(name for name, _ in FIELDS)
        types = SEPARATOR.join(kind for _, kind in FIELDS)
        self.out.write(
            "#separator \\x09\n"
            f"#set_separator{SEPARATOR}{SET_SEPARATOR}\n"
            f"#empty_field{SEPARATOR}{EMPTY_FIELD}\n"
            f"#unset_field{SEPARATOR}{UNSET_FIELD}\n"
            f"#path{SEPARATOR}ssl\n"
            f"#open{SEPARATOR}{strftime(_ZEEK_TIME, gmtime(open_seconds))}\n"
            f"#fields{SEPARATOR}{names}\n"
            f"#types{SEPARATOR}{types}\n"
        )
        self._opened = True

    def write(self, row: dict[str, Any]) -> None:
        iso = row["ts"]  # "2026-11-22T00:54:32.086361000Z"
        seconds = self._seconds(iso)
        if not self._opened:
            self._header(seconds)
        self._latest = max(self._latest, seconds)
        ts = f"{seconds}.{iso[20:26]}"  # Zeek's %.6f; the nanoseconds cut
        cells = (
            ts,
            zeek_uid(row["community_id"], ts),
            row["client_ip"],
            str(row["client_port"]),
            row["server_ip"],
            str(row["server_port"]),
            zeek_version(row["tls_version"]),
            zeek_cipher(row["cipher_suite"]),
            zeek_text(row["sni"]),
            zeek_text(row["alpn_selected"]),
            "F" if row["selection"] in _REFUSED else UNSET_FIELD,
            _orig_alpn(row),
            zeek_text(row["ja3_hash"]),
            zeek_text(row["ja4"]),
        )
        self.out.write(SEPARATOR.join(cells) + "\n")
        self.rows += 1

    def close(self) -> None:
        if not self._opened:
            self._header(0)
        self.out.write(f"#close{SEPARATOR}{strftime(_ZEEK_TIME, gmtime(self._latest))}\n")
        self.out.flush()
