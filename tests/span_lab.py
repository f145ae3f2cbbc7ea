"""A span port made by the kernel: the two-namespace lab of ``tests/netns_lab.py``, plus a
monitor namespace that receives a mirror of each direction on its own port.

Linux mirrors a port with ``tc … action mirred egress mirror dev X`` (what a switch's SPAN
session does): here each end's egress on the lab's veth is mirrored to a veth whose other
end is in the monitor namespace, so the monitor sees

  ``span_c``: what the client sends (client -> server), ``span_s``: what the server sends,

each direction on its own interface, as an asymmetric span delivers it. Capturing on one of
them alone is a one-sided capture; on both (``-i span_c -i span_s``), the two directions
merge by time into one flow view.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.netns_lab import empty_namespace, lab_namespaces, run, without_ipv6


@dataclass(frozen=True)
class SpanLab:
    client: str  # namespace of the client (vc, 10.77.0.1)
    server: str  # namespace of the server (vs, 10.77.0.2)
    monitor: str  # namespace of the monitoring host: span_c and span_s


@contextlib.contextmanager
def span_namespaces() -> Iterator[SpanLab]:
    with lab_namespaces() as (client, server), empty_namespace("asm") as monitor:
        without_ipv6(monitor)
        for ns, dev, port, span in ((client, "vc", "mc", "span_c"),
                                    (server, "vs", "ms", "span_s")):  # fmt: skip
            run("ip", "-n", ns, "link", "add", port, "type", "veth", "peer", span,
                "netns", monitor)  # fmt: skip
            run("ip", "-n", ns, "link", "set", port, "up")
            run("ip", "-n", monitor, "link", "set", span, "mtu", "1500", "up")
            for where, name in ((ns, port), (monitor, span)):
                run("ip", "netns", "exec", where, "ethtool", "-K", name, "tso", "off",
                    "gso", "off", "gro", "off")  # fmt: skip
            try:
                run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "clsact")
                run("ip", "netns", "exec", ns, "tc", "filter", "add", "dev", dev, "egress",
                    "protocol", "all", "u32", "match", "u32", "0", "0",
                    "action", "mirred", "egress", "mirror", "dev", port)  # fmt: skip
            except (subprocess.CalledProcessError, FileNotFoundError) as err:
                why = getattr(err, "stderr", b"") or str(err).encode()
                pytest.skip(f"cannot mirror a port with tc here: {why.decode().strip()}")
        yield SpanLab(client, server, monitor)


@pytest.fixture(scope="module")
def span_lab() -> Iterator[SpanLab]:
    with span_namespaces() as lab:
        yield lab
