"""BPF capture filters: the frames kept are tcpdump's, frame numbers stay the file's."""

from __future__ import annotations

import ctypes.util
import os
import pickle
import shutil
import struct
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from alpnsniff.capture import BpfError, BpfFilter, bpf, compile_frame_filter, open_capture
from alpnsniff.errors import CaptureError
from alpnsniff.pipeline import analyze_file
from tests.conftest import CAPTURES, shared_file

TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not on PATH")

EXPRESSIONS = (
    "port 443",
    "tcp",
    "udp and port 443",
    "host 127.0.0.1",
    "vlan and tcp",
    "ip6",
    "tcp[tcpflags] & tcp-syn != 0",
    "greater 1000",
)
# dumpcap_lo_any.pcapng mixes link types: tcpdump cannot read it (test_mixed_link_types);
# tcpdump does not read a gzip file
OWN = tuple(
    p.name
    for p in sorted(CAPTURES.glob("*.pcap*"))
    if p.suffix in (".pcap", ".pcapng") and p.name != "dumpcap_lo_any.pcapng"
)
# every link type of the corpus (0 NULL, 9 PPP, 101 RAW, 113 SLL, 228 IPv4), and big files
CORPUS = (
    "illustrated-quic__capture.pcap",
    "nDPI__pgsql2.pcapng",
    "zeek__ppp_quic-interop-retry.pcap",
    "nDPI__ocs.pcap",
    "suricata-verify__bug-5758.pcap",
    "mercury__sll_tls.pcap",
    "nDPI__KakaoTalk_talk.pcap",
    "nDPI__quic-v2.pcapng",
    "nDPI__quic-fuzz-overflow.pcapng",
    "ja4__http2-with-cookies.pcapng",
    "ja4__tls-handshake.pcapng",
    "nDPI__opera-vpn.pcap",
    "mercury__dns_packet.capture2.pcap",
    "arkime__tls13.pcap",
    "nDPI__google_ssl.pcap",
)

Frames = list[tuple[int, bytes]]


def frames(path: Path) -> list[tuple[int, int, bytes]]:
    with open_capture(path) as source:
        return list(source.packets())


def write_pcap(path: Path, linktype: int, packets: Frames) -> None:
    """A nanosecond pcap file of ``packets``."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        for ts, data in packets:
            sec, nsec = divmod(ts, 1_000_000_000)
            f.write(struct.pack("<IIII", sec, nsec, len(data), len(data)) + data)


def tcpdump(path: Path, expression: str, out: Path) -> Frames | str:
    """The frames ``tcpdump -r path -w out expression`` keeps (ts_ns, bytes), or the line
    it refused the filter with."""
    assert TCPDUMP is not None
    command = [TCPDUMP, "-n", "--time-stamp-precision=nano", "-r", str(path), "-w", str(out)]
    if os.geteuid() == 0:
        command += ["-Z", "root"]  # (else it may drop to a user that cannot write `out`)
    done = subprocess.run([*command, expression], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1].removeprefix("tcpdump: ")
    return [(ts, data) for ts, _, data in frames(out)]


def ours(path: Path, expression: str) -> Frames | str:
    try:
        keep = compile_frame_filter(expression)
        return [(ts, data) for ts, linktype, data in frames(path) if keep(linktype, data)]
    except BpfError as err:
        return str(err)


def check_same(path: Path, tmp_path: Path) -> None:
    for expression in EXPRESSIONS:
        expected = tcpdump(path, expression, tmp_path / "out.pcap")
        got = ours(path, expression)
        if isinstance(expected, str):  # tcpdump refuses the filter for this file: so do we
            assert isinstance(got, str), (path.name, expression, expected)
            assert got.startswith(f"bad filter '{expression}' for link type ")
            assert got.endswith(": " + expected), (got, expected)
        else:
            assert not isinstance(got, str), (path.name, expression, got)
            assert len(got) == len(expected), (path.name, expression)
            assert got == expected, (path.name, expression)


@needs_tcpdump
@pytest.mark.parametrize("name", OWN)
def test_same_frames_as_tcpdump(name: str, tmp_path: Path) -> None:
    check_same(CAPTURES / name, tmp_path)


@needs_tcpdump
@pytest.mark.shared
@pytest.mark.parametrize("name", CORPUS)
def test_same_frames_as_tcpdump_corpus(name: str, tmp_path: Path) -> None:
    check_same(shared_file("corpus", "pcaps", name), tmp_path)


def test_the_differential_test_sees_both_outcomes(tmp_path: Path) -> None:
    """Among the files, each expression keeps some frames and drops some (the comparison
    is not of empty lists), and the raw-IP file (LINKTYPE_RAW 101 -> DLT_RAW) is filtered."""
    kept: dict[str, set[bool]] = defaultdict(set)
    for name in OWN:
        all_frames = frames(CAPTURES / name)
        for expression in EXPRESSIONS:
            got = ours(CAPTURES / name, expression)
            if not isinstance(got, str):
                kept[expression].add(len(got) > 0)
                kept[expression].add(len(got) < len(all_frames))
    assert all(kept[e] == {True, False} or e == "vlan and tcp" for e in EXPRESSIONS), kept
    raw = frames(CAPTURES / "openssl_tls12_gre_inner.pcap")
    assert {linktype for _, linktype, _ in raw} == {101}
    keep = compile_frame_filter("tcp[tcpflags] & tcp-syn != 0")
    assert sum(keep(linktype, data) for _, linktype, data in raw) == 2  # SYN, SYN-ACK


@needs_tcpdump
def test_mixed_link_types(tmp_path: Path) -> None:
    """A pcapng with Ethernet and Linux cooked (SLL) interfaces: each link type gets its own
    program, and keeps what tcpdump keeps from a file of that link type's frames alone."""
    path = CAPTURES / "dumpcap_lo_any.pcapng"
    every = frames(path)
    by_type: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for ts, linktype, data in every:
        by_type[linktype].append((ts, data))
    assert set(by_type) == {1, 113}
    for expression in ("port 4431", "tcp", "ip6", "greater 1000", "host 10.99.0.1"):
        keep = compile_frame_filter(expression)
        got: dict[int, Frames] = defaultdict(list)
        for ts, linktype, data in every:
            if keep(linktype, data):
                got[linktype].append((ts, data))
        for linktype, of_type in by_type.items():
            alone = tmp_path / f"{linktype}.pcap"
            write_pcap(alone, linktype, of_type)
            expected = tcpdump(alone, expression, tmp_path / "out.pcap")
            assert got[linktype] == expected, (expression, linktype)
    keep = compile_frame_filter("port 4431")
    assert isinstance(keep, BpfFilter)
    assert keep.instructions(1) != keep.instructions(113)
    assert sum(len(got[t]) for t in got) > 0


def test_a_link_type_the_filter_cannot_be_compiled_for_fails_at_its_first_frame() -> None:
    keep = compile_frame_filter("vlan and tcp")  # fine for Ethernet
    sll = frames(CAPTURES / "dumpcap_lo_any.pcapng")
    first_sll = next(i for i, (_, linktype, _) in enumerate(sll) if linktype == 113)
    for _, linktype, data in sll[:first_sll]:
        keep(linktype, data)
    _, linktype, data = sll[first_sll]
    with pytest.raises(BpfError) as caught:
        keep(linktype, data)
    assert str(caught.value) == (
        "bad filter 'vlan and tcp' for link type 113 (LINUX_SLL):"
        " no VLAN support for Linux cooked v1"
    )
    with pytest.raises(BpfError, match=r"link type 147 \(unknown to libpcap\): DLT 147"):
        compile_frame_filter("tcp")(147, b"\0" * 64)
    with pytest.raises(BpfError, match=r"link type 228 \(IPV4\): expression rejects all"):
        compile_frame_filter("ip6")(228, b"\x45" + b"\0" * 39)
    # the pipeline does not count it as a packet's error: the run ends with it
    with pytest.raises(BpfError, match="LINUX_SLL"):
        analyze_file(CAPTURES / "dumpcap_lo_any.pcapng", frame_filter=keep)


def test_frame_numbers_are_the_files() -> None:
    """Records that pass the filter are those of the unfiltered run, frame numbers and all;
    the frames filtered out are counted."""
    for name, expression in (
        ("chromium_nginx_h2_veth1500.pcap", "tcp port 36070"),
        ("openssl_tls12_resumed.pcap", "port 47604"),
        ("dumpcap_lo_any.pcapng", "port 4431"),  # the record of the SLL interface
        ("openssl_aioquic_ipv6.pcap", "udp"),  # the QUIC record, after the TCP one
    ):
        path = CAPTURES / name
        unfiltered = analyze_file(path)
        keep = compile_frame_filter(expression)
        filtered = analyze_file(path, frame_filter=keep)
        assert len(unfiltered.handshakes) == 2
        (record,) = filtered.handshakes
        assert record in unfiltered.handshakes
        assert record.frame > 1 and record == unfiltered.handshakes[1]
        every = frames(path)
        rejected = sum(not keep(linktype, data) for _, linktype, data in every)
        assert rejected > 0
        assert filtered.stats["packets_filtered_out"] == rejected
        assert filtered.stats["packets"] == len(every)


def test_keep_everything() -> None:
    path = CAPTURES / "dumpcap_lo_any.pcapng"
    for expression in ("", "tcp or not tcp"):
        result = analyze_file(path, frame_filter=compile_frame_filter(expression))
        assert result.handshakes == analyze_file(path).handshakes
        assert result.stats["packets_filtered_out"] == 0


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("port foo", "bad filter 'port foo': unknown port 'foo'"),
        ("tcp and", "bad filter 'tcp and': can't parse filter expression: syntax error"),
        ("(tcp", "bad filter '(tcp': can't parse filter expression: syntax error"),
        ("host 999.1.1.1", "bad filter 'host 999.1.1.1': "),
        ("net 10.1.2.3/8", "bad filter 'net 10.1.2.3/8': non-network bits set in"),
        ("tcp\nand port 99999", "bad filter 'tcp\\x0aand port 99999': "),
        ("tcp\0 or udp", "bad filter 'tcp\\x00 or udp': NUL in the expression"),
        ("x" * 300, "bad filter '" + "x" * 199 + "…': "),
    ],
)
def test_bad_expressions(expression: str, message: str) -> None:
    with pytest.raises(BpfError) as caught:
        compile_frame_filter(expression)
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text and len(text) < 600
    assert isinstance(caught.value, CaptureError)  # the CLI's one-line, exit-2 family


@needs_tcpdump
@pytest.mark.parametrize("expression", ["port foo", "tcp and", "net 10.1.2.3/8", "port 99999"])
def test_bad_expressions_tcpdump_refuses_too(expression: str, tmp_path: Path) -> None:
    path = CAPTURES / "openssl_tls12_h2.pcap"
    refused = tcpdump(path, expression, tmp_path / "out.pcap")
    assert isinstance(refused, str)
    with pytest.raises(BpfError) as caught:
        compile_frame_filter(expression)
    assert str(caught.value) == f"bad filter '{expression}': {refused}"


def test_picklable() -> None:
    keep = compile_frame_filter("tcp port 443")
    again = pickle.loads(pickle.dumps(keep))
    assert isinstance(keep, BpfFilter) and isinstance(again, BpfFilter)
    assert again.expression == "tcp port 443"
    assert again.instructions() == keep.instructions()


def test_without_libpcap(monkeypatch: pytest.MonkeyPatch) -> None:
    bpf.libpcap.cache_clear()
    monkeypatch.setattr(bpf, "LIBRARY_NAMES", ("libpcap-not-here.so.9",))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    try:
        with pytest.raises(BpfError) as caught:
            compile_frame_filter("tcp")
        assert str(caught.value) == "BPF filters need libpcap (Debian: apt install libpcap0.8)"
    finally:
        bpf.libpcap.cache_clear()
