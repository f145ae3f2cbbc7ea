"""Test helpers: UDP datagrams out of real captures, QUIC flows driven through the layer.

Independent of the project's capture/net modules (written concurrently): dpkt reads the
file and peels the link layers the QUIC captures use. A tiny ALPN reader stands in for
the TLS module so that these tests check only the QUIC layer.
"""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dpkt

from alpnsniff.quic.connection import QuicConnection, QuicEvent
from alpnsniff.quic.versions import looks_like_quic_long_header

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
REALCAP = SHARED / "realcap"
CORPUS = SHARED / "corpus"


@dataclass(frozen=True, slots=True)
class Datagram:
    frame: int
    ts_ns: int
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def _ip_from_link(linktype: int, buf: bytes) -> dpkt.Packet | None:
    if linktype == 1:
        layer = dpkt.ethernet.Ethernet(buf).data
    elif linktype in (0, 108):
        layer = dpkt.loopback.Loopback(buf).data
    elif linktype in (101, 12, 14, 228, 229):
        layer = dpkt.ip.IP(buf) if buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
    elif linktype == 113:
        layer = dpkt.sll.SLL(buf).data
    elif linktype == 276:
        layer = dpkt.sll2.SLL2(buf).data
    elif linktype == 9:
        if buf[:2] == b"\xff\x03":  # HDLC address and control bytes
            buf = buf[2:]
        proto, inner = int.from_bytes(buf[:2], "big"), buf[2:]
        layer = (
            dpkt.ip.IP(inner) if proto == 0x21 else dpkt.ip6.IP6(inner) if proto == 0x57 else None
        )
    else:
        return None
    return layer if isinstance(layer, dpkt.ip.IP | dpkt.ip6.IP6) else None


def _addr(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def udp_datagrams(path: Path) -> Iterator[Datagram]:
    """Every UDP datagram of a pcap/pcapng file (IPv4/IPv6, unfragmented)."""
    with path.open("rb") as fh:
        magic = fh.read(4)
        fh.seek(0)
        reader = dpkt.pcapng.Reader(fh) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(fh)
        linktype = reader.datalink()
        frame = 0
        try:
            for ts, buf in reader:
                frame += 1
                try:
                    ip = _ip_from_link(linktype, buf)
                except (dpkt.dpkt.UnpackError, IndexError, ValueError):
                    continue
                if ip is None:
                    continue
                if isinstance(ip, dpkt.ip.IP) and (ip.mf or ip.offset):
                    continue  # a fragment
                udp = ip.data
                if not isinstance(udp, dpkt.udp.UDP):
                    continue
                yield Datagram(
                    frame=frame,
                    ts_ns=round(float(ts) * 1e9),
                    src=_addr(ip.src),
                    sport=udp.sport,
                    dst=_addr(ip.dst),
                    dport=udp.dport,
                    payload=bytes(udp.data),
                )
        except (dpkt.dpkt.NeedData, ValueError):
            return  # a damaged tail: the frames before it are what tshark saw too


@dataclass(frozen=True, slots=True)
class FlowEvent:
    frame: int
    client: tuple[str, int]
    server: tuple[str, int]
    event: QuicEvent


def run_quic(path: Path) -> list[FlowEvent]:
    """Drive every UDP flow that opens with a QUIC long header through QuicConnection."""
    flows: dict[frozenset[tuple[str, int]], tuple[tuple[str, int], QuicConnection]] = {}
    out: list[FlowEvent] = []
    for d in udp_datagrams(path):
        src, dst = (d.src, d.sport), (d.dst, d.dport)
        key = frozenset((src, dst))
        entry = flows.get(key)
        if entry is None:
            if not looks_like_quic_long_header(d.payload):
                continue
            entry = (src, QuicConnection())
            flows[key] = entry
        client, conn = entry
        server = dst if src == client else src
        for event in conn.receive_datagram(d.payload, from_client=src == client, ts_ns=d.ts_ns):
            out.append(FlowEvent(frame=d.frame, client=client, server=server, event=event))
    return out


def alpn_hex(client_hello: bytes) -> str:
    """The ALPN list of a ClientHello as truth.tsv writes it: hex names joined by ','."""
    pos = 4 + 2 + 32
    pos += 1 + client_hello[pos]
    pos += 2 + int.from_bytes(client_hello[pos : pos + 2], "big")
    pos += 1 + client_hello[pos]
    end = pos + 2 + int.from_bytes(client_hello[pos : pos + 2], "big")
    pos += 2
    while pos + 4 <= end:
        ext_type = int.from_bytes(client_hello[pos : pos + 2], "big")
        ext_len = int.from_bytes(client_hello[pos + 2 : pos + 4], "big")
        body = client_hello[pos + 4 : pos + 4 + ext_len]
        pos += 4 + ext_len
        if ext_type == 16:
            names, i = [], 2
            while i < len(body):
                names.append(body[i + 1 : i + 1 + body[i]].hex())
                i += 1 + body[i]
            return ",".join(names)
    return ""


def truth_rows(name: str) -> list[dict[str, str]]:
    """The rows of truth/NAME.tsv (NAME without extension)."""
    with (CORPUS / "truth" / f"{name}.tsv").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def index_rows() -> list[dict[str, str]]:
    with (CORPUS / "index.tsv").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
