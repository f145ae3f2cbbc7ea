"""A two-namespace lab for the live tests: a veth at MTU 1500 with offloads off between a
client and a server namespace (``veth_pair`` for one test, ``veth_lab`` for a module), a TLS
1.2 server (openssl s_server, ALPN h2 and http/1.1) in one and a client handshake from the
other. Beside it, real servers for the server namespace (nginx with
captures/tools/nginx.conf.in, captures/tools/quic_server.py, a listener that never answers)
and clients for the client namespace (curl, captures/tools/quic_client.py, headless
Chromium, an openssl s_client left waiting), plus the server kernel's own count of accepted
connections. Needs root, ``ip``, ``ethtool``, ``ss`` and ``openssl`` (and each server or
client a test uses); a test using it is skipped with the reason otherwise."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_IP = "10.77.0.2"
PORT = 4433


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def without_ipv6(namespace: str) -> None:
    """IPv6 off in ``namespace``, for the links made there after: no neighbour discovery or
    MLD chatter, only the tests' own packets cross them."""
    for conf in ("all", "default"):
        run("ip", "netns", "exec", namespace, "sh", "-c",
            f"echo 1 > /proc/sys/net/ipv6/conf/{conf}/disable_ipv6")  # fmt: skip


@contextlib.contextmanager
def empty_namespace(prefix: str) -> Iterator[str]:
    """A network namespace of our own, named ``<prefix><6 hex>``, removed with what runs in
    it on exit; skips the test (with the reason) without root, ``ip`` or namespaces."""
    if os.geteuid() != 0:
        pytest.skip("a network namespace needs root")
    if shutil.which("ip") is None:
        pytest.skip("ip is not installed")
    ns = f"{prefix}{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        yield ns
    finally:
        _kill_in(ns)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@contextlib.contextmanager
def lab_namespaces() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth at MTU 1500, offloads off, IPv6 off (a quiet link: only
    the tests' own packets cross it): (client ns, server ns); removed, with what runs in them,
    on exit. Skips the test (with the reason) without root or the tools."""
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
        for ns in (client, server):
            without_ipv6(ns)
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
        for ns in (client, server):
            _kill_in(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _kill_in(namespace: str) -> None:
    """End what still runs in ``namespace`` (started by the tests: nothing else runs there)."""
    done = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    for pid in done.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


@pytest.fixture
def veth_pair() -> Iterator[tuple[str, str]]:
    """The lab's two namespaces for one test: (client ns, server ns)."""
    with lab_namespaces() as pair:
        yield pair


@pytest.fixture(scope="module")
def veth_lab() -> Iterator[tuple[str, str]]:
    """The lab's two namespaces shared by a module's tests (servers started once for them):
    (client ns, server ns)."""
    with lab_namespaces() as pair:
        yield pair


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


# ---------------------------------------------------------------- more servers and clients
# nginx (captures/tools/nginx.conf.in), aioquic (captures/tools/quic_*.py), a silent TCP
# listener; curl, aioquic, headless Chromium and a client left waiting for its answer.

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "captures" / "tools"
NGINX_H2 = 8443  # TLS 1.2 + 1.3, ALPN h2 and http/1.1
NGINX_TLS12 = 8445  # TLS 1.2 only, ALPN h2 and http/1.1: the choice visible in the ServerHello
QUIC_PORT = 4433  # UDP: aioquic's HTTP/3 server
SILENT_PORT = 4400  # TCP: accepts and never answers
WWW = "www.example.test"  # in captures/tools/cert.pem
PAGE = "<html><body>alpnsniff test page</body></html>\n"


def need_tool(name: str, *elsewhere: str) -> str:
    """The path of a program, or skip the test saying it is not installed."""
    path = shutil.which(name) or next((p for p in elsewhere if os.access(p, os.X_OK)), None)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def in_ns(namespace: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, *command]


def wait_listening(namespace: str, port: int, proto: str = "t", timeout: float = 10.0) -> None:
    """Until something listens on ``port`` (``proto`` t: TCP, u: UDP) in ``namespace``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run(
            in_ns(namespace, "ss", f"-Hln{proto}", f"sport = :{port}"),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.stdout.strip():
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}/{proto} in {namespace}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def nginx_server(server_ns: str) -> Iterator[Path]:
    """Debian's nginx with captures/tools/nginx.conf.in (one worker; the test certificate) on
    SERVER_IP, ports 8443 (h2) and 8445 (h2, TLS 1.2 only); yields its state folder (a
    temporary folder its worker, running as nobody, can read: removed at the end)."""
    nginx = need_tool("nginx", "/usr/sbin/nginx")
    state = Path(tempfile.mkdtemp(prefix="alpnsniff-nginx-"))
    state.chmod(0o755)
    www = state / "www"
    (state / "tmp").mkdir()
    www.mkdir(mode=0o755)
    (www / "index.html").write_text(PAGE)
    (www / "index.html").chmod(0o644)
    conf = (TOOLS / "nginx.conf.in").read_text()
    # nginx's own view of each request's connection: client port, TLS version, ALPN choice
    conf = conf.replace(
        "access_log @DIR@/access.log;",
        "log_format alpn '$remote_port $ssl_protocol $ssl_alpn_protocol $status';\n"
        "  access_log @DIR@/access.log alpn;",
    )
    for mark, value in (("@DIR@", state), ("@CERT@", TOOLS / "cert.pem"),
                        ("@KEY@", TOOLS / "key.pem")):  # fmt: skip
        conf = conf.replace(mark, str(value))
    (state / "nginx.conf").write_text(conf)
    log = (state / "stdout.log").open("wb")
    server = subprocess.Popen(
        in_ns(server_ns, nginx, "-c", str(state / "nginx.conf"), "-e", str(state / "error.log")),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_listening(server_ns, NGINX_H2)
        wait_listening(server_ns, NGINX_TLS12)
        yield state
    finally:
        _stop(server)
        log.close()
        shutil.rmtree(state, ignore_errors=True)


def nginx_requests(state: Path) -> list[tuple[int, str, str, int]]:
    """nginx's access log so far: (client port, TLS version as "1.3", ALPN choice or "",
    HTTP status) per request."""
    requests = []
    for line in (state / "access.log").read_text().splitlines():
        port, protocol, alpn, status = line.split()
        requests.append((int(port), protocol.removeprefix("TLSv"), alpn.strip("-"), int(status)))
    return requests


@dataclass(frozen=True)
class CurlRun:
    """What curl said of one fetch (``-v`` and ``-w``)."""

    http_version: str  # %{http_version}: "2", "1.1"
    status: int  # %{http_code}
    client_port: int  # %{local_port}
    offered: list[str]  # "ALPN: offers h2,http/1.1" (-v), [] when curl offers none
    accepted: str | None  # "ALPN: server accepted h2" (-v)
    tls_version: str  # "SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384" -> "1.3"
    cipher: str  # -> "TLS_AES_256_GCM_SHA384" (OpenSSL's name)


def curl_fetch(client_ns: str, port: int, *options: str, keylog: Path | None = None) -> CurlRun:
    """One ``curl -k https://www.example.test:PORT/`` (resolved to SERVER_IP) from the client
    namespace with ``options``; the page must come back whole."""
    curl = need_tool("curl")
    env = {**os.environ, "SSLKEYLOGFILE": str(keylog)} if keylog else None
    done = subprocess.run(
        in_ns(client_ns, curl, "-sS", "-v", "-k", "--resolve", f"{WWW}:{port}:{SERVER_IP}",
              "-w", "\\n%{http_version} %{http_code} %{local_port}", *options,
              f"https://{WWW}:{port}/"),
        capture_output=True, text=True, timeout=20, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body, _, written = done.stdout.rpartition("\n")
    assert body == PAGE, done.stdout
    version, status, client_port = written.split()
    offered: list[str] = []
    accepted = None
    tls = cipher = ""
    for line in done.stderr.splitlines():
        if m := re.match(r"\* ALPN: offers (\S+)$", line):
            offered = m[1].split(",")
        elif m := re.match(r"\* ALPN: server accepted (\S+)$", line):
            accepted = m[1]
        elif m := re.match(r"\* SSL connection using TLSv(\S+) / (\S+)$", line):
            tls, cipher = m[1], m[2]
    assert tls, done.stderr
    return CurlRun(version, int(status), int(client_port), offered, accepted, tls, cipher)


def cipher_suite_number(name: str) -> int:
    """The IANA number of an OpenSSL cipher suite name, as this machine's OpenSSL says."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers("ALL")
    for cipher in context.get_ciphers():
        if cipher["name"] == name:
            return int(cipher["id"]) & 0xFFFF
    raise LookupError(name)


def _aioquic_python() -> str:
    if importlib.util.find_spec("aioquic") is None:
        pytest.skip("aioquic is not installed (pip install aioquic)")
    return sys.executable


@contextlib.contextmanager
def quic_server(server_ns: str, state: Path) -> Iterator[None]:
    """captures/tools/quic_server.py (aioquic, ALPN h3, QUIC v1 and v2) on SERVER_IP,
    UDP QUIC_PORT, with the test certificate."""
    python = _aioquic_python()
    log = (state / "quic_server.log").open("wb")
    server = subprocess.Popen(
        in_ns(server_ns, python, str(TOOLS / "quic_server.py"), SERVER_IP, str(QUIC_PORT),
              "--cert", str(TOOLS / "cert.pem"), "--key", str(TOOLS / "key.pem")),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_listening(server_ns, QUIC_PORT, "u")
        yield
    finally:
        _stop(server)
        log.close()


def quic_fetch(client_ns: str, *, keylog: Path | None = None) -> str:
    """captures/tools/quic_client.py: one HTTP/3 GET (QUIC v1, ALPN h3, SNI
    quic.example.test) from the client namespace; its output, the page fetched."""
    python = _aioquic_python()
    extra = ["--keylog", str(keylog)] if keylog else []
    done = subprocess.run(
        in_ns(client_ns, python, str(TOOLS / "quic_client.py"), SERVER_IP, str(QUIC_PORT),
              "--sni", "quic.example.test", "--versions", "1", *extra),
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert "client negotiated ALPN h3" in done.stdout, done.stdout + done.stderr
    assert "hello over h3" in done.stdout, done.stdout + done.stderr
    return done.stdout


def chromium_fetch(client_ns: str, port: int, profile: Path) -> str:
    """Headless Chromium (root: no sandbox) from the client namespace: one page from nginx
    over TCP (QUIC off), www.example.test mapped to SERVER_IP; the DOM it dumps."""
    chromium = need_tool("chromium", "/usr/bin/chromium")
    done = subprocess.run(
        in_ns(client_ns, chromium, "--headless", "--no-sandbox", "--disable-gpu",
              "--disable-quic", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
              "--ignore-certificate-errors", f"--host-resolver-rules=MAP {WWW} {SERVER_IP}",
              "--dump-dom", f"https://{WWW}:{port}/"),
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert "alpnsniff test page" in done.stdout, done.stderr[-3000:]
    return done.stdout


_SILENT = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(8)
held = []
while True:  # every connection accepted, held open, never answered
    held.append(server.accept()[0])
"""


@contextlib.contextmanager
def silent_server(server_ns: str) -> Iterator[None]:
    """A TCP listener on SERVER_IP:SILENT_PORT that accepts and never sends a byte."""
    server = subprocess.Popen(
        in_ns(server_ns, sys.executable, "-c", _SILENT, SERVER_IP, str(SILENT_PORT)),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_listening(server_ns, SILENT_PORT)
        yield
    finally:
        _stop(server)


def waiting_client_hello(client_ns: str, port: int, sni: str) -> subprocess.Popen[bytes]:
    """openssl s_client sending one real ClientHello (ALPN h2, http/1.1) and then waiting
    for an answer that never comes: it sends nothing more until it is stopped."""
    return subprocess.Popen(
        in_ns(client_ns, "openssl", "s_client", "-connect", f"{SERVER_IP}:{port}",
              "-servername", sni, "-alpn", "h2,http/1.1"),
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def tcp_passive_opens(namespace: str) -> int:
    """TCP connections the namespace's kernel has accepted so far (/proc/net/snmp ``Tcp:
    PassiveOpens``, per namespace): the server side's count of connections, whoever made
    them."""
    done = subprocess.run(
        in_ns(namespace, "cat", "/proc/net/snmp"), capture_output=True, text=True, check=True
    )
    names, values = [line.split() for line in done.stdout.splitlines() if line.startswith("Tcp:")]
    return int(values[names.index("PassiveOpens")])


_FLOOD = """
import socket
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("127.0.0.1", 0))
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:  # to a bound port: no ICMP back; the sink's queue fills and the kernel drops
    try:
        sender.sendto(b"x" * 100, sink.getsockname())
    except OSError:
        pass
"""


@contextlib.contextmanager
def loopback_flood(namespace: str) -> Iterator[None]:
    """UDP datagrams sent as fast as one process can on the namespace's loopback (never on
    the veth)."""
    flood = subprocess.Popen(in_ns(namespace, sys.executable, "-c", _FLOOD))
    try:
        time.sleep(0.2)
        yield
    finally:
        _stop(flood)


def capturing_on(namespace: str, interface: str, count: int = 1) -> bool:
    """Whether ``count`` running packet sockets are bound to ``interface`` in ``namespace``
    (its /proc/net/packet; no other program opens one there): a live capture is ready."""
    done = subprocess.run(
        in_ns(namespace, "sh", "-c", f"cat /sys/class/net/{interface}/ifindex /proc/net/packet"),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    ifindex, _header, *sockets = done.stdout.splitlines()
    # sk RefCnt Type Proto Iface R Rmem User Inode
    return sum(line.split()[4:6] == [ifindex, "1"] for line in sockets) >= count


def wait_capturing(
    namespace: str,
    interface: str,
    proc: subprocess.Popen[bytes],
    count: int = 1,
    timeout: float = 10.0,
) -> None:
    """Wait until ``proc`` (an ``alpnsniff live``) captures on ``interface``: its socket is
    bound (it then takes every packet: the ring is set up before bind); fails the test with
    its stderr if it ends or does not get there in time."""
    deadline = time.monotonic() + timeout
    while not capturing_on(namespace, interface, count):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"alpnsniff live did not start capturing: {(err or b'').decode()}")
        time.sleep(0.02)
