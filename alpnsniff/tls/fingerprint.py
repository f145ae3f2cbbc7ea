"""Client fingerprints of a parsed ClientHello: JA4 (FoxIO, BSD-3-Clause) and JA3 (Salesforce).

Pure functions of a :class:`~.hello.ClientHello`, run once per hello. JA4 follows FoxIO's
technical details (``ja4/technical_details/JA4.md``): ``a_b_c``, GREASE (RFC 8701) ignored
everywhere, where

- ``a``: ``t`` TLS, ``q`` QUIC, ``d`` DTLS, decided by the transport the hello came on (a
  ``quic_transport_parameters`` extension in a hello over TCP is still ``t``); the version:
  the highest ``supported_versions`` value, else ``legacy_version`` (``13``, ``12``, ``11``,
  ``10``, ``s3``, ``s2``, ``d1``, ``d2``, ``d3``; ``00`` for anything else, TLS 1.3 drafts
  included); ``d`` when the server_name extension is there, else ``i``; the number of cipher
  suites and of extensions, 2 digits, at most 99 (SNI and ALPN counted, each occurrence of a
  repeated extension too); the first and last characters of the first ALPN value
  (:func:`ja4_alpn_chars`);
- ``b``: the first 12 hex digits of SHA-256 over the sorted cipher suites (4 lowercase hex
  digits each, comma-joined);
- ``c``: the same over the sorted extensions without SNI (0x0000) and ALPN (0x0010), then
  ``_`` and the signature algorithms in wire order (no ``_`` when there are none).

An empty list hashes to ``000000000000``; ``ja4_r`` is ``a`` and the same lists in the clear.
JA3 is ``version,ciphers,extensions,groups,point_formats`` in decimal, ``-``-joined, GREASE
removed, padding (21) kept, as tshark's ``tls.handshake.ja3_full``, and its MD5. The other
JA4+ methods (JA4S, JA4X, …) are under the FoxIO License and are not computed here.
"""

from __future__ import annotations

import hashlib
from typing import Final

from .alpn import is_grease_alpn
from .hello import ClientHello
from .registry import is_grease

__all__ = ["ja3_fingerprint", "ja4_alpn_chars", "ja4_fingerprint"]

EXT_SERVER_NAME: Final = 0x0000
EXT_ALPN: Final = 0x0010
EMPTY_HASH: Final = "000000000000"  # JA4's value for a hash over an empty list
MAX_COUNT: Final = 99  # JA4's counts have two digits

#: JA4's two-character version codes (TLS, SSL, DTLS); any other version is ``00``
JA4_VERSIONS: Final[dict[int, str]] = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}

#: the record's transport -> JA4's first character (TLS inside OpenVPN over UDP is TLS)
JA4_TRANSPORTS: Final[dict[str, str]] = {"tcp": "t", "udp": "t", "quic": "q", "dtls": "d"}

_HEX: Final = "0123456789abcdef"


def _alnum(byte: int) -> bool:
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def ja4_alpn_chars(alpn: tuple[bytes, ...]) -> str:
    """JA4's two ALPN characters: the first and last octets of the first ALPN value that is
    not GREASE, as characters when both are ASCII letters or digits, else the first and last
    hex digits of the value (``b"\\xab\\xcd"`` -> ``ad``, ``b" "`` -> ``20``); one octet is
    both first and last; ``00`` without an ALPN value or when it is empty."""
    for value in alpn:
        if not is_grease_alpn(value):
            if not value:
                return "00"
            first = value[0]
            last = value[-1]
            if _alnum(first) and _alnum(last):
                return chr(first) + chr(last)
            return _HEX[first >> 4] + _HEX[last & 0x0F]
    return "00"


def ja4_version(ch: ClientHello, transport: str) -> str:
    """JA4's version code: the highest non-GREASE ``supported_versions`` value (else
    ``legacy_version``). DTLS numbers count down (0xfefc is DTLS 1.3, 0xfefd 1.2), so there
    the highest version is the smallest number: a DTLS 1.3 hello offers both."""
    dtls = transport == "dtls"
    best = -1
    for v in ch.supported_versions:
        if not is_grease(v) and (best < 0 or (v < best if dtls else v > best)):
            best = v
    return JA4_VERSIONS.get(ch.legacy_version if best < 0 else best, "00")


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12] if text else EMPTY_HASH


def _hex_list(values: list[int]) -> str:
    return ",".join([f"{v:04x}" for v in values])


def ja4_fingerprint(ch: ClientHello, transport: str) -> tuple[str, str]:
    """``(ja4, ja4_r)`` of the ClientHello seen on ``transport`` (the record's: ``tcp``,
    ``quic``, ``dtls``, ``udp``)."""
    ciphers = [c for c in ch.cipher_suites if not is_grease(c)]
    extensions = [e for e in ch.extensions if not is_grease(e)]
    part_a = (
        JA4_TRANSPORTS.get(transport, "t")
        + ja4_version(ch, transport)
        + ("d" if EXT_SERVER_NAME in extensions else "i")
        + f"{min(len(ciphers), MAX_COUNT):02d}{min(len(extensions), MAX_COUNT):02d}"
        + ja4_alpn_chars(ch.alpn)
    )
    ciphers.sort()
    cipher_list = _hex_list(ciphers)
    hashed_exts = [e for e in extensions if e != EXT_SERVER_NAME and e != EXT_ALPN]
    hashed_exts.sort()
    ext_list = _hex_list(hashed_exts)
    sigalg_list = _hex_list([s for s in ch.signature_algorithms if not is_grease(s)])
    ext_part = ext_list + "_" + sigalg_list if sigalg_list else ext_list
    ext_hash = _hash12(ext_part) if ext_list else EMPTY_HASH
    return (
        f"{part_a}_{_hash12(cipher_list)}_{ext_hash}",
        f"{part_a}_{cipher_list}_{ext_part}",
    )


def _dec_list(values: tuple[int, ...]) -> str:
    return "-".join([str(v) for v in values if not is_grease(v)])


def ja3_fingerprint(ch: ClientHello) -> tuple[str, str]:
    """``(ja3, ja3_hash)``: the JA3 string of the ClientHello and its MD5 in hex."""
    ja3 = ",".join(
        (
            str(ch.legacy_version),
            _dec_list(ch.cipher_suites),
            _dec_list(ch.extensions),
            _dec_list(ch.supported_groups),
            "-".join([str(p) for p in ch.ec_point_formats]),
        )
    )
    return ja3, hashlib.md5(ja3.encode("ascii"), usedforsecurity=False).hexdigest()
