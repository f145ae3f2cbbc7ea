"""What a connection carried before its TLS began: the protocol a plaintext segment start
belongs to, for the record's ``upgraded_from`` column. Pure functions of bytes.

The TCP flow (:mod:`alpnsniff.flows.tcp`) asks :func:`upgrade_hint` of each segment start it
probes before the ClientHello. A hint is *strong* when the bytes can only be that protocol's
step towards TLS (an SMTP ``EHLO``, a PostgreSQL SSLRequest, an X.224 Connection Request), and
*weak* when they only suggest it (an FTP or SMTP ``220`` banner); a strong hint replaces a
weak one, never the other way round (:func:`better_hint`).

Recognised: SMTP (and LMTP) STARTTLS, IMAP STARTTLS, POP3 STLS, FTP ``AUTH TLS``/``AUTH SSL``
(RFC 4217), XMPP ``<starttls/>``, LDAP StartTLS (RFC 4511 §4.14), PostgreSQL SSLRequest and
GSSENCRequest, MySQL's SSL request, IRC ``STARTTLS`` (numeric 670), RDP (an X.224 Connection
Request in a TPKT, MS-RDPBCGR 2.2.1.1), NNTP (RFC 4642), ManageSieve, and an HTTP ``Upgrade:
TLS/1.0`` (RFC 2817). The HTTP CONNECT and PROXY-protocol preambles are named by the TCP flow
itself (``http-connect``, ``proxy-protocol``), which parses them.
"""

from __future__ import annotations

from typing import Final

# PostgreSQL: Int32 length 8, then the request code (frontend/backend protocol §55.2.10)
PG_SSL_REQUEST: Final = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
PG_GSSENC_REQUEST: Final = b"\x00\x00\x00\x08\x04\xd2\x16\x30"
# LDAP StartTLS: the ExtendedRequest's requestName, 1.3.6.1.4.1.1466.20037, as [0] octets
LDAP_STARTTLS_OID: Final = b"\x80\x161.3.6.1.4.1.1466.20037"
LDAP_STARTTLS_LOOK: Final = 40  # the OID sits in the first few bytes of the message
MYSQL_CLIENT_SSL: Final = 0x0800  # capability flag CLIENT_SSL
X224_CONNECTION_REQUEST: Final = 0xE0

STRONG: Final = 2
WEAK: Final = 1

# client command lines (upper-cased before comparing), and what they say
_CLIENT_LINES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"EHLO ", "smtp"),
    (b"HELO ", "smtp"),
    (b"LHLO ", "lmtp"),
    (b"STLS\r\n", "pop3"),
    (b"AUTH TLS", "ftp"),
    (b"AUTH SSL", "ftp"),
    (b"FEAT\r\n", "ftp"),
    (b"CAP LS", "irc"),
)


def _client_hint(data: bytes) -> tuple[str, int] | None:
    head = data[:16].upper()
    for prefix, name in _CLIENT_LINES:
        if head.startswith(prefix):
            return name, STRONG
    if data[:8] == PG_SSL_REQUEST or data[:8] == PG_GSSENC_REQUEST:
        return "postgresql", STRONG
    if data[:2] == b"\x03\x00" and len(data) >= 6 and data[5] == X224_CONNECTION_REQUEST:
        return "rdp", STRONG  # TPKT version 3, then an X.224 CR TPDU (its code in the top nibble)
    if data[:1] == b"\x30" and LDAP_STARTTLS_OID in data[:LDAP_STARTTLS_LOOK]:
        return "ldap", STRONG
    if data.startswith((b"<?xml", b"<stream:stream")):
        return "xmpp", STRONG
    if (
        len(data) == 36
        and data[0] == 32
        and data[1:4] == b"\x00\x00\x01"
        and (data[4] | data[5] << 8) & MYSQL_CLIENT_SSL
    ):
        return "mysql", STRONG  # a 32-byte SSLRequest packet, sequence 1, CLIENT_SSL set
    if head.startswith(b"STARTTLS\r\n"):
        return "smtp", WEAK  # SMTP's (after its EHLO) or IRC's (the server's 670 tells)
    if head.find(b" STARTTLS") > 0:
        return "imap", STRONG  # "<tag> STARTTLS": an IMAP command carries a tag
    return None


def _server_hint(data: bytes) -> tuple[str, int] | None:
    if data.startswith(b"* OK"):
        return "imap", STRONG
    if data.startswith(b"+OK"):
        return "pop3", STRONG
    if data.startswith((b"220 ", b"220-")):
        return "smtp", WEAK  # or an FTP banner: the client's command decides
    if data.startswith((b"200 ", b"201 ")):
        return "nntp", WEAK
    if data.startswith(b'"IMPLEMENTATION"'):
        return "sieve", STRONG
    if data[:1] == b":" and b" 670 " in data[:128]:
        return "irc", STRONG  # RPL_STARTTLS
    if data.startswith(b"HTTP/1.1 101") and b"TLS/1" in data[:256]:
        return "http", STRONG  # RFC 2817 Upgrade
    if (
        len(data) > 5
        and data[3] == 0
        and data[4] == 0x0A
        and 4 + (data[0] | data[1] << 8 | data[2] << 16) == len(data)
    ):
        return "mysql", WEAK  # a protocol-10 server greeting (sequence 0), alone in its segment
    return None


def upgrade_hint(data: bytes, from_server: bool) -> tuple[str, int] | None:
    """The protocol a plaintext segment start belongs to and how sure (``STRONG`` or
    ``WEAK``), or None. ``from_server``: sent by the side that answers."""
    if not data:
        return None
    return _server_hint(data) if from_server else _client_hint(data)


def better_hint(
    held: tuple[str, int] | None, new: tuple[str, int] | None
) -> tuple[str, int] | None:
    """The hint to keep: the first strong one, else the first weak one."""
    if new is None:
        return held
    if held is None or (held[1] == WEAK and new[1] == STRONG):
        return new
    return held
