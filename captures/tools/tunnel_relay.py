"""User-space stand-in for kernel tunnels the capture machine's kernel lacks.

The kernel this project's captures were made on has no CONFIG_VLAN_8021Q, CONFIG_NET_IPGRE
or CONFIG_NET_IPIP, so `ip link add ... type vlan` and `ip tunnel add ... mode gre|ipip`
fail with "Unknown device type" / "No such device".  This relay does the encapsulation
the kernel would do, so real TLS traffic between real clients and servers crosses a real
veth wrapped exactly as on the wire (RFC 2784 GRE, RFC 2003 IP-in-IP, IEEE 802.1Q/802.1ad):

  gre  LOCAL REMOTE TUNDEV ADDR/PLEN   TUN device (L3) <-> IP proto 47 raw socket
  ipip LOCAL REMOTE TUNDEV ADDR/PLEN   TUN device (L3) <-> IP proto 4 raw socket
  vlan PARENT TAPDEV ADDR/PLEN TAG...  TAP device (L2) <-> AF_PACKET on PARENT, pushing
                                       the tags (outermost first), e.g. 0x88a8:100 0x8100:20

Run one relay per endpoint, inside that endpoint's network namespace; it configures the
device itself, prints "ready" and runs until killed (or --seconds elapse).
"""

import argparse
import fcntl
import os
import select
import socket
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_TAP, IFF_NO_PI = 0x0001, 0x0002, 0x1000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
VLAN_TPIDS = (0x8100, 0x88A8)
MAX_FRAME = 65535


def open_tun(name: str, flags: int) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags | IFF_NO_PI))
    return fd


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def configure(dev: str, addr: str, mtu: int) -> None:
    # addrgenmode none: no IPv6 link-local chatter (RS/ND) through the tunnel
    ip("link", "set", "dev", dev, "addrgenmode", "none")
    ip("link", "set", "dev", dev, "mtu", str(mtu))
    ip("addr", "add", addr, "dev", dev)
    ip("link", "set", "dev", dev, "up")


def l3_relay(a: argparse.Namespace, proto: int) -> None:
    fd = open_tun(a.dev, IFF_TUN)
    # GRE 24 bytes of overhead (outer IPv4 20 + GRE 4), IP-in-IP 20: stay under the veth's 1500
    configure(a.dev, a.addr, 1476 if proto == 47 else 1480)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    s.bind((a.local, 0))
    print("ready", flush=True)
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd, s], [], [], 0.5)
        if fd in r:
            inner = os.read(fd, MAX_FRAME)
            if inner and inner[0] >> 4 == 4:
                # GRE header: no checksum/key/sequence, version 0, protocol type IPv4
                payload = struct.pack("!HH", 0, 0x0800) + inner if proto == 47 else inner
                s.sendto(payload, (a.remote, 0))
        if s in r:
            pkt, (src, _) = s.recvfrom(MAX_FRAME)
            if src != a.remote or len(pkt) < 20:
                continue
            body = pkt[(pkt[0] & 0x0F) * 4 :]
            if proto == 47:
                if len(body) < 4 or body[:4] != b"\x00\x00\x08\x00":
                    continue
                body = body[4:]
            os.write(fd, body)


def vlan_relay(a: argparse.Namespace) -> None:
    tags = []
    for t in a.tags:
        tpid, vid = t.split(":")
        tags.append(struct.pack("!HH", int(tpid, 0), int(vid)))
    fd = open_tun(a.dev, IFF_TAP)
    configure(a.dev, a.addr, 1500)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.parent, ETH_P_ALL))
    print("ready", flush=True)
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd, s], [], [], 0.5)
        if fd in r:
            frame = os.read(fd, MAX_FRAME)
            if len(frame) >= 14:
                s.send(frame[:12] + b"".join(tags) + frame[12:])
        if s in r:
            frame, addr = s.recvfrom(MAX_FRAME)
            if addr[2] == PACKET_OUTGOING or len(frame) < 14:
                continue
            # the receiving kernel already moved the outermost tag to skb metadata;
            # drop whatever tags are still in the frame
            while len(frame) >= 18 and struct.unpack_from("!H", frame, 12)[0] in VLAN_TPIDS:
                frame = frame[:12] + frame[16:]
            os.write(fd, frame)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=120.0)
    sub = p.add_subparsers(dest="mode", required=True)
    for m in ("gre", "ipip"):
        q = sub.add_parser(m)
        q.add_argument("local")
        q.add_argument("remote")
        q.add_argument("dev")
        q.add_argument("addr")
    q = sub.add_parser("vlan")
    q.add_argument("parent")
    q.add_argument("dev")
    q.add_argument("addr")
    q.add_argument("tags", nargs="+")
    a = p.parse_args()
    if a.mode == "vlan":
        vlan_relay(a)
    else:
        l3_relay(a, 47 if a.mode == "gre" else 4)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
