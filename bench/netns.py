"""Two network namespaces joined by a veth, for the replay benchmark (bench/replay_bench.py).

The sender namespace holds one end (``tx_dev``), the receiver namespace the other
(``rx_dev``). The link carries only what is replayed into it: no IP addresses, IPv6 disabled
through /proc/sys before the veth exists and on both ends (no neighbour discovery, no MLD
reports), both ends up. Offloads are turned off with ethtool and the MTU is set high enough
for the generated capture (its frames reach 1534 bytes; a frame bigger than the MTU is
dropped by the veth without a count anywhere we look).

Needs root, ``ip`` (iproute2) and ``ethtool``. :class:`VethLab` is a context manager; leaving
it (normally, on an exception or on Ctrl-C) deletes both namespaces, which deletes the veth.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from types import TracebackType

DEFAULT_MTU = 1600
# every offload ethtool may know on a veth; each is turned off on its own (a name that the
# device does not have must not stop the others)
OFFLOADS = ("rx", "tx", "sg", "tso", "gso", "gro", "lro", "rxvlan", "txvlan")


class LabError(RuntimeError):
    """The namespaces or the veth could not be made (the reason is the message)."""


def missing_requirements() -> str | None:
    """Why the lab cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces and packet sockets need root"
    for tool in ("ip", "ethtool"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise LabError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


class VethLab:
    """Namespaces ``tx_ns`` and ``rx_ns``, veth ends ``tx_dev`` and ``rx_dev`` (see the
    module docstring). Names carry a random tag so that two runs never collide."""

    def __init__(self, mtu: int = DEFAULT_MTU, prefix: str = "rb") -> None:
        tag = uuid.uuid4().hex[:6]
        self.tx_ns, self.rx_ns = f"{prefix}tx{tag}", f"{prefix}rx{tag}"
        self.tx_dev, self.rx_dev = f"{prefix}t{tag}", f"{prefix}r{tag}"
        self.mtu = mtu
        self.offloads_off: dict[str, list[str]] = {}  # device -> the offloads turned off
        self._made: list[str] = []

    def __enter__(self) -> VethLab:
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _make(self) -> None:
        for ns in (self.tx_ns, self.rx_ns):
            _run("ip", "netns", "add", ns)
            self._made.append(ns)
            for conf in ("all", "default"):
                self.sysctl(ns, f"net/ipv6/conf/{conf}/disable_ipv6", "1")
        _run("ip", "link", "add", self.tx_dev, "netns", self.tx_ns, "type", "veth",
             "peer", self.rx_dev, "netns", self.rx_ns)  # fmt: skip
        for ns, dev in ((self.tx_ns, self.tx_dev), (self.rx_ns, self.rx_dev)):
            self.sysctl(ns, f"net/ipv6/conf/{dev}/disable_ipv6", "1")
            _run("ip", "-n", ns, "link", "set", dev, "mtu", str(self.mtu))
            off = []
            for feature in OFFLOADS:
                done = subprocess.run(
                    [*self.exec_in(ns), "ethtool", "-K", dev, feature, "off"],
                    capture_output=True, timeout=30, check=False,
                )  # fmt: skip
                if done.returncode == 0:
                    off.append(feature)
            self.offloads_off[dev] = off
            _run("ip", "-n", ns, "link", "set", dev, "up")

    def sysctl(self, ns: str, key: str, value: str) -> None:
        _run(*self.exec_in(ns), "sh", "-c", f"echo {value} > /proc/sys/{key}")

    @staticmethod
    def exec_in(ns: str) -> list[str]:
        """The command prefix that runs a program in namespace ``ns`` (with its own /sys)."""
        return ["ip", "netns", "exec", ns]

    def packet_sockets(self, ns: str) -> int:
        """How many packet sockets are open in ``ns`` (the lines of its /proc/net/packet):
        a capture tool has its socket bound once this grows."""
        out = _run(*self.exec_in(ns), "cat", "/proc/net/packet")
        return max(0, len(out.splitlines()) - 1)

    def rx_counters(self) -> dict[str, int]:
        """The receiving end's interface counters (rx_packets, rx_dropped, ...)."""
        out: dict[str, int] = {}
        base = f"/sys/class/net/{self.rx_dev}/statistics"
        for name in ("rx_packets", "rx_bytes", "rx_dropped"):
            out[name] = int(_run(*self.exec_in(self.rx_ns), "cat", f"{base}/{name}").strip())
        return out

    def close(self) -> None:
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._made.clear()


def mounted_namespaces() -> list[str]:
    """The named namespaces that exist (``ip netns list``), for a check after cleanup."""
    path = Path("/run/netns")
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []
