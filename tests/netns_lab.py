"""A two-namespace lab for the live tests: a veth at MTU 1500 with offloads off between a
client and a server namespace, a TLS 1.2 server (openssl s_server, ALPN h2 and http/1.1) in
one and a client handshake from the other. Needs root, ``ip``, ``ethtool``, ``ss`` and
``openssl``; a test using it is skipped with the reason otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_IP = "10.77.0.2"
PORT = 4433


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def veth_pair() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth at MTU 1500, offloads off, IPv6 off (a quiet link: only
    the tests' own packets cross it): (client ns, server ns)."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces and a packet socket need root")
    for tool in ("ip", "ethtool", "openssl", "ss"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    tag = uuid.uuid4().hex[:6]
    client, server = f"asc{tag}", f"ass{tag}"
    try:
        run("ip", "netns", "add", client)
        run("ip", "netns", "add", server)
    except subprocess.CalledProcessError as err:
        subprocess.run(["ip", "netns", "del", client], capture_output=True)
        pytest.skip(f"cannot make network namespaces here: {err.stderr.decode().strip()}")
    try:
        for ns in (client, server):  # no IPv6: no neighbour discovery chatter on the link
            for conf in ("all", "default"):
                run("ip", "netns", "exec", ns, "sh", "-c",
                    f"echo 1 > /proc/sys/net/ipv6/conf/{conf}/disable_ipv6")  # fmt: skip
        run(
            "ip",
            "link",
            "add",
            "vc",
            "netns",
            client,
            "type",
            "veth",
            "peer",
            "vs",
            "netns",
            server,
        )
        for ns, dev, addr in ((client, "vc", "10.77.0.1/24"), (server, "vs", "10.77.0.2/24")):
            run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "mtu", "1500", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run(
                "ip",
                "netns",
                "exec",
                ns,
                "ethtool",
                "-K",
                dev,
                "tso",
                "off",
                "gso",
                "off",
                "gro",
                "off",
            )
        yield client, server
    finally:
        subprocess.run(["ip", "netns", "del", client], capture_output=True)
        subprocess.run(["ip", "netns", "del", server], capture_output=True)


def start_tls_server(server_ns: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """openssl s_server on SERVER_IP:PORT (TLS 1.2: its ALPN choice is visible), listening."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
        "-out", str(cert), "-days", "1", "-subj", "/CN=ring.test")  # fmt: skip
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "openssl", "s_server", "-accept", str(PORT), "-cert",
         str(cert), "-key", str(key), "-alpn", "h2,http/1.1", "-tls1_2", "-quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        probe = subprocess.run(
            ["ip", "netns", "exec", server_ns, "ss", "-ltn", f"sport = :{PORT}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if str(PORT) in probe.stdout:
            break
        time.sleep(0.05)
    return server


def tls_handshake(client_ns: str, host: str = SERVER_IP) -> bytes:
    """One openssl s_client handshake offering h2 and http/1.1; its output."""
    done = subprocess.run(
        ["ip", "netns", "exec", client_ns, "openssl", "s_client", "-connect",
         f"{host}:{PORT}", "-alpn", "h2,http/1.1", "-tls1_2", "-servername", "ring.test"],
        input=b"", capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert b"ALPN protocol: h2" in done.stdout, done.stdout[-2000:]
    return done.stdout
