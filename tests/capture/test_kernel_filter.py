"""The kernel filter of a packet socket (alpnsniff.capture.kernel_filter).

- The program is tcpdump's: ``tcpdump -y TYPE -s SNAPLEN -ddd EXPR`` prints the same
  instructions, the snapshot length as the accept value.
- DEFAULT_FILTER keeps what the dissector needs: on every capture of the repository and of
  the corpus the records with the filter (the user-space ``-f``, the same libpcap code) are
  those without; a frame it drops is, decoded independently with dpkt, a TCP segment
  without payload and without SYN/FIN/RST, and every such segment of plain or one-tag
  Ethernet is dropped.
- In the kernel (a network namespace of our own, loopback): a socket with the default
  filter and a snapshot length receives every frame an unfiltered socket receives but the
  pure ACKs, each cut to the snapshot length.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest

from alpnsniff.capture import BpfError, BpfFilter, open_capture
from alpnsniff.capture.bpf import BPF_INSN_SIZE
from alpnsniff.capture.kernel_filter import (
    DEFAULT_FILTER,
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    compile_program,
    default_filter,
)
from alpnsniff.keys.keylog import KeyLog
from alpnsniff.pipeline import analyze_file
from tests.conftest import CAPTURES, CORPUS, subprocess_env
from tests.netns_lab import empty_namespace

TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not on PATH")

OWN = sorted(p for p in CAPTURES.glob("*.pcap*") if p.suffix in (".pcap", ".pcapng", ".gz"))
CORPUS_PCAPS = sorted((CORPUS / "pcaps").glob("*")) if (CORPUS / "pcaps").is_dir() else []


class DefaultFilter:
    """The default filter of each frame's link type, as a frame filter for the pipeline
    (a file may mix link types; the default expression depends on the link type)."""

    def __init__(self) -> None:
        self.programs: dict[int, BpfFilter | None] = {}

    def __call__(self, linktype: int, data: bytes) -> bool:
        if linktype not in self.programs:
            expression = default_filter(linktype)
            self.programs[linktype] = BpfFilter(expression) if expression else None
        program = self.programs[linktype]
        return program is None or program(linktype, data)


def _keylog(path: Path) -> KeyLog | None:
    keys = path.with_name(path.name.split(".")[0] + ".keys")
    if not keys.exists():
        return None
    log = KeyLog()
    log.load(keys)
    return log


def _tcpdump_ddd(linktype_name: str, snaplen: int, expression: str) -> bytes:
    assert TCPDUMP is not None
    out = subprocess.run(
        [TCPDUMP, "-y", linktype_name, "-s", str(snaplen), "-ddd", expression],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split()  # fmt: skip
    count, numbers = int(out[0]), [int(x) for x in out[1:]]
    assert len(numbers) == 4 * count
    return b"".join(
        (numbers[i]).to_bytes(2, sys.byteorder)
        + bytes((numbers[i + 1], numbers[i + 2]))
        + (numbers[i + 3]).to_bytes(4, sys.byteorder)
        for i in range(0, len(numbers), 4)
    )


@needs_tcpdump
@pytest.mark.parametrize(
    ("linktype", "name", "snaplen"),
    [(LINKTYPE_ETHERNET, "EN10MB", 262144), (LINKTYPE_ETHERNET, "EN10MB", 96),
     (LINKTYPE_RAW, "RAW", 1500), (113, "LINUX_SLL", 200), (276, "LINUX_SLL2", 65535),
     (0, "NULL", 128)],
)  # fmt: skip
def test_the_program_is_tcpdumps(linktype: int, name: str, snaplen: int) -> None:
    expression = default_filter(linktype)
    insns = compile_program(expression, linktype, snaplen)
    assert insns == _tcpdump_ddd(name, snaplen, expression)
    # the last instruction accepts the frame, cut to the snapshot length
    assert insns[-8:] == (6).to_bytes(2, sys.byteorder) + b"\0\0" + snaplen.to_bytes(
        4, sys.byteorder
    )


def test_the_expressions_compile_for_their_link_types() -> None:
    # loopback reads as Ethernet on Linux (ring.py); tun / WireGuard as raw IP
    assert default_filter(LINKTYPE_ETHERNET) == DEFAULT_FILTER
    assert "vlan" in DEFAULT_FILTER
    for linktype in (1, 101, 12, 228, 229, 113, 276, 0, 108):
        assert len(compile_program(default_filter(linktype), linktype, 262144)) > BPF_INSN_SIZE
    # the Ethernet expression cannot be compiled for raw IP (no VLAN there): one a link type
    with pytest.raises(BpfError, match="no VLAN support"):
        compile_program(DEFAULT_FILTER, LINKTYPE_RAW, 262144)
    # a link type without a fixed header: keep everything
    assert default_filter(147) == ""
    assert compile_program("", 147, 100) == (6).to_bytes(2, sys.byteorder) + b"\0\0" + (
        100
    ).to_bytes(4, sys.byteorder)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(BpfError, match="bad snapshot length 300000"):
        compile_program("tcp", 1, 300000)
    with pytest.raises(BpfError, match="bad filter 'tcp port x' for link type 1"):
        compile_program("tcp port x", 1, 100)
    with pytest.raises(BpfError, match="NUL"):
        compile_program("tcp\0", 1, 100)
    # 0 is tcpdump's "the largest"
    assert compile_program("", 1, 0)[-4:] == (262144).to_bytes(4, sys.byteorder)


def _records_equal(path: Path) -> tuple[int, int]:
    """Assert the filtered run's records are the unfiltered run's; (dropped, packets)."""
    plain = analyze_file(path, keylog=_keylog(path))
    filtered = analyze_file(path, keylog=_keylog(path), frame_filter=DefaultFilter())
    assert filtered.handshakes == plain.handshakes, path.name
    assert filtered.stats["packets"] == plain.stats["packets"]
    return filtered.stats["packets_filtered_out"], plain.stats["packets"]


def test_default_filter_keeps_every_record_of_our_captures() -> None:
    dropped = {path.name: _records_equal(path) for path in OWN}
    # the filter drops something where there are pure ACKs: every plain TCP capture has them
    assert dropped["openssl_tls12_h2.pcap"][0] > 0
    assert dropped["openssl_tls12_vlan.pcap"][0] > 0  # one 802.1Q tag
    assert dropped["openssl_any_sll2.pcap"][0] > 0  # Linux cooked v2
    assert dropped["openssl_aioquic_ipv6.pcap"][0] > 0  # IPv6
    # tunnels and two tags are kept whole: the dissector unwraps them, and counts
    for name in ("openssl_tls12_gre.pcap", "openssl_tls12_vxlan.pcap", "openssl_tls12_qinq.pcap"):
        assert dropped[name][0] == 0, name


@pytest.mark.shared
@pytest.mark.skipif(not CORPUS_PCAPS, reason=f"{CORPUS / 'pcaps'} is absent")
def test_default_filter_keeps_every_record_of_the_corpus() -> None:
    total = dropped = 0
    for path in CORPUS_PCAPS:
        d, n = _records_equal(path)
        dropped += d
        total += n
    assert 0 < dropped < total


def _pure_ack(linktype: int, data: bytes) -> bool | None:
    """Decoded with dpkt: is the frame a TCP segment (IPv4 unfragmented, or IPv6 with TCP
    next) without payload and without SYN/FIN/RST, on Ethernet with at most one tag or raw
    IP? None for a frame of another link type."""
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return False
        etype, at = int.from_bytes(data[12:14], "big"), 14
        if etype in (0x8100, 0x88A8, 0x9100) and len(data) >= 18:
            etype, at = int.from_bytes(data[16:18], "big"), 18
        ip_bytes = data[at:] if etype in (0x0800, 0x86DD) else b""
    elif linktype == LINKTYPE_RAW:
        ip_bytes = data
    else:
        return None
    if not ip_bytes:
        return False
    try:
        ip: dpkt.ip.IP | dpkt.ip6.IP6
        if ip_bytes[0] >> 4 == 4:
            ip = dpkt.ip.IP(ip_bytes)
            if ip.p != 6 or ip.mf or ip.offset:
                return False
            tcp_len = ip.len - ip.hl * 4
        elif ip_bytes[0] >> 4 == 6:
            ip = dpkt.ip6.IP6(ip_bytes)
            if ip.nxt != 6 or ip.p != 6:  # (no extension header in front of TCP)
                return False
            tcp_len = ip.plen
        else:
            return False
        tcp = ip.data
        if not isinstance(tcp, dpkt.tcp.TCP):
            return False
    except (dpkt.UnpackError, IndexError, ValueError):
        return False
    return tcp_len == tcp.off * 4 and not tcp.flags & (
        dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN | dpkt.tcp.TH_RST
    )


def test_the_frames_dropped_are_the_pure_acks() -> None:
    keep = DefaultFilter()
    checked = dropped = 0
    for path in OWN:
        with open_capture(path) as source:
            for _ts, linktype, data in source.packets():
                expected = _pure_ack(linktype, data)
                if expected is None:
                    continue
                checked += 1
                dropped += expected
                assert keep(linktype, data) is not expected, (path.name, data.hex())
    assert checked > 500 and dropped > 100


def test_a_frame_cut_inside_its_headers_is_kept() -> None:
    # hand-built: a classic BPF program that reads past the end drops the frame; the
    # guards keep it (the dissector counts it as cut short)
    keep = DefaultFilter()
    with open_capture(CAPTURES / "openssl_tls12_h2.pcap") as source:
        acks = [d for _t, lt, d in source.packets() if _pure_ack(lt, d)]
    ack = acks[0]
    assert not keep(LINKTYPE_ETHERNET, ack)
    for cut in range(len(ack)):
        if cut < 14 + 20 + 14:  # inside Ethernet, IP or TCP's first 14 bytes
            assert keep(LINKTYPE_ETHERNET, ack[:cut]), cut


LIVE = r"""
import json, socket, struct, sys, threading
from alpnsniff.capture.kernel_filter import DEFAULT_FILTER, attach_filter
SNAP = 200
def packet_socket(expression):
    # protocol 0: nothing arrives before bind, so nothing passes unfiltered
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    if expression is not None:
        attach_filter(s, expression, 1, SNAP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    s.bind(("lo", 0x0003))
    return s
filtered, plain = packet_socket(DEFAULT_FILTER), packet_socket(None)
server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
def serve():
    conn, _ = server.accept()
    while conn.recv(65536):
        pass
    conn.close()
t = threading.Thread(target=serve); t.start()
c = socket.create_connection(("127.0.0.1", port))
for i in range(200):
    c.sendall(bytes([i]) * 3000)
c.close(); t.join(); server.close()
def drain(s):
    s.setblocking(False)
    out = []
    while True:
        try:
            out.append(s.recv(65536).hex())
        except BlockingIOError:
            return out
print(json.dumps({"filtered": drain(filtered), "plain": drain(plain)}))
"""


def test_the_kernel_drops_pure_acks_and_cuts_to_the_snap_length(tmp_path: Path) -> None:
    with empty_namespace("akf") as ns:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=30)
        done = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", LIVE],
            capture_output=True, text=True, timeout=60, env=subprocess_env(),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    plain = [bytes.fromhex(h) for h in seen["plain"]]
    filtered = [bytes.fromhex(h) for h in seen["filtered"]]
    # the namespace is ours: only the test's connection crosses its loopback
    acks = [f for f in plain if _pure_ack(LINKTYPE_ETHERNET, f)]
    assert len(acks) > 10
    expected = [f[:200] for f in plain if not _pure_ack(LINKTYPE_ETHERNET, f)]
    assert filtered == expected
    assert max(len(f) for f in plain) > 200 and max(len(f) for f in filtered) == 200
    # SYN, FIN and the data were kept
    assert len(expected) > 3
