"""Every format variant, made from real captures with real tools (editcap, mergecap, gzip,
xz, bzip2, zstd) or by a byte-exact transform, and read the same as tshark reads it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from capture_testlib import (
    CORPUS,
    REALCAP,
    needs_shared,
    needs_tshark,
    ours,
    pcap_to_big_endian,
    rewrite_pcapng,
    tool,
    tshark_frames,
)

from alpnsniff.capture import CaptureSource, open_capture
from alpnsniff.errors import CaptureError

pytestmark = [needs_shared, needs_tshark, pytest.mark.shared, pytest.mark.tshark]

# 37 frames, 1500-byte MTU, a ClientHello over two segments
REAL = REALCAP / "chromium_nginx_h2_veth1500.pcap"
# pcapng with 22 interfaces of two timestamp resolutions, 699 frames
SITES = CORPUS / "nDPI__sites.pcapng"


def read_all(path: Path) -> tuple[list[tuple[int, int, bytes]], CaptureSource]:
    with open_capture(path) as src:
        return list(src.packets()), src


@pytest.mark.parametrize(
    ("fmt", "frac_units"),
    [
        ("pcap", 1_000_000),
        ("nsecpcap", 1_000_000_000),
        ("modpcap", 1_000_000),  # a1b2cd34, 24-byte record headers
        ("suse6_3pcap", 1_000_000),  # modified magic, 28-byte record headers
        ("rh6_1pcap", 1_000_000),  # standard magic, 24-byte record headers
        ("nokiapcap", 1_000_000),  # standard magic, 20-byte record headers
        ("pcapng", 1_000_000),
    ],
)
def test_editcap_formats(tmp_path: Path, fmt: str, frac_units: int) -> None:
    out = tmp_path / f"x.{fmt}"
    tool("editcap", "-F", fmt, REAL, out)
    packets, src = read_all(out)
    assert ours(out) == tshark_frames(out) == tshark_frames(REAL)
    assert len(packets) == 37
    assert src.format == ("pcapng" if fmt == "pcapng" else "pcap")
    assert src.stats.interfaces == [(1, frac_units)]
    # the nanosecond file holds the same instants: microseconds * 1000
    assert packets == list(open_capture(REAL).packets())


def test_nanosecond_timestamps_keep_every_digit(tmp_path: Path) -> None:
    """A nanosecond pcap whose timestamps are not whole microseconds: shift every frame by
    123 ns with editcap -t, and the ns digits survive exactly (tshark agrees)."""
    ns = tmp_path / "ns.pcap"
    shifted = tmp_path / "shifted.pcap"
    tool("editcap", "-F", "nsecpcap", REAL, ns)
    tool("editcap", "-t", "0.000000123", ns, shifted)
    got = ours(shifted)
    assert got == tshark_frames(shifted)
    base = [ts for ts, _lt, _d in open_capture(REAL).packets()]
    assert [ts for ts, _c, _m in got] == [t + 123 for t in base]


@pytest.mark.parametrize(("encap", "linktype"), [("rawip", 101), ("linux-sll", 113)])
def test_linktype_from_the_file_header(tmp_path: Path, encap: str, linktype: int) -> None:
    """editcap -T rewrites the header's linktype (the bytes stay): we report it."""
    out = tmp_path / "t.pcap"
    tool("editcap", "-T", encap, REAL, out)
    packets, src = read_all(out)
    assert {lt for _ts, lt, _d in packets} == {linktype}
    assert src.stats.interfaces == [(linktype, 1_000_000)]
    assert ours(out) == tshark_frames(out)


def test_fcs_bits_of_the_linktype_are_ignored(tmp_path: Path) -> None:
    """The upper bits of the pcap header's network field carry FCS flags; tshark ignores
    them to find the link type, and so do we."""
    data = bytearray(REAL.read_bytes())
    data[23] = 0x34  # FCS present ('F' bit) and 4-byte FCS length in the top bits
    out = tmp_path / "fcs.pcap"
    out.write_bytes(bytes(data))
    packets, _src = read_all(out)
    assert {lt for _ts, lt, _d in packets} == {1}
    assert len(packets) == 37


def test_mergecap_several_interfaces_and_linktypes(tmp_path: Path) -> None:
    """mergecap of an Ethernet pcap, a raw-IP pcap and an SLL pcapng: one pcapng with
    three interfaces of three linktypes, packets merged in time order."""
    raw = CORPUS / "nDPI__bets.pcap"  # raw IP (101)
    sll = CORPUS / "nDPI__quic-v2.pcapng"  # Linux cooked (113)
    out = tmp_path / "merged.pcapng"
    tool("mergecap", "-F", "pcapng", "-w", out, REAL, raw, sll)
    packets, src = read_all(out)
    assert ours(out) == tshark_frames(out)
    assert sorted(src.stats.interfaces) == [(1, 10**6), (101, 10**6), (113, 10**9)]
    by_lt: dict[int, list[bytes]] = {}
    for _ts, lt, d in packets:
        by_lt.setdefault(lt, []).append(d)
    for path, lt in ((REAL, 1), (raw, 101), (sll, 113)):
        with open_capture(path) as one:
            alone = sorted(d for _ts, _lt, d in one.packets())
        assert sorted(by_lt[lt]) == alone
    stamps = [ts for ts, _lt, _d in packets]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    ("cmd", "kind"),
    [(["gzip", "-c"], "gzip"), (["xz", "-c"], "xz"), (["bzip2", "-c"], "bzip2")],
)
@pytest.mark.parametrize("name", ["cap.bin", "cap.pcap"])
def test_compressed_by_magic_not_name(tmp_path: Path, cmd: list[str], kind: str, name: str) -> None:
    """Compression is found by the magic bytes: the file name says nothing."""
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} not on PATH")
    for source in (REAL, SITES):
        out = tmp_path / f"{source.stem}-{name}"
        out.write_bytes(subprocess.run([*cmd, str(source)], capture_output=True, check=True).stdout)
        packets, src = read_all(out)
        assert src.compression == kind
        with open_capture(source) as plain:
            assert packets == list(plain.packets())


def test_zstd(tmp_path: Path) -> None:
    """zstd works when the zstandard module is there; otherwise one clear line."""
    if shutil.which("zstd") is None:
        pytest.skip("zstd not on PATH")
    out = tmp_path / "cap.pcap.zst"
    tool("zstd", "-q", "-o", out, REAL)
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(CaptureError, match=r"zstd-compressed, but the zstandard module"):
            open_capture(out)
        return
    packets, _src = read_all(out)
    assert packets == list(open_capture(REAL).packets())


def test_big_endian_pcap(tmp_path: Path) -> None:
    """A real pcap with its headers byte-swapped (as a big-endian machine writes it)."""
    for source in (REAL, REALCAP / "aioquic_h3_v1.pcap"):
        out = tmp_path / f"be-{source.name}"
        out.write_bytes(pcap_to_big_endian(source.read_bytes()))
        assert out.read_bytes()[:4] == b"\xa1\xb2\xc3\xd4"
        assert ours(out) == tshark_frames(out) == tshark_frames(source)


def test_big_endian_nanosecond_pcap(tmp_path: Path) -> None:
    ns = tmp_path / "ns.pcap"
    tool("editcap", "-F", "nsecpcap", REAL, ns)
    out = tmp_path / "be.pcap"
    out.write_bytes(pcap_to_big_endian(ns.read_bytes()))
    assert out.read_bytes()[:4] == b"\xa1\xb2\x3c\x4d"
    assert ours(out) == tshark_frames(out) == tshark_frames(REAL)


@pytest.mark.parametrize(
    ("label", "kwargs"),
    [
        ("big-endian", {"order": ">"}),
        ("tsresol 2^-20", {"tsresol": 0x80 | 20}),
        ("tsresol 2^-30, tsoffset -1h", {"tsresol": 0x80 | 30, "tsoffset": -3600}),
        ("tsresol 2^-5", {"tsresol": 0x85}),
        ("tsresol 10^-3, tsoffset 100s", {"tsresol": 3, "tsoffset": 100}),
        ("tsresol 10^-9, big-endian", {"tsresol": 9, "order": ">"}),
        ("obsolete packet blocks", {"packet_block": 2}),
        ("obsolete packet blocks, big-endian", {"packet_block": 2, "order": ">"}),
    ],
)
def test_pcapng_variants(tmp_path: Path, label: str, kwargs: dict[str, int | str]) -> None:
    """The 22-interface file rewritten with another byte order, timestamp resolution or
    offset, or packet block type; tshark reads each the same as we do, to the ns."""
    out = tmp_path / "v.pcapng"
    out.write_bytes(rewrite_pcapng(SITES.read_bytes(), **kwargs))  # type: ignore[arg-type]
    got = ours(out)
    assert len(got) == 699
    assert got == tshark_frames(out), label


def test_picosecond_resolution(tmp_path: Path) -> None:
    """if_tsresol 10^-12 with an offset: exact to the ns. (tshark 4.0.17 overflows 64 bits
    on this resolution, so the reference is the original file, which is exact in ps.)"""
    source = CORPUS / "ja4__tls-handshake.pcapng"
    out = tmp_path / "ps.pcapng"
    out.write_bytes(rewrite_pcapng(source.read_bytes(), tsresol=12, tsoffset=1_675_707_000))
    assert ours(out) == ours(source) == tshark_frames(source)


def test_simple_packet_blocks(tmp_path: Path) -> None:
    """SPBs carry no timestamp (tshark shows none): same bytes as tshark; the timestamp is
    the last one seen (none yet: 0), and the linktype that of interface 0."""
    out = tmp_path / "spb.pcapng"
    out.write_bytes(rewrite_pcapng(SITES.read_bytes(), packet_block=3))
    expected = tshark_frames(out)
    got = ours(out)
    assert [(c, m) for _t, c, m in got] == [(c, m) for _t, c, m in expected]
    assert len(got) == 699
    assert {ts for ts, _c, _m in got} == {0}


def test_several_sections_in_both_byte_orders(tmp_path: Path) -> None:
    """Concatenated pcapng files are one file of several sections; each SHB starts a new
    list of interfaces (interface 0 of section 2 is not interface 0 of section 1)."""
    a = REALCAP / "openssl_tls13_alpn_h2_dsb.pcapng"  # 1 interface, with a DSB
    b = rewrite_pcapng(SITES.read_bytes(), order=">")  # 22 interfaces, big-endian
    c = CORPUS / "nDPI__quic-v2.pcapng"  # 1 SLL interface in ns, with a DSB
    out = tmp_path / "sections.pcapng"
    out.write_bytes(a.read_bytes() + b + c.read_bytes())
    packets, src = read_all(out)
    assert ours(out) == tshark_frames(out)
    assert len(packets) == len(tshark_frames(a)) + 699 + len(tshark_frames(c))
    assert len(src.stats.interfaces) == 1 + 22 + 1
    assert src.stats.interfaces[-1] == (113, 10**9)
    assert packets[-1][1] == 113
    secrets = src.secrets
    assert [t for t, _d in secrets] == [0x544C534B, 0x544C534B]
    assert secrets[0][1] == (REALCAP / "openssl_tls13_alpn_h2.keys").read_bytes()
    assert secrets[1][1].startswith(b"SERVER_HANDSHAKE_TRAFFIC_SECRET 29ba0cf4")
