"""The notebook API on a live interface: ``alpnsniff.sniff`` and ``alpnsniff.stream`` on
loopback, around real TLS handshakes Python's ssl makes there (a server and a client in
this process, TLS 1.2 so that the server's choice is visible). Needs root (CAP_NET_RAW)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

import alpnsniff

TOOLS = Path(__file__).resolve().parents[1] / "captures" / "tools"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a packet socket needs root")


def _handshakes(port_holder: list[int], n: int, delay: float) -> threading.Thread:
    """A thread that, after ``delay`` s, makes ``n`` TLS 1.2 handshakes on 127.0.0.1 (a
    server offering h2, a client offering h2 and http/1.1); the port in ``port_holder``."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(TOOLS / "cert.pem", TOOLS / "key.pem")
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.set_alpn_protocols(["h2"])
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.set_alpn_protocols(["h2", "http/1.1"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port_holder.append(listener.getsockname()[1])

    def serve() -> None:
        for _ in range(n):
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"x")

    def run() -> None:
        time.sleep(delay)
        server = threading.Thread(target=serve)
        server.start()
        for _ in range(n):
            raw = socket.create_connection(("127.0.0.1", port_holder[0]), timeout=10)
            with client_ctx.wrap_socket(raw, server_hostname="api.test") as tls:
                assert tls.selected_alpn_protocol() == "h2"
                tls.recv(1)
        server.join()
        listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_sniff_returns_the_handshakes_as_a_dataframe() -> None:
    port: list[int] = []
    worker = _handshakes(port, 2, delay=0.5)
    df = alpnsniff.sniff("lo", duration=2.5, filter=f"tcp port {port[0]}")
    worker.join(timeout=10)
    assert len(df) == 2
    assert df["alpn_offered"].map(list).tolist() == [["h2", "http/1.1"]] * 2
    assert df["alpn_selected"].tolist() == ["h2", "h2"]
    assert df["selection"].astype(str).tolist() == ["visible", "visible"]
    assert set(df["sni"]) == {"api.test"} and set(df["server_port"]) == {port[0]}
    assert (df["capture"] == "lo").all()
    stats = df.attrs["stats"]
    assert stats["kernel_packets"] >= stats["packets"] > 0
    assert stats.get("kernel_drops", 0) == 0


def test_stream_yields_each_record_as_it_completes_and_stops_when_left() -> None:
    port: list[int] = []
    worker = _handshakes(port, 1, delay=0.5)
    started = time.monotonic()
    records = alpnsniff.stream("lo", duration=30, filter=f"tcp port {port[0]}")
    first = next(records)
    took = time.monotonic() - started
    records.close()  # leaving the loop closes the capture
    worker.join(timeout=10)
    assert (first.alpn_selected_raw, first.selection.value) == (b"h2", "visible")
    assert took < 10  # long before the 30 s are over: as it completed


def test_an_interrupt_ends_sniff_with_what_it_saw() -> None:
    port: list[int] = []
    worker = _handshakes(port, 1, delay=0.5)
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        df = alpnsniff.sniff("lo", filter=f"tcp port {port[0]}")  # no limit: until interrupted
    finally:
        timer.cancel()  # (a sniff that ended early must not leave the signal to come)
    worker.join(timeout=10)
    assert df["alpn_selected"].tolist() == ["h2"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        alpnsniff.sniff("lo", duration=0)
    with pytest.raises(ValueError, match="count"):
        alpnsniff.sniff("lo", count=-1)
    with pytest.raises(alpnsniff.errors.CaptureError, match="no such interface"):
        alpnsniff.sniff("no-such-if0", duration=1)
