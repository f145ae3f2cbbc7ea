"""Non-TLS background traffic for the benchmark generator: DNS over UDP, plain HTTP on port 80
and SSH on port 22. None of it carries a TLS handshake; a dissector must skip it cheaply."""

from __future__ import annotations

import struct

from gen_flows import Ctx, Frames, Tcp
from gen_packets import ACK, PSH, Link

SSH_BANNER_CLIENT = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
SSH_BANNER_SERVER = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n"
SSH_KEX_NAMES = (
    b"sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
    b"ecdh-sha2-nistp256,ext-info-c",
    b"ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256,ssh-ed25519,rsa-sha2-512",
    b"chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com",
    b"chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com",
    b"umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    b"umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    b"none,zlib@openssh.com",
    b"none,zlib@openssh.com",
    b"",
    b"",
)


def _qname(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def dns_flow(ctx: Ctx) -> Frames:
    """One query and its answer (A or AAAA, one or two records)."""
    rng = ctx.rng
    ipv6 = rng.random() < 0.15
    ep, cport = ctx.endpoint(ipv6=ipv6)
    link = Link(ep, cport, 53)
    ctx.tally.connections["dns"] += 1
    qtype = 28 if rng.random() < 0.3 else 1
    qid = rng.randrange(65536)
    question = _qname(rng.choice(ctx.names)) + struct.pack("!HH", qtype, 1)
    yield link.udp(
        True,
        struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question,
        ctx.next_ident(),
    )
    n = 1 + rng.randrange(2)
    rdlen = 16 if qtype == 28 else 4
    answers = b"".join(
        struct.pack("!HHHIH", 0xC00C, qtype, 1, 60 + rng.randrange(3000), rdlen)
        + rng.randbytes(rdlen)
        for _ in range(n)
    )
    yield link.udp(
        False,
        struct.pack("!HHHHHH", qid, 0x8180, 1, n, 0, 0) + question + answers,
        ctx.next_ident(),
    )


def http_flow(ctx: Ctx) -> Frames:
    """A plain HTTP/1.1 GET on port 80 and a text response of a few segments."""
    rng = ctx.rng
    ep, cport = ctx.endpoint(ipv6=rng.random() < 0.15)
    ctx.tally.connections["http"] += 1
    t = Tcp(ctx, ep, cport, 80)
    yield from t.handshake()
    path = "/" + "/".join(
        rng.choice(("static", "img", "api", "v1", "news", "index"))
        for _ in range(1 + rng.randrange(3))
    )
    req = (
        f"GET {path} HTTP/1.1\r\nHost: {rng.choice(ctx.names)}\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: */*\r\n\r\n"
    ).encode()
    yield t.c(req, ACK | PSH)
    size = 200 + rng.randrange(20000)
    off = rng.randrange(len(ctx.text) - size)
    body = ctx.text[off : off + size]
    head = (
        f"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    yield from t.send_s(head + body)
    yield from t.close()


def ssh_flow(ctx: Ctx) -> Frames:
    """Banners, KEXINITs in the clear, then encrypted packets (random bytes) both ways."""
    rng = ctx.rng
    ep, cport = ctx.endpoint(ipv6=rng.random() < 0.15)
    ctx.tally.connections["ssh"] += 1
    t = Tcp(ctx, ep, cport, 22)
    yield from t.handshake()
    yield t.s(SSH_BANNER_SERVER, ACK | PSH)
    yield t.c(SSH_BANNER_CLIENT, ACK | PSH)
    for send in (t.c, t.s):
        body = (
            b"\x14"
            + rng.randbytes(16)
            + b"".join(struct.pack("!I", len(n)) + n for n in SSH_KEX_NAMES)
            + b"\x00\x00\x00\x00\x00"
        )
        pad = 8 - (len(body) + 5) % 8 + 8
        yield send(struct.pack("!IB", len(body) + pad + 1, pad) + body + bytes(pad), ACK | PSH)
    for _ in range(4 + int(rng.lognormvariate(2.0, 1.0))):
        if rng.random() < 0.5:
            yield t.c(ctx.payload(36 + 16 * rng.randrange(8)), ACK | PSH)
        else:
            yield t.s(ctx.payload(36 + 16 * rng.randrange(80)), ACK | PSH)
    yield from t.close()
