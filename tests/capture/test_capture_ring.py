"""The live capture path: a TPACKET_V3 ring on a veth between two network namespaces.

Real traffic: ``openssl s_server`` in one namespace, ``openssl s_client`` in the other, and
the ring (``alpnsniff.capture.ring.RingSource``) on the client's end of the veth feeding the
same ``CaptureRun`` as a file. The handshake made must come out with its offer and the
server's choice, and the kernel's counts must say nothing was dropped. Needs root (network
namespaces, CAP_NET_RAW), ``ip``, ``ethtool`` and ``openssl``; skipped with the reason
otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import subprocess_env
from tests.netns_lab import start_tls_server, tls_handshake

CAPTURE = r"""
import json, os, sys
from alpnsniff.capture.ring import RingSource
from alpnsniff.pipeline import CaptureRun
iface, stop_file = sys.argv[1], sys.argv[2]
with RingSource(iface, timeout_ms=50, should_stop=lambda: os.path.exists(stop_file)) as src:
    print("ready", flush=True)
    run = CaptureRun(src)
    for h in run.records():
        print(json.dumps({"alpn_offered": [a.decode() for a in h.alpn_offered_raw],
                          "alpn_selected": (h.alpn_selected_raw or b"").decode(),
                          "selection": h.selection.value, "server_port": h.server_port}))
    result = run.result([])
    print(json.dumps({"packets": result.stats["packets"], "kernel_packets": src.kernel_packets,
                      "kernel_drops": src.kernel_drops}))
"""


def test_the_ring_records_a_real_handshake(veth_pair: tuple[str, str], tmp_path: Path) -> None:
    client, server = veth_pair
    stop = tmp_path / "stop"
    sniffer = subprocess.Popen(
        ["ip", "netns", "exec", client, sys.executable, "-P", "-c", CAPTURE, "vc", str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    s_server = start_tls_server(server, tmp_path)
    try:
        assert sniffer.stdout is not None
        assert sniffer.stdout.readline().strip() == "ready"
        tls_handshake(client)
        time.sleep(0.3)  # the ring retires the last block after its 50 ms timeout
        stop.touch()
        out, err = sniffer.communicate(timeout=30)
    finally:
        s_server.kill()
        s_server.wait()
        if sniffer.poll() is None:
            sniffer.kill()
            sniffer.wait()
    assert sniffer.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    records, counts = lines[:-1], lines[-1]
    assert records == [
        {"alpn_offered": ["h2", "http/1.1"], "alpn_selected": "h2", "selection": "visible",
         "server_port": 4433}
    ]  # fmt: skip
    assert counts["kernel_drops"] == 0
    # the packets dissected (the handshake's dozen at least) are those the kernel put in the
    # ring, but for any that came after the last block was handed on
    assert 8 <= counts["packets"] <= counts["kernel_packets"]
