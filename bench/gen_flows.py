"""Connection scripts for the benchmark generator: each flow is a generator of Ethernet frames.

A flow records what the capture will contain (ClientHellos, ServerHellos, ...) in the shared
``Tally`` *just before* yielding the frame that completes it, so that a capture cut after N
packets counts exactly what was written.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import templates
from gen_hello import (
    HelloTemplate,
    build_client_hello,
    client_hello_session_id,
    handshake,
    record,
    server_hello_tls12,
    server_hello_tls13,
)
from gen_packets import ACK, FIN, PSH, SYN, Endpoint, Link
from gen_tls13 import SECRET_LEN, TLS_AES_128_GCM_SHA256, keylog_line, server_flight

Frames = Iterator[bytes]

# Size of the random-byte pool that encrypted payloads are sliced from.
POOL_BYTES = 1 << 20
# TCP timestamps option on every segment after the handshake: NOP NOP TS(10).
TS_OPT_LEN = 12
# Ephemeral ports (32768-60999) that tshark 4.0 hands to another dissector before TLS/QUIC
# (from `tshark -G decodes`; e.g. UDP 41170 "manolito" hides a QUIC Initial). Clients never
# use them, so tshark's counts stay comparable with the truth.
TSHARK_CLAIMED_PORTS = frozenset(
    {
        34962,
        34980,
        37008,
        41170,
        44321,
        44322,
        44818,
        45564,
        47000,
        47808,
        48049,
        48898,
        49999,
        54328,
        56000,
        56001,
        56500,
        56501,
        57000,
        57001,
        57032,
        57033,
        57500,
        57501,
        57532,
        57533,
        59000,
        59001,
        59032,
        59033,
        59500,
        59501,
        59532,
        59533,
        60001,
    }
)


def alpn_key(offers: list[str] | None) -> str:
    """How tshark's tls.handshake.extensions_alpn_str prints an offer list ("" = no ALPN)."""
    return ",".join(offers) if offers else ""


@dataclass
class Tally:
    """Everything the generated capture contains that a dissector should find."""

    tcp_client_hellos: Counter[str] = field(default_factory=Counter)
    tcp_client_hellos_two_segments: Counter[str] = field(default_factory=Counter)
    tcp_client_hellos_by_template: Counter[str] = field(default_factory=Counter)
    tcp_ch_retransmitted: Counter[str] = field(default_factory=Counter)
    tcp_ch_out_of_order: Counter[str] = field(default_factory=Counter)
    tcp_server_hellos: Counter[str] = field(default_factory=Counter)
    tcp_server_hello_versions: Counter[str] = field(default_factory=Counter)
    tcp_tls13_flights: Counter[str] = field(default_factory=Counter)  # in / not in key log
    tcp_decryptable_ee: Counter[str] = field(default_factory=Counter)  # EE ALPN, keys logged
    tcp_decryptable_ee_ooo: Counter[str] = field(default_factory=Counter)  # of those, CH reordered
    quic_client_hellos: Counter[str] = field(default_factory=Counter)
    quic_client_hellos_two_initials: Counter[str] = field(default_factory=Counter)
    quic_client_hellos_by_template: Counter[str] = field(default_factory=Counter)
    quic_client_initial_packets: int = 0
    quic_server_hellos: int = 0
    connections: Counter[str] = field(default_factory=Counter)
    ipv6_connections: int = 0
    truth: list[dict[str, Any]] | None = None
    keylog: list[str] | None = None  # key log lines not yet written

    def note(self, **fields: Any) -> None:
        if self.truth is not None:
            self.truth.append(fields)


class Ctx:
    """Shared state of one generation run: the RNG, templates, address pools, the tally."""

    def __init__(self, seed: int, tally: Tally) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self._random = rng.random
        self.tally = tally
        self.pool = rng.randbytes(POOL_BYTES)
        letters = b'abcdefghijklmnopqrstuvwxyz      <>/="\n'
        self.text = bytes(rng.choice(letters) for _ in range(1 << 16))
        self.chromium = HelloTemplate.parse("chromium", templates.CH_CHROMIUM_TCP, shuffle=True)
        self.curl = HelloTemplate.parse("curl", templates.CH_CURL)
        self.openssl = HelloTemplate.parse("openssl", templates.CH_OPENSSL)
        self.q_aioquic = HelloTemplate.parse("aioquic", templates.CH_QUIC_AIOQUIC)
        self.q_chromium = HelloTemplate.parse("chromium", templates.CH_QUIC_CHROMIUM, shuffle=True)
        self.gw_mac = bytes.fromhex("00005e0001") + rng.randbytes(1)
        self.clients4 = [
            (
                bytes([10, 20 + rng.randrange(8), rng.randrange(256), 1 + rng.randrange(254)]),
                b"\x02" + rng.randbytes(5),
            )
            for _ in range(400)
        ]
        self.clients6 = [
            (bytes.fromhex("fd0012340000") + rng.randbytes(10), b"\x02" + rng.randbytes(5))
            for _ in range(80)
        ]
        nets = (b"\xc6\x33\x64", b"\xcb\x00\x71", b"\xc0\x00\x02")  # the RFC 5737 ranges
        self.servers4 = [rng.choice(nets) + bytes([1 + rng.randrange(254)]) for _ in range(300)]
        self.servers6 = [bytes.fromhex("20010db8") + rng.randbytes(12) for _ in range(80)]
        prefixes = (
            "www",
            "api",
            "cdn",
            "static",
            "img",
            "login",
            "mail",
            "app",
            "m",
            "assets",
            "edge",
            "media",
            "update",
            "accounts",
            "video",
            "push",
        )
        bases = (
            "example.com",
            "example.net",
            "example.org",
            "shop.example",
            "news.example",
            "bank.example",
            "social.example",
            "search.example",
            "cloud.example",
            "maps.example",
            "play.example",
            "stream.example",
        )
        self.names = [f"{p}.{b}" for p in prefixes for b in bases]
        self.names += [f"r{n}---sn-{rng.randrange(10**6):06d}.video.example" for n in range(40)]
        self.used_ports: set[tuple[bytes, int]] = set()
        self.ident = rng.randrange(65536)

    def payload(self, n: int) -> bytes:
        off = int(self._random() * (POOL_BYTES - n))
        return self.pool[off : off + n]

    def endpoint(self, *, ipv6: bool) -> tuple[Endpoint, int]:
        """A fresh (client, server) host pair and a client port not used before in the run."""
        rng = self.rng
        if ipv6:
            cip, cmac = rng.choice(self.clients6)
            sip = rng.choice(self.servers6)
        else:
            cip, cmac = rng.choice(self.clients4)
            sip = rng.choice(self.servers4)
        while True:
            port = 32768 + rng.randrange(28232)
            if (cip, port) not in self.used_ports and port not in TSHARK_CLAIMED_PORTS:
                self.used_ports.add((cip, port))
                break
        return Endpoint(cip, sip, cmac, self.gw_mac), port

    def next_ident(self) -> int:
        self.ident += 1
        return self.ident


class Tcp:
    """Sequence numbers, timestamps and segment building for one TCP connection."""

    __slots__ = ("cseq", "ctx", "link", "mss", "sseq", "tsc", "tss")

    def __init__(self, ctx: Ctx, ep: Endpoint, cport: int, sport: int) -> None:
        rng = ctx.rng
        self.ctx = ctx
        self.link = Link(ep, cport, sport)
        self.cseq = rng.getrandbits(32)
        self.sseq = rng.getrandbits(32)
        self.tsc = rng.getrandbits(31)
        self.tss = rng.getrandbits(31)
        # MSS 1460 (IPv4) / 1440 (IPv6) minus the 12-byte timestamps option.
        self.mss = (1440 if ep.ipv6 else 1460) - TS_OPT_LEN

    def _opts(self, to_server: bool) -> bytes:
        self.tsc += 1
        self.tss += 1
        a, b = (self.tsc, self.tss) if to_server else (self.tss, self.tsc)
        return b"\x01\x01\x08\x0a" + struct.pack("!II", a & 0xFFFFFFFF, b & 0xFFFFFFFF)

    def c(self, payload: bytes = b"", flags: int = ACK, seq: int | None = None) -> bytes:
        """A client-to-server segment; advances the client sequence unless ``seq`` is given."""
        s = self.cseq if seq is None else seq
        frame = self.link.tcp(
            True,
            s,
            self.sseq,
            flags,
            payload,
            self._opts(True),
            502,
            self.ctx.next_ident(),
        )
        if seq is None:
            self.cseq += len(payload) + (1 if flags & FIN else 0)
        return frame

    def s(self, payload: bytes = b"", flags: int = ACK) -> bytes:
        frame = self.link.tcp(
            False,
            self.sseq,
            self.cseq,
            flags,
            payload,
            self._opts(False),
            509,
            self.ctx.next_ident(),
        )
        self.sseq += len(payload) + (1 if flags & FIN else 0)
        return frame

    def handshake(self) -> Frames:
        mss = self.mss + TS_OPT_LEN
        syn_opts = (
            struct.pack("!BBH", 2, 4, mss)
            + b"\x04\x02\x08\x0a"
            + struct.pack("!II", self.tsc, 0)
            + b"\x01\x03\x03\x07"
        )
        yield self.link.tcp(
            True,
            self.cseq,
            0,
            SYN,
            b"",
            syn_opts,
            64240,
            self.ctx.next_ident(),
        )
        self.cseq += 1
        syn_opts = (
            struct.pack("!BBH", 2, 4, mss)
            + b"\x04\x02\x08\x0a"
            + struct.pack("!II", self.tss, self.tsc)
            + b"\x01\x03\x03\x07"
        )
        yield self.link.tcp(
            False,
            self.sseq,
            self.cseq,
            SYN | ACK,
            b"",
            syn_opts,
            65160,
            self.ctx.next_ident(),
        )
        self.sseq += 1
        yield self.c()

    def send_s(self, data: bytes) -> Frames:
        """Server data cut at the MSS, the client ACKing every second segment."""
        starts = range(0, len(data), self.mss)
        for n, i in enumerate(starts):
            yield self.s(data[i : i + self.mss], ACK | PSH)
            if n % 2 == 1 or n == len(starts) - 1:
                yield self.c()

    def send_c(self, data: bytes) -> Frames:
        starts = range(0, len(data), self.mss)
        for n, i in enumerate(starts):
            yield self.c(data[i : i + self.mss], ACK | PSH)
            if n % 2 == 1 or n == len(starts) - 1:
                yield self.s()

    def close(self) -> Frames:
        yield self.c(flags=FIN | ACK)
        yield self.s(flags=FIN | ACK)
        yield self.c()

    def bulk(self, n_segments: int, *, download: bool = True) -> Frames:
        """TLS ApplicationData records, one per segment, mostly full-sized."""
        rng, ctx = self.ctx.rng, self.ctx
        for n in range(n_segments):
            r = rng.random()
            size = self.mss if r < 0.75 else 64 + int((r - 0.75) * 4 * (self.mss - 64))
            rec = b"\x17\x03\x03" + struct.pack("!H", size - 5) + ctx.payload(size - 5)
            if download:
                yield self.s(rec, ACK | PSH if n % 8 == 7 else ACK)
                if n % 2 == 1:
                    yield self.c()
            else:
                yield self.c(rec, ACK)
                if n % 2 == 1:
                    yield self.s()


@dataclass(frozen=True, slots=True)
class TlsSpec:
    """What one TLS-over-TCP connection will look like (chosen at spawn)."""

    template: str
    offers: list[str] | None
    sni: str | None
    version: str  # "1.2" or "1.3"
    selected: str | None  # the server's choice (in EncryptedExtensions for TLS 1.3)
    port: int
    ipv6: bool
    n_bulk: int
    download: bool
    retransmit_ch: bool
    reorder_ch: bool
    secret: bytes | None  # TLS 1.3: SERVER_HANDSHAKE_TRAFFIC_SECRET (TLS_AES_128_GCM_SHA256)
    keylogged: bool  # TLS 1.3: the secret goes into the key log (half of the connections)


def choose_tls(ctx: Ctx) -> TlsSpec:
    """Draw a connection: client template, offer list, SNI, version, server's choice."""
    rng = ctx.rng
    r = rng.random()
    sni: str | None = rng.choice(ctx.names)
    offers: list[str] | None
    if r < 0.5:
        template, offers = "chromium", ["h2", "http/1.1"]
    elif r < 0.75:
        template = "curl"
        curl_offers: list[list[str] | None] = [["h2", "http/1.1"], ["http/1.1"], None]
        offers = rng.choices(curl_offers, [50, 30, 20])[0]
        if rng.random() < 0.15:
            sni = None  # curl to an IP literal
    else:
        template = "openssl"
        rare: list[list[str] | None] = [
            ["acme-tls/1"],
            ["dot"],
            ["imap"],
            ["h2", "http/1.1", "spdy/3.1"],
        ]
        choice = rng.choices([["h2"], ["http/1.1"], None, *rare], [35, 25, 25, 4, 4, 4, 3])[0]
        offers = list(choice) if choice is not None else None
    port = {"dot": 853, "imap": 993}.get(offers[0] if offers else "", 443)
    version = "1.3" if rng.random() < 0.7 else "1.2"
    selected: str | None = None
    if offers:
        selected = offers[0]
        if offers[:2] == ["h2", "http/1.1"] and rng.random() < 0.15:
            selected = "http/1.1"  # a server without HTTP/2
        if rng.random() < 0.05:
            selected = None  # a server without ALPN support
    n_bulk = int(rng.lognormvariate(3.3, 1.0)) + 2
    secret = rng.randbytes(SECRET_LEN) if version == "1.3" else None
    return TlsSpec(
        template,
        offers,
        sni,
        version,
        selected,
        port,
        rng.random() < 0.15,
        min(n_bulk, 3000),
        rng.random() < 0.9,
        rng.random() < 0.02,
        rng.random() < 0.06,
        secret,
        secret is not None and rng.random() < 0.5,
    )


def tls_flow(ctx: Ctx, spec: TlsSpec) -> Frames:
    rng, tally = ctx.rng, ctx.tally
    ep, cport = ctx.endpoint(ipv6=spec.ipv6)
    t = Tcp(ctx, ep, cport, spec.port)
    tally.connections["tls"] += 1
    tally.ipv6_connections += spec.ipv6
    yield from t.handshake()
    tpl = {"chromium": ctx.chromium, "curl": ctx.curl, "openssl": ctx.openssl}[spec.template]
    ch = build_client_hello(tpl, rng, sni=spec.sni, offers=spec.offers)
    rec = record(0x16, ch, 0x0301)
    segs = [rec[i : i + t.mss] for i in range(0, len(rec), t.mss)]
    key = alpn_key(spec.offers)
    base = t.cseq
    order = list(range(len(segs)))
    reorder = spec.reorder_ch and len(segs) == 2
    if reorder:
        order.reverse()  # the second segment overtakes the first
    retransmit = spec.retransmit_ch and not reorder
    if retransmit:
        order.insert(1, order[0])  # the first segment sent twice (a retransmission)
    offsets = [sum(len(s) for s in segs[:i]) for i in range(len(segs))]
    for n, i in enumerate(order):
        if n == len(order) - 1:
            tally.tcp_client_hellos[key] += 1
            tally.tcp_client_hellos_by_template[spec.template] += 1
            if len(segs) == 2:
                tally.tcp_client_hellos_two_segments[key] += 1
            if reorder:
                tally.tcp_ch_out_of_order[key] += 1
            if retransmit:
                tally.tcp_ch_retransmitted["two_segments" if len(segs) == 2 else "one"] += 1
            tally.note(
                kind="tls",
                client=ip_text(ep.cip),
                cport=cport,
                server=ip_text(ep.sip),
                sport=spec.port,
                sni=spec.sni,
                offers=spec.offers,
                segments=len(segs),
                retransmitted=retransmit,
                out_of_order=reorder,
                version=spec.version,
                selected=spec.selected if spec.version == "1.2" else None,
                ee_selected=spec.selected if spec.version == "1.3" else None,
                keylog=spec.keylogged,
            )
        yield t.c(segs[i], ACK | PSH, seq=base + offsets[i])
    t.cseq = base + len(rec)
    yield t.s()
    sid = client_hello_session_id(ch)
    if spec.version == "1.2":
        sh = server_hello_tls12(rng, selected=spec.selected, session_id=rng.randbytes(32))
        tally.tcp_server_hellos[spec.selected or ""] += 1
        tally.tcp_server_hello_versions["1.2"] += 1
        flight = record(0x16, sh) + record(0x16, templates.SERVER_TLS12_TAIL)
        yield from t.send_s(flight)
        cke = handshake(16, b"\x20" + rng.randbytes(32))
        yield t.c(
            record(0x16, cke) + record(0x14, b"\x01") + record(0x16, rng.randbytes(40)), ACK | PSH
        )
        nst = handshake(4, struct.pack("!IH", 7200, 192) + rng.randbytes(192))
        yield t.s(
            record(0x16, nst) + record(0x14, b"\x01") + record(0x16, rng.randbytes(40)), ACK | PSH
        )
    else:
        assert spec.secret is not None
        sh = server_hello_tls13(rng, session_id=sid, cipher=TLS_AES_128_GCM_SHA256)
        tally.tcp_server_hellos[""] += 1
        tally.tcp_server_hello_versions["1.3"] += 1
        enc = server_flight(rng, spec.secret, spec.selected, 905 + rng.randrange(3000))
        frames = t.send_s(record(0x16, sh) + record(0x14, b"\x01") + enc)
        first = next(frames)  # the EncryptedExtensions record ends in the first segment
        tally.tcp_tls13_flights["in_keylog" if spec.keylogged else "not_in_keylog"] += 1
        if spec.keylogged:
            tally.tcp_decryptable_ee[spec.selected or ""] += 1
            tally.tcp_decryptable_ee_ooo[spec.selected or ""] += reorder
            if tally.keylog is not None:
                tally.keylog.append(keylog_line(ch[6:38], spec.secret))
        yield first
        yield from frames
        yield t.c(record(0x14, b"\x01") + record(0x17, ctx.payload(53)), ACK | PSH)
        yield t.s(record(0x17, ctx.payload(250)) + record(0x17, ctx.payload(250)), ACK | PSH)
    yield t.c(record(0x17, ctx.payload(80 + rng.randrange(600))), ACK | PSH)
    yield from t.bulk(spec.n_bulk, download=spec.download)
    yield from t.close()


def tls_midstream_flow(ctx: Ctx, n_bulk: int, ipv6: bool) -> Frames:
    """A TLS connection already running when the capture starts: data and a close only."""
    ep, cport = ctx.endpoint(ipv6=ipv6)
    t = Tcp(ctx, ep, cport, 443)
    ctx.tally.connections["tls_midstream"] += 1
    ctx.tally.ipv6_connections += ipv6
    yield from t.bulk(n_bulk)
    yield from t.close()


def ip_text(raw: bytes) -> str:
    import ipaddress

    return str(ipaddress.ip_address(raw))
