"""QUIC v1 connection scripts for the benchmark generator: protected client Initials (one or
two, the latter with Chromium-style CRYPTO fragment reordering), the server's Initial and
Handshake, then 1-RTT short-header bulk whose bytes after the first are random."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gen_flows import Ctx, Frames, ip_text
from gen_hello import build_client_hello, server_hello_tls13
from gen_packets import Link
from gen_quic import InitialProtector, encode_varint, initial_keys

QUIC_CLIENT_DATAGRAM = 1200  # aioquic's first datagram (RFC 9000 minimum)
QUIC_CHROMIUM_DATAGRAM = 1250  # Chromium pads its Initials to 1250 bytes of UDP payload
QUIC_SHORT_MAX = 1350


@dataclass(frozen=True, slots=True)
class QuicSpec:
    template: str  # "aioquic" (one Initial) or "chromium" (two Initials)
    sni: str | None
    ipv6: bool
    n_bulk: int


def choose_quic(ctx: Ctx) -> QuicSpec:
    rng = ctx.rng
    template = "chromium" if rng.random() < 0.45 else "aioquic"
    n_bulk = int(rng.lognormvariate(3.0, 1.0)) + 2
    return QuicSpec(template, rng.choice(ctx.names), rng.random() < 0.15, min(n_bulk, 3000))


def _padded(frames: bytes, target_payload: int) -> bytes:
    return frames + bytes(max(0, target_payload - len(frames)))


def _initial_payload_room(dcid: bytes, scid: bytes, datagram: int, pn_len: int) -> int:
    """Plaintext bytes that make one Initial packet exactly ``datagram`` bytes long."""
    header = 1 + 4 + 1 + len(dcid) + 1 + len(scid) + 1 + 2
    return datagram - header - pn_len - 16


def quic_flow(ctx: Ctx, spec: QuicSpec) -> Frames:
    rng, tally = ctx.rng, ctx.tally
    ep, cport = ctx.endpoint(ipv6=spec.ipv6)
    tally.connections["quic"] += 1
    tally.ipv6_connections += spec.ipv6
    dcid = rng.randbytes(8)
    scid = rng.randbytes(8) if spec.template == "aioquic" else b""
    server_cid = rng.randbytes(8)
    tpl = ctx.q_aioquic if spec.template == "aioquic" else ctx.q_chromium
    ch = build_client_hello(tpl, rng, sni=spec.sni, offers=["h3"], quic_scid=scid)
    client = InitialProtector(initial_keys(dcid, server=False))
    server = InitialProtector(initial_keys(dcid, server=True))

    def crypto(off: int, data: bytes) -> bytes:
        return b"\x06" + encode_varint(off) + encode_varint(len(data)) + data

    link = Link(ep, cport, 443)

    def cdgram(payload: bytes) -> bytes:
        return link.udp(True, payload, ctx.next_ident())

    def sdgram(payload: bytes) -> bytes:
        return link.udp(False, payload, ctx.next_ident())

    pn_len = 1 if spec.template == "chromium" else 2
    if spec.template == "aioquic":
        room = _initial_payload_room(dcid, scid, QUIC_CLIENT_DATAGRAM, pn_len)
        packets = [_padded(crypto(0, ch), room)]
    else:
        # Chromium's chaos protection: the first packet carries the hello's first part in two
        # CRYPTO frames in reverse order, with PING and PADDING between them.
        room = _initial_payload_room(dcid, scid, QUIC_CHROMIUM_DATAGRAM, pn_len)
        cut = 1100 + rng.randrange(60)
        split = 200 + rng.randrange(400)
        first = b"\x00" * 3 + crypto(split, ch[split:cut]) + b"\x01" + crypto(0, ch[:split])
        packets = [_padded(first, room), _padded(crypto(cut, ch[cut:]), room)]
    key = "h3"
    for pn, plain in enumerate(packets):
        if pn == len(packets) - 1:
            tally.quic_client_hellos[key] += 1
            tally.quic_client_hellos_by_template[spec.template] += 1
            if len(packets) == 2:
                tally.quic_client_hellos_two_initials[key] += 1
            tally.note(
                kind="quic",
                client=ip_text(ep.cip),
                cport=cport,
                server=ip_text(ep.sip),
                sport=443,
                sni=spec.sni,
                offers=["h3"],
                initials=len(packets),
                dcid=dcid.hex(),
            )
        tally.quic_client_initial_packets += 1
        yield cdgram(
            client.protect(dcid=dcid, scid=scid, token=b"", pn=pn, pn_len=pn_len, payload=plain)
        )
    # Server: Initial (ACK + ServerHello) coalesced with a Handshake packet.
    sh = server_hello_tls13(rng, session_id=b"")
    ack = b"\x02" + encode_varint(len(packets) - 1) + b"\x00\x00\x00"
    s_init = server.protect(
        dcid=scid, scid=server_cid, token=b"", pn=0, pn_len=2, payload=ack + crypto(0, sh)
    )
    tally.quic_server_hellos += 1
    yield sdgram(s_init + _handshake_packet(ctx, scid, server_cid, 1200 - len(s_init)))
    yield sdgram(_handshake_packet(ctx, scid, server_cid, 700 + rng.randrange(500)))
    # Client: Initial ACK padded, coalesced with its Handshake Finished.
    hs = _handshake_packet(ctx, server_cid, scid, 90)
    c_ack = client.protect(
        dcid=server_cid,
        scid=scid,
        token=b"",
        pn=len(packets),
        pn_len=pn_len,
        payload=_padded(b"\x02\x00\x00\x00\x00", 40),
    )
    yield cdgram(c_ack + hs + bytes(QUIC_CLIENT_DATAGRAM - len(c_ack) - len(hs)))
    yield from quic_short(ctx, link, scid, server_cid, spec.n_bulk)


def _handshake_packet(ctx: Ctx, dcid: bytes, scid: bytes, size: int) -> bytes:
    """A QUIC v1 Handshake packet of ``size`` bytes whose protected contents are random."""
    rng = ctx.rng
    head = bytes([0xE0 | rng.randrange(16)]) + b"\x00\x00\x00\x01" + bytes([len(dcid)]) + dcid
    head += bytes([len(scid)]) + scid
    rest = size - len(head) - 2
    return head + struct.pack("!H", 0x4000 | rest) + ctx.payload(rest)


def quic_short(ctx: Ctx, link: Link, client_cid: bytes, server_cid: bytes, n_bulk: int) -> Frames:
    """1-RTT bulk: server short-header packets (random bytes), client ACKs every second one."""
    rng = ctx.rng
    for n in range(n_bulk):
        size = QUIC_SHORT_MAX if rng.random() < 0.7 else 60 + rng.randrange(1200)
        first = bytes([0x40 | rng.randrange(64)])
        body = first + client_cid + ctx.payload(size - 1 - len(client_cid))
        yield link.udp(False, body, ctx.next_ident())
        if n % 2 == 1:
            ack = (
                bytes([0x40 | rng.randrange(64)]) + server_cid + ctx.payload(25 + rng.randrange(20))
            )
            yield link.udp(True, ack, ctx.next_ident())


def quic_midstream_flow(ctx: Ctx, n_bulk: int, ipv6: bool) -> Frames:
    ep, cport = ctx.endpoint(ipv6=ipv6)
    ctx.tally.connections["quic_midstream"] += 1
    ctx.tally.ipv6_connections += ipv6
    yield from quic_short(ctx, Link(ep, cport, 443), b"", ctx.rng.randbytes(8), n_bulk)
