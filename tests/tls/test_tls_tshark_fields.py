"""ClientHello fields against tshark, run now on the real captures (skipped without tshark).

Compared per ClientHello: random, session id, cipher suites, compression methods,
supported groups, signature algorithms, EC point formats, extension types, SNI, ALPN.
tshark's ``sig_hash_alg`` also collects the lists of signature_algorithms_cert (50) and
delegated_credentials (34), so signature algorithms are compared only without those.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tlscap import DATA, REALCAP, tls_payloads

from alpnsniff.tls.hello import parse_client_hello
from alpnsniff.tls.stream import HandshakeMessage, TlsStreamParser

pytestmark = pytest.mark.tshark

FIELDS = (
    "tcp.srcport",
    "tcp.dstport",
    "tls.handshake.random",
    "tls.handshake.session_id",
    "tls.handshake.ciphersuite",
    "tls.handshake.comp_method",
    "tls.handshake.extensions_supported_group",
    "tls.handshake.sig_hash_alg",
    "tls.handshake.extensions_ec_point_format",
    "tls.handshake.extension.type",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions_alpn_str",
)

CAPTURES = [DATA / "openssl_tls12_alpn_nonascii.pcap"] + (
    sorted(p for p in REALCAP.glob("*.pcap") if "aioquic" not in p.name) if REALCAP.is_dir() else []
)


def _tshark(path: Path) -> dict[tuple[int, int], list[list[str]]]:
    args = ["tshark", "-n", "-r", str(path), "-o", "tcp.desegment_tcp_streams:TRUE"]
    args += ["-o", "tls.desegment_ssl_records:TRUE", "-Y", "tls.handshake.type == 1"]
    args += ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"]
    for f in FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows: dict[tuple[int, int], list[list[str]]] = {}
    for line in out.splitlines():
        c = line.split("\t")
        rows.setdefault((int(c[0]), int(c[1])), []).append(c[2:])
    return rows


def _as_tshark_shows(raw: bytes) -> str:
    """tshark 4.0 prints an ALPN ID as ASCII, each other octet as U+FFFD."""
    return "".join(chr(b) if b < 0x80 else "\ufffd" for b in raw)


def _hex16(values: tuple[int, ...]) -> str:
    return ";".join(f"0x{v:04x}" for v in values)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not on PATH")
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_client_hello_fields_equal_tsharks(path: Path) -> None:
    rows = _tshark(path)
    compared = 0
    for d, data in tls_payloads(path):
        hellos = [
            parse_client_hello(e.body)
            for e in TlsStreamParser().feed(data)
            if isinstance(e, HandshakeMessage) and e.msg_type == 1
        ]
        if not hellos:
            continue
        theirs = rows.get((d.sport, d.dport), [])
        assert len(theirs) == len(hellos)
        for ch, t in zip(hellos, theirs, strict=True):
            sigalgs = t[5] if {34, 50} & set(ch.extensions) else _hex16(ch.signature_algorithms)
            mine = [
                ch.random.hex(),
                ch.session_id.hex(),
                _hex16(ch.cipher_suites),
                ";".join(str(b) for b in ch.compression_methods),
                _hex16(ch.supported_groups),
                sigalgs,
                ";".join(str(b) for b in ch.ec_point_formats),
                ";".join(map(str, ch.extensions)),
                (ch.sni or b"").decode(),
                ";".join(map(_as_tshark_shows, ch.alpn)),
            ]
            t = [t[0].replace(":", ""), t[1].replace(":", ""), *t[2:]]
            assert mine == t
            compared += 1
    assert compared >= 1
