"""Flood captures for alpnsniff's memory benchmarks: one kind of hostile traffic per file, with one
real, complete handshake hidden near the end.

    python bench/gen_floods.py KIND OUT.pcap [--count N] [--seed S]
                               [--duration-s T | --rate PPS] [--sha256]

KIND is one of:

- ``syn``: N half-open connections, one SYN each to port 443 (no SYN-ACK).
- ``stalled-hello``: N connections: SYN, SYN-ACK, ACK, then a complete real ClientHello (Chromium
  1.9 KB in two segments, curl 512 B or openssl s_client, patched by ``gen_hello``). The server
  never sends anything again and the connection never closes.
- ``quic-garbage``: N UDP/443 datagrams of 1200 bytes, each a QUIC v1 long-header Initial with a
  random 8-byte DCID and SCID from its own client port; the rest is random, so decryption fails.
- ``partial-hello``: N connections: TCP handshake, then the first 15,360 bytes of a 16,389-byte
  TLS record holding a real Chromium ClientHello padded (extension 21) to 16,384 bytes, in MSS-size
  segments (the server ACKs every second one). The hello is never completed.

After about 95% of the flood's packets, the real handshake of a real capture is replayed with its
own relative timing, interleaved with the flood: ``captures/openssl_tls12_h2.pcap`` (TLS 1.2, SNI
www.example.test, offer h2,http/1.1, ServerHello selects h2 in the clear) for the TCP kinds,
``captures/aioquic_h3_v1.pcap`` (QUIC v1, SNI quic.example.test, offer h3, selection encrypted:
no key log) for ``quic-garbage``. Its payloads, TCP sequence numbers, flags, options and windows
are the capture's; its addresses become 172.16.99.2 -> 192.0.2.99 and its server port 443 (all
checksums recomputed), so it can be told apart from the flood, which uses 10.0.0.0/8 clients.

Capture time: flood packets are evenly spaced. By default at 20,000 packets/s, but the whole flood
is squeezed into 60 s when that rate would make it longer: idle eviction (alpnsniff forgets a
connection silent for 120 s of capture time) then never helps, and only byte and count budgets
bound memory. ``--rate PPS`` sets the rate with no cap (``--rate 2000`` spreads 1M SYNs over
500 s, so idle eviction takes part); ``--duration-s T`` spreads the flood over exactly T seconds.

Output is classic pcap (Ethernet, microsecond timestamps, ``gen_packets.PcapWriter``). The same
arguments give the same bytes. Prints one JSON line: what was written, and the real handshake's
frame number, addresses, SNI and the ``alpn_selected``/``selection`` alpnsniff should report.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import math
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dpkt
from gen_capture import sha256_file
from gen_flows import Ctx, Frames, Tally, Tcp
from gen_hello import EXT_PADDING, HelloTemplate, build_client_hello, record
from gen_packets import ACK, PSH, Endpoint, Link, PcapWriter

KINDS = ("syn", "stalled-hello", "quic-garbage", "partial-hello")
# The counts of the memory report (bench/run_floods.py uses them too).
DEFAULT_COUNTS = {
    "syn": 1_000_000,
    "stalled-hello": 200_000,
    "quic-garbage": 100_000,
    "partial-hello": 20_000,
}
CAPTURES = Path(__file__).resolve().parents[1] / "captures"

# Capture start: 2027-01-15 08:00:00 UTC.
START_US = 1_800_000_000 * 1_000_000
DEFAULT_RATE_PPS = 20_000
# Default cap on the flood's capture time: well inside alpnsniff's 120 s idle timeout.
DEFAULT_MAX_SPAN_S = 60.0
# The real handshake starts after this share of the flood's packets.
REAL_AT = 0.95
# Flood connections in progress at once (their packets are interleaved at random).
CONCURRENT = 64
# Distinct client (address, port) pairs: connection i uses host i // HOST_CONNS and one of
# HOST_CONNS ports of it; hosts are spread over 10.0.0.0/8 by an odd multiplier (a bijection).
HOST_CONNS = 1000
PORT_SLOTS = 28  # 32768 + 1000 * 28 = 60768: the ports stay in Linux's ephemeral range

QUIC_DATAGRAM = 1200
QUIC_V1 = 1
# partial-hello: the size the record claims (the handshake message fills a whole 16 KiB record)
# and how much of the record is sent.
PARTIAL_MESSAGE = 16_384
PARTIAL_SENT = 15_360
# stalled-hello templates, by connection number (the packet count must be known in advance).
STALLED_TEMPLATES = ("chromium", "curl", "chromium", "openssl")

REAL_CLIENT = bytes([172, 16, 99, 2])
REAL_SERVER = bytes([192, 0, 2, 99])
REAL_CLIENT_MAC = bytes.fromhex("02a1b2c3d4e5")


@dataclasses.dataclass(frozen=True)
class RealHandshake:
    """A real capture's handshake and what alpnsniff should report for it."""

    capture: str
    transport: str
    sni: str
    alpn_offered: tuple[str, ...]
    alpn_selected: str | None
    selection: str


# As captures/README.md describes them (tshark: 4:1[h2,http/1.1] 6:2,11,12,14[h2]; QUIC 1:1[h3]).
REAL = {
    "tcp": RealHandshake(
        "openssl_tls12_h2.pcap", "tcp", "www.example.test", ("h2", "http/1.1"), "h2", "visible"
    ),
    "quic": RealHandshake(
        "aioquic_h3_v1.pcap", "quic", "quic.example.test", ("h3",), None, "encrypted"
    ),
}


def real_frames(real: RealHandshake, smac: bytes) -> tuple[list[tuple[int, bytes]], int, int]:
    """The real capture's frames rebuilt on the flood's addressing: (µs after its first packet,
    frame) each, the index of the ClientHello frame, and the client port."""
    out: list[tuple[int, bytes]] = []
    link: Link | None = None
    client: tuple[bytes, int] | None = None
    hello = -1
    t0: float | None = None
    with (CAPTURES / real.capture).open("rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            l4 = ip.data
            if t0 is None:
                t0 = ts
                client = (bytes(ip.src), l4.sport)
                link = Link(
                    Endpoint(REAL_CLIENT, REAL_SERVER, REAL_CLIENT_MAC, smac), l4.sport, 443
                )
            assert link is not None
            to_server = (bytes(ip.src), l4.sport) == client
            payload = bytes(l4.data)
            if isinstance(l4, dpkt.tcp.TCP):
                opts = bytes(l4.opts)
                frame = link.tcp(to_server, l4.seq, l4.ack, l4.flags, payload, opts, l4.win, ip.id)
                is_hello = to_server and payload[:1] == b"\x16"
            else:
                frame = link.udp(to_server, payload, ip.id)
                is_hello = to_server
            if is_hello and hello < 0:
                hello = len(out)
            out.append((round((ts - t0) * 1e6), frame))
    assert client is not None and hello >= 0
    return out, hello, client[1]


class Flood:
    """One kind's connection scripts on the flood's addressing (IPv4, server port 443)."""

    def __init__(self, kind: str, seed: int) -> None:
        self.kind = kind
        self.ctx = Ctx(seed, Tally())
        self.rng = self.ctx.rng
        chromium = self.ctx.chromium
        self.partial_tpl = dataclasses.replace(
            chromium,
            extensions=(*chromium.extensions, (EXT_PADDING, b"")),
            total_len=PARTIAL_MESSAGE,
        )
        self.tcp_mss = 1460 - 12  # gen_flows.Tcp on IPv4 (timestamps option on every segment)

    def endpoint(self, i: int) -> tuple[Endpoint, int]:
        host, slot = divmod(i, HOST_CONNS)
        cip = (0x0A000000 | ((host * 0x9E3779B1 + 0x2A5F1) & 0xFFFFFF)).to_bytes(4, "big")
        cport = 32768 + slot * PORT_SLOTS + host % PORT_SLOTS
        sip = self.rng.choice(self.ctx.servers4)
        return Endpoint(cip, sip, b"\x02\x00" + cip, self.ctx.gw_mac), cport

    def _template(self, name: str) -> HelloTemplate:
        return {"chromium": self.ctx.chromium, "curl": self.ctx.curl, "openssl": self.ctx.openssl}[
            name
        ]

    def packets_per_connection(self, i: int) -> int:
        if self.kind in ("syn", "quic-garbage"):
            return 1
        if self.kind == "stalled-hello":
            name = STALLED_TEMPLATES[i % len(STALLED_TEMPLATES)]
            return 3 + math.ceil((self._template(name).total_len + 5) / self.tcp_mss)
        segs = math.ceil(PARTIAL_SENT / self.tcp_mss)
        return 3 + segs + (segs + 1) // 2  # + a server ACK after every second and the last

    def flow(self, i: int) -> Frames:
        ep, cport = self.endpoint(i)
        if self.kind == "quic-garbage":
            yield Link(ep, cport, 443).udp(True, self._garbage_initial(), self.ctx.next_ident())
            return
        t = Tcp(self.ctx, ep, cport, 443)
        if self.kind == "syn":
            yield next(t.handshake())
            return
        yield from t.handshake()
        sni = self.rng.choice(self.ctx.names)
        if self.kind == "stalled-hello":
            tpl = self._template(STALLED_TEMPLATES[i % len(STALLED_TEMPLATES)])
            ch = build_client_hello(tpl, self.rng, sni=sni, offers=tpl.offers())
            rec = record(0x16, ch, 0x0301)
            for pos in range(0, len(rec), t.mss):
                yield t.c(rec[pos : pos + t.mss], ACK | PSH)
            return
        ch = build_client_hello(self.partial_tpl, self.rng, sni=sni, offers=["h2", "http/1.1"])
        assert len(ch) == PARTIAL_MESSAGE
        yield from t.send_c(record(0x16, ch, 0x0301)[:PARTIAL_SENT])

    def _garbage_initial(self) -> bytes:
        """A QUIC v1 long-header Initial (type 0, token length 0) filling a 1200-byte datagram;
        first-byte low bits, packet number and payload random: it cannot be decrypted."""
        rng = self.rng
        head = (
            bytes([0xC0 | rng.getrandbits(4)])
            + struct.pack("!I", QUIC_V1)
            + b"\x08"
            + rng.randbytes(8)
            + b"\x08"
            + rng.randbytes(8)
            + b"\x00"
        )
        rest = QUIC_DATAGRAM - len(head) - 2
        return head + struct.pack("!H", 0x4000 | rest) + rng.randbytes(rest)


def _interleave(rng: Any, make: Callable[[int], Frames], count: int) -> Iterator[bytes]:
    """The frames of ``count`` connections, CONCURRENT of them in progress at once, the next
    packet's connection picked at random."""
    active: list[Frames] = []
    started = 0
    while started < min(count, CONCURRENT):
        active.append(make(started))
        started += 1
    while active:
        i = int(rng.random() * len(active))
        frame = next(active[i], None)
        if frame is not None:
            yield frame
        elif started < count:
            active[i] = make(started)
            started += 1
        else:
            active[i] = active[-1]
            active.pop()


def flood_span_us(flood_packets: int, duration_s: float | None, rate: float | None) -> int:
    """Capture time from the first flood packet to the last one's slot, in µs."""
    if duration_s is not None:
        return round(duration_s * 1e6)
    if rate is not None:
        return round(flood_packets / rate * 1e6)
    return round(min(flood_packets / DEFAULT_RATE_PPS, DEFAULT_MAX_SPAN_S) * 1e6)


def generate(
    kind: str,
    out: Path,
    count: int,
    seed: int = 1,
    duration_s: float | None = None,
    rate: float | None = None,
) -> dict[str, Any]:
    """Write the flood capture and return its summary (the JSON line, without timing)."""
    if kind not in KINDS:
        raise ValueError(f"unknown flood kind {kind!r} (one of {', '.join(KINDS)})")
    if count < 1:
        raise ValueError("--count must be at least 1")
    if (duration_s is not None and duration_s < 0) or (rate is not None and rate <= 0):
        raise ValueError("--duration-s must be >= 0 and --rate > 0")
    flood = Flood(kind, seed)
    real = REAL["quic" if kind == "quic-garbage" else "tcp"]
    reals, hello_index, real_cport = real_frames(real, flood.ctx.gw_mac)
    flood_packets = sum(map(flood.packets_per_connection, range(count)))
    span = flood_span_us(flood_packets, duration_s, rate)
    real_at = int(flood_packets * REAL_AT)
    pending: list[tuple[int, int, bytes]] = []  # the real frames not yet written: (ts, n, frame)
    hello_frame = 0
    written = 0
    with out.open("wb") as fh:
        writer = PcapWriter(fh)
        for written, frame in enumerate(_interleave(flood.rng, flood.flow, count)):
            ts = START_US + written * span // flood_packets
            if written == real_at:
                pending = [(ts + rel, n, f) for n, (rel, f) in enumerate(reals)]
                heapq.heapify(pending)
            while pending and pending[0][0] <= ts:
                rts, n, rframe = heapq.heappop(pending)
                if n == hello_index:
                    hello_frame = writer.packets + 1
                writer.write(rts, rframe)
            writer.write(ts, frame)
        if written + 1 != flood_packets:
            raise AssertionError(f"planned {flood_packets} flood packets, wrote {written + 1}")
        for rts, n, rframe in sorted(pending):
            if n == hello_index:
                hello_frame = writer.packets + 1
            writer.write(rts, rframe)
        writer.close()
    return {
        "kind": kind,
        "count": count,
        "seed": seed,
        "file": str(out),
        "packets": writer.packets,
        "bytes": writer.bytes,
        "flood_packets": flood_packets,
        "flood_duration_s": round(span / 1e6, 6),
        "flood_rate_pps": round(flood_packets / (span / 1e6), 1) if span else None,
        "real": {
            "capture": f"captures/{real.capture}",
            "frames": len(reals),
            "frame": hello_frame,
            "ts_s": round(real_at * span // flood_packets / 1e6, 6),  # after the flood's start
            "transport": real.transport,
            "client_ip": ".".join(map(str, REAL_CLIENT)),
            "client_port": real_cport,
            "server_ip": ".".join(map(str, REAL_SERVER)),
            "server_port": 443,
            "sni": real.sni,
            "alpn_offered": list(real.alpn_offered),
            "alpn_selected": real.alpn_selected,
            "selection": real.selection,
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=KINDS, help="what the flood is made of")
    ap.add_argument("out", type=Path, help="pcap file to write")
    ap.add_argument("--count", type=int, help="flood connections (default: the kind's default)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (same seed, same bytes)")
    timing = ap.add_mutually_exclusive_group()
    timing.add_argument(
        "--duration-s",
        type=float,
        help="spread the flood over exactly this much capture time "
        f"(default: {DEFAULT_RATE_PPS} packets/s, at most {DEFAULT_MAX_SPAN_S:g} s)",
    )
    timing.add_argument("--rate", type=float, help="flood packets per second of capture time")
    ap.add_argument("--sha256", action="store_true", help="add the file's sha256 to the line")
    args = ap.parse_args(argv)
    count = args.count if args.count is not None else DEFAULT_COUNTS[args.kind]
    t0 = time.perf_counter()
    try:
        summary = generate(args.kind, args.out, count, args.seed, args.duration_s, args.rate)
    except ValueError as exc:
        ap.error(str(exc))
    summary["generation_seconds"] = round(time.perf_counter() - t0, 3)
    if args.sha256:
        summary["sha256"] = sha256_file(args.out)
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
