"""Regenerate bench/templates.py from the real captures in ../shared/realcap (run once, by hand).

    python bench/gen_extract.py [REALCAP_DIR] > bench/templates.py

The generator itself never reads ../shared: it uses the hex embedded in templates.py. This
script documents where each template came from and lets anyone check or refresh them.
"""

from __future__ import annotations

import struct
import sys
import textwrap
from pathlib import Path

import dpkt
from gen_quic import crypto_frames, initial_keys, unprotect_initial

DEFAULT_REALCAP = Path(__file__).resolve().parents[1] / ".." / "shared" / "realcap"


def _payloads(path: Path) -> list[tuple[str, int, int, bytes]]:
    """(proto, src port, dst port, L4 payload) of every Ethernet/IP packet in a pcap."""
    out: list[tuple[str, int, int, bytes]] = []
    with path.open("rb") as fh:
        for _ts, frame in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(frame)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                continue
            l4 = ip.data
            if isinstance(l4, dpkt.tcp.TCP):
                out.append(("tcp", l4.sport, l4.dport, bytes(l4.data)))
            elif isinstance(l4, dpkt.udp.UDP):
                out.append(("udp", l4.sport, l4.dport, bytes(l4.data)))
    return out


def _handshake_stream(path: Path, *, from_client: bool) -> bytes:
    """Concatenated handshake-record bodies sent by the client (or server) of the first
    TLS-over-TCP connection in the file (only the first flight is needed)."""
    pkts = [p for p in _payloads(path) if p[0] == "tcp" and p[3]]
    client_port = next(sport for _, sport, _, data in pkts if data[0] == 0x16)
    stream = b"".join(data for _, sport, _, data in pkts if (sport == client_port) == from_client)
    body = b""
    pos = 0
    while pos + 5 <= len(stream) and stream[pos] == 0x16:
        (rlen,) = struct.unpack_from("!H", stream, pos + 3)
        body += stream[pos + 5 : pos + 5 + rlen]
        pos += 5 + rlen
    return body


def _messages(body: bytes) -> list[bytes]:
    """Split handshake bytes into whole messages (type, 24-bit length, body)."""
    out = []
    pos = 0
    while pos + 4 <= len(body):
        mlen = int.from_bytes(body[pos + 1 : pos + 4], "big")
        if pos + 4 + mlen > len(body):
            break
        out.append(body[pos : pos + 4 + mlen])
        pos += 4 + mlen
    return out


def tcp_client_hello(path: Path) -> bytes:
    return _messages(_handshake_stream(path, from_client=True))[0]


def server_tls12_tail(path: Path) -> bytes:
    """Certificate, ServerKeyExchange and ServerHelloDone of a TLS 1.2 server flight."""
    msgs = _messages(_handshake_stream(path, from_client=False))
    return b"".join(m for m in msgs if m[0] in (11, 12, 14))


def quic_client_hello(path: Path) -> bytes:
    """The ClientHello reassembled from the first connection's client Initial packets."""
    pkts = [p for p in _payloads(path) if p[0] == "udp" and p[3] and p[3][0] & 0xF0 == 0xC0]
    first = pkts[0][3]
    client_port = pkts[0][1]
    dcid = first[6 : 6 + first[5]]
    keys = initial_keys(dcid, server=False)
    pieces: dict[int, bytes] = {}
    for _, sport, _, data in pkts:
        if sport != client_port:
            continue
        try:
            _, plain, _ = unprotect_initial(data, keys)
        except Exception:
            continue
        for off, chunk in crypto_frames(plain):
            pieces[off] = chunk
    out = b""
    for off in sorted(pieces):
        if off == len(out):
            out += pieces[off]
    mlen = int.from_bytes(out[1:4], "big")
    return out[: 4 + mlen]


SOURCES = [
    (
        "CH_CHROMIUM_TCP",
        "chromium_nginx_h2_veth1500.pcap",
        tcp_client_hello,
        "Chromium 156 -> nginx over veth MTU 1500: GREASE, X25519MLKEM768 key share (1216 B),\n"
        "# GREASE ECH 0xfe0d, ALPS 0x44cd; 1951 bytes, two TCP segments on the wire.",
    ),
    (
        "CH_CURL",
        "nginx_curl_http2_tls13.pcap",
        tcp_client_hello,
        "curl 7.88.1 (OpenSSL 3.0) --http2 to an IP literal, so no server_name extension.",
    ),
    (
        "CH_OPENSSL",
        "openssl_tls13_alpn_h2.pcap",
        tcp_client_hello,
        "openssl 3.0 s_client -alpn h2,http/1.1 -servername localhost (TLS 1.3).",
    ),
    (
        "CH_QUIC_AIOQUIC",
        "aioquic_h3_v1.pcap",
        quic_client_hello,
        "aioquic 1.7.2 QUIC v1 client, ALPN h3 (fits one Initial packet).",
    ),
    (
        "CH_QUIC_CHROMIUM",
        "chromium_aioquic_h3_veth1500.pcap",
        quic_client_hello,
        "Chromium 156 QUIC v1 -> aioquic, SNI quic.example.test (1944 bytes, two Initials).",
    ),
    (
        "SERVER_TLS12_TAIL",
        "chromium_nginx_h2_tls12_lo.pcap",
        server_tls12_tail,
        "nginx 1.22 TLS 1.2 flight after its ServerHello: Certificate (self-signed P-256),\n"
        "# ServerKeyExchange (ECDHE x25519), ServerHelloDone.",
    ),
]


def main() -> None:
    realcap = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_REALCAP
    print('"""Real TLS handshake messages used as templates by bench/gen_capture.py.')
    print()
    print("Generated by bench/gen_extract.py from ../shared/realcap (see its RECIPES.md);")
    print("each constant is the hex of one complete handshake message (or, for the server")
    print('tail, several), with its 4-byte handshake header. Do not edit by hand."""')
    print()
    for n, (name, fname, fn, comment) in enumerate(SOURCES):
        if n:
            print()
        blob = fn(realcap / fname)
        print(f"# From realcap/{fname}: {comment}")
        lines = textwrap.wrap(blob.hex(), 96)
        print(f"{name} = bytes.fromhex(")
        for line in lines:
            print(f'    "{line}"')
        print(")")


if __name__ == "__main__":
    main()
