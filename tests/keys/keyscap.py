"""Test helpers (imported as `keyscap`): real captures → records/datagrams → the decryptors.

dpkt reads the files and a small reassembler rebuilds each TCP direction (independent of
alpnsniff.capture / alpnsniff.net, which are tested elsewhere). Each TLS stream is split
into records by hand, so that the decryptors get exactly what the wire carried; the hello
parsers and the QUIC Initial layer of alpnsniff find the randoms and the cipher suite.
tshark's view with keys comes from ``tshark -o tls.keylog_file:F``.
"""

from __future__ import annotations

import functools
import shutil
import socket
import struct
import subprocess
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import pytest

from alpnsniff.keys.keylog import KeyLog
from alpnsniff.keys.quic_handshake import QuicHandshakeDecryptor
from alpnsniff.keys.tls12 import Tls12HandshakeDecryptor
from alpnsniff.keys.tls13 import Tls13ServerFlightDecryptor
from alpnsniff.quic.connection import ClientHelloEvent, QuicConnection, ServerHelloEvent
from alpnsniff.quic.versions import looks_like_quic_long_header
from alpnsniff.tls.events import HandshakeMessage, StreamError
from alpnsniff.tls.hello import ServerHello, parse_client_hello, parse_server_hello
from alpnsniff.tls.messages import parse_encrypted_extensions, parse_next_protocol
from alpnsniff.tls.stream import TlsStreamParser

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
REALCAP = SHARED / "realcap"
CAPTURES = Path(__file__).resolve().parents[2] / "captures"
DATA = Path(__file__).resolve().parent / "data"

HT_CLIENT_HELLO = 1
HT_SERVER_HELLO = 2
HT_EE = 8
HT_NEXT_PROTOCOL = 67
EXT_ENCRYPT_THEN_MAC = 22


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} absent")
    return path


# ---------------------------------------------------------------------- reading


def _frames(path: Path) -> list[tuple[int, int, bytes]]:
    """(frame number, linktype, bytes) of every packet."""
    out = []
    with path.open("rb") as fh:
        magic = fh.read(4)
        fh.seek(0)
        reader = dpkt.pcapng.Reader(fh) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(fh)
        linktype = reader.datalink()
        for n, (_ts, buf) in enumerate(reader, 1):
            out.append((n, linktype, bytes(buf)))
    return out


def _ip(linktype: int, buf: bytes) -> dpkt.Packet | None:
    if linktype == 1:
        pkt: dpkt.Packet = dpkt.ethernet.Ethernet(buf).data
    elif linktype in (0, 108):
        pkt = dpkt.loopback.Loopback(buf).data
    elif linktype == 113:
        pkt = dpkt.sll.SLL(buf).data
    elif linktype == 276:
        pkt = dpkt.sll2.SLL2(buf).data
    elif linktype in (101, 12, 14, 228, 229):
        pkt = dpkt.ip.IP(buf) if buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
    else:
        return None
    return pkt if isinstance(pkt, dpkt.ip.IP | dpkt.ip6.IP6) else None


def _addr(ip: dpkt.Packet, raw: bytes) -> str:
    family = socket.AF_INET if isinstance(ip, dpkt.ip.IP) else socket.AF_INET6
    return socket.inet_ntop(family, raw)


def dsb_blocks(path: Path) -> list[tuple[int, bytes]]:
    """(secrets type, data) of every pcapng Decryption Secrets Block (little-endian files)."""
    data = path.read_bytes()
    out = []
    pos = 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if btype == 0x0000000A:
            stype, slen = struct.unpack_from("<II", data, pos + 8)
            out.append((stype, data[pos + 16 : pos + 16 + slen]))
        pos += blen
    return out


@dataclass
class Direction:
    """One direction of a TCP connection: bytes from its first payload, and their frames."""

    segments: list[tuple[int, bytes, int]] = field(default_factory=list)  # (seq, data, frame)
    isn: int | None = None
    data: bytes = b""
    starts: list[int] = field(default_factory=list)  # stream offset where each piece starts
    piece_frames: list[int] = field(default_factory=list)

    def build(self) -> None:
        base = self.isn if self.isn is not None else min(s for s, _, _ in self.segments)
        out = bytearray()
        for seq, chunk, frame in sorted(self.segments, key=lambda s: ((s[0] - base) % 2**32, s[2])):
            off = (seq - base) % 2**32
            if off > len(out):
                break  # a gap
            new = chunk[len(out) - off :]
            if new:
                self.starts.append(len(out))
                self.piece_frames.append(frame)
                out += new
        self.data = bytes(out)

    def frame_at(self, offset: int) -> int:
        """The frame that carried stream byte ``offset``."""
        return self.piece_frames[bisect_right(self.starts, offset) - 1]


@dataclass
class TcpConnection:
    client: Direction
    server: Direction


def tcp_connections(path: Path) -> list[TcpConnection]:
    """Every TCP connection with a SYN, client and server directions rebuilt."""
    dirs: dict[tuple[str, int, str, int], Direction] = {}
    conns: list[TcpConnection] = []
    for frame, linktype, buf in _frames(path):
        ip = _ip(linktype, buf)
        if ip is None or not isinstance(ip.data, dpkt.tcp.TCP):
            continue
        tcp = ip.data
        key = (_addr(ip, ip.src), tcp.sport, _addr(ip, ip.dst), tcp.dport)
        rkey = (key[2], key[3], key[0], key[1])
        syn = bool(tcp.flags & dpkt.tcp.TH_SYN)
        if syn and not tcp.flags & dpkt.tcp.TH_ACK:
            conn = TcpConnection(Direction(isn=(tcp.seq + 1) % 2**32), Direction())
            conns.append(conn)
            dirs[key], dirs[rkey] = conn.client, conn.server
            continue
        d = dirs.get(key)
        if d is None:
            continue
        if syn:
            d.isn = (tcp.seq + 1) % 2**32
            continue
        if tcp.data:
            d.segments.append((tcp.seq, bytes(tcp.data), frame))
    for conn in conns:
        for d in (conn.client, conn.server):
            if d.segments:
                d.build()
    return [c for c in conns if c.client.data and c.server.data]


@dataclass(frozen=True)
class Record:
    content_type: int
    header: bytes
    payload: bytes
    end: int  # stream offset just past the record


def records(data: bytes) -> list[Record]:
    """The complete TLS records at the start of a stream (stops at the first partial one)."""
    out = []
    pos = 0
    while pos + 5 <= len(data):
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        end = pos + 5 + length
        if end > len(data):
            break
        out.append(Record(data[pos], data[pos : pos + 5], data[pos + 5 : end], end))
        pos = end
    return out


def client_random(stream: bytes) -> bytes:
    """The random of the first ClientHello of a client stream."""
    for event in TlsStreamParser().feed(stream):
        if isinstance(event, HandshakeMessage) and event.msg_type == HT_CLIENT_HELLO:
            return parse_client_hello(event.body).random
    raise AssertionError("no ClientHello")


def server_hello(records_: list[Record]) -> tuple[ServerHello, int]:
    """The (final, not HRR) ServerHello and the index of the record after it."""
    for i, rec in enumerate(records_):
        if rec.content_type == 22 and rec.payload[:1] == b"\x02":
            length = int.from_bytes(rec.payload[1:4], "big")
            sh = parse_server_hello(rec.payload[4 : 4 + length])
            if not sh.is_hrr:
                return sh, i + 1
    raise AssertionError("no ServerHello")


def keylog_for(path: Path, keys: Path | None = None) -> KeyLog:
    log = KeyLog()
    log.load(keys or path.with_suffix(".keys"))
    return log


# ---------------------------------------------------------------------- TLS 1.3


@dataclass(frozen=True)
class Result:
    """One decrypted answer: the frame and what it says (ALPN or NPN; None: no extension)."""

    frame: int
    value: tuple[bytes, ...] | None


def tls13_ee(path: Path, log: KeyLog) -> list[Result]:
    """Every TLS 1.3 connection's EncryptedExtensions ALPN, decrypted from the capture."""
    out = []
    for conn in tcp_connections(path):
        recs = server_records = records(conn.server.data)
        sh, start = server_hello(recs)
        if sh.selected_version != 0x0304:
            continue
        secrets = log.secrets_for(client_random(conn.client.data))
        assert secrets is not None and secrets.server_handshake_traffic_secret is not None
        dec = Tls13ServerFlightDecryptor(sh.cipher_suite, secrets.server_handshake_traffic_secret)
        for rec in server_records[start:]:
            for event in dec.feed_record(rec.content_type, rec.header, rec.payload):
                assert not isinstance(event, StreamError), event.error
                if isinstance(event, HandshakeMessage) and event.msg_type == HT_EE:
                    ee = parse_encrypted_extensions(event.body)
                    assert ee.errors == ()
                    frame = conn.server.frame_at(rec.end - 1)
                    out.append(Result(frame, ee.alpn if ee.has_alpn else None))
            if dec.done:
                break
        assert dec.done and dec.error is None
    return out


def tls12_npn(path: Path, log: KeyLog) -> list[Result]:
    """Every TLS ≤ 1.2 connection's NextProtocol, decrypted from the client's records."""
    out = []
    for conn in tcp_connections(path):
        sh, _ = server_hello(records(conn.server.data))
        cr = client_random(conn.client.data)
        secrets = log.secrets_for(cr)
        assert secrets is not None and secrets.master_secret is not None
        dec = Tls12HandshakeDecryptor(
            sh.cipher_suite,
            secrets.master_secret,
            cr,
            sh.random,
            version=sh.selected_version,
            encrypt_then_mac=EXT_ENCRYPT_THEN_MAC in sh.extensions,
        )
        for rec in records(conn.client.data):
            for event in dec.feed_record(rec.content_type, rec.header, rec.payload):
                assert not isinstance(event, StreamError), event.error
                if isinstance(event, HandshakeMessage) and event.msg_type == HT_NEXT_PROTOCOL:
                    frame = conn.client.frame_at(rec.end - 1)
                    out.append(Result(frame, (parse_next_protocol(event.body),)))
            if dec.done:
                break
        assert dec.done and dec.error is None
    return out


# ---------------------------------------------------------------------- QUIC


@dataclass(frozen=True)
class Datagram:
    frame: int
    src: tuple[str, int]
    payload: bytes


def udp_datagrams(path: Path) -> list[Datagram]:
    out = []
    for frame, linktype, buf in _frames(path):
        ip = _ip(linktype, buf)
        if ip is None or not isinstance(ip.data, dpkt.udp.UDP):
            continue
        udp = ip.data
        out.append(Datagram(frame, (_addr(ip, ip.src), udp.sport), bytes(udp.data)))
    return out


def quic_server_datagrams(path: Path) -> tuple[ClientHelloEvent, ServerHelloEvent, list[Datagram]]:
    """The (last) ClientHello and ServerHello of the one QUIC connection, and the server's
    datagrams that came after that ServerHello's."""
    grams = [d for d in udp_datagrams(path)]
    first = next(d for d in grams if looks_like_quic_long_header(d.payload))
    conn = QuicConnection()
    ch: ClientHelloEvent | None = None
    sh: ServerHelloEvent | None = None
    after: list[Datagram] = []
    for d in grams:
        from_client = d.src == first.src
        for event in conn.receive_datagram(d.payload, from_client=from_client, ts_ns=0):
            if isinstance(event, ClientHelloEvent):
                ch = event
            elif isinstance(event, ServerHelloEvent):
                if parse_server_hello(event.message[4:]).is_hrr:
                    continue
                sh = event
                after = []
        if sh is not None and not from_client:
            after.append(d)
    assert ch is not None and sh is not None
    return ch, sh, after


def quic_ee(path: Path, log: KeyLog) -> tuple[list[Result], QuicHandshakeDecryptor]:
    ch, sh, grams = quic_server_datagrams(path)
    cr = parse_client_hello(ch.message[4:]).random
    server = parse_server_hello(sh.message[4:])
    secrets = log.secrets_for(cr)
    assert secrets is not None and secrets.server_handshake_traffic_secret is not None
    dec = QuicHandshakeDecryptor(
        sh.version, server.cipher_suite, secrets.server_handshake_traffic_secret
    )
    out = []
    for d in grams:
        for event in dec.feed_datagram(d.payload):
            if isinstance(event, HandshakeMessage) and event.msg_type == HT_EE:
                ee = parse_encrypted_extensions(event.body)
                out.append(Result(d.frame, ee.alpn if ee.has_alpn else None))
        if dec.done:
            break
    return out, dec


# ---------------------------------------------------------------------- tshark


@functools.cache
def tshark_view(path: Path, keys: Path | None, field_name: str, msg_type: int) -> list[Result]:
    """tshark's frames holding handshake ``msg_type`` with the key log, and ``field_name``."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark not on PATH")
    cmd = ["tshark", "-n", "-r", str(path)]
    if keys is not None:
        cmd += ["-o", f"tls.keylog_file:{keys}"]
    cmd += [
        "-Y",
        f"tls.handshake.type == {msg_type}",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        field_name,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    out = []
    for line in done.stdout.splitlines():
        frame, _, value = line.partition("\t")
        out.append(
            Result(int(frame), tuple(v.encode() for v in value.split(",")) if value else None)
        )
    return out
