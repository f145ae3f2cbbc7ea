"""The benchmark capture generator (bench/gen_capture.py): determinism, well-formed frames,
correct QUIC Initial protection, and agreement of its expected counts with tshark."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import gen_capture  # noqa: E402
import gen_hello  # noqa: E402
import gen_packets  # noqa: E402
import gen_quic  # noqa: E402
import templates  # noqa: E402

TSHARK = shutil.which("tshark")
_skip_no_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not on PATH")


def needs_tshark(fn: Any) -> Any:
    """Mark a test as needing tshark, and skip it when tshark is absent."""
    return pytest.mark.tshark(_skip_no_tshark(fn))


def _generate(path: Path, packets: int, **kw: Any) -> dict[str, Any]:
    return gen_capture.generate(path, packets, **kw)


def _records(path: Path) -> list[tuple[int, bytes]]:
    """(timestamp in µs, frame) of every record of a classic µs pcap, read independently."""
    data = path.read_bytes()
    magic, vmaj, vmin, _, _, snap, link = struct.unpack_from("<IHHiIII", data, 0)
    assert (magic, vmaj, vmin, link) == (0xA1B2C3D4, 2, 4, 1)
    assert snap == 262144
    out = []
    pos = 24
    while pos < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        assert incl == orig
        assert usec < 1_000_000
        out.append((sec * 1_000_000 + usec, data[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    assert pos == len(data)
    return out


def _naive_sum(data: bytes) -> int:
    """RFC 1071 ones-complement sum, word by word (independent of gen_packets)."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


# ---------------------------------------------------------------------------------- crypto


def test_initial_keys_match_rfc9001_appendix_a() -> None:
    dcid = bytes.fromhex("8394c8f03e515708")
    client = gen_quic.initial_keys(dcid, server=False)
    server = gen_quic.initial_keys(dcid, server=True)
    assert client.key.hex() == "1f369613dd76d5467730efcbe3b1a22d"
    assert client.iv.hex() == "fa044b2f42a3fd3b46fb255c"
    assert client.hp.hex() == "9f50449e04a0e810283a1e9933adedd2"
    assert server.key.hex() == "cf3a5331653c364c88f0f379b6067e37"
    assert server.iv.hex() == "0ac1493ca1905853b0bba03e"
    assert server.hp.hex() == "c206b8d9b9f0f37644430b490eeaa314"
    # A.2: the sample of the protected client Initial gives this header-protection mask.
    sample = bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b")
    assert gen_quic.header_protection_mask(client.hp, sample).hex() == "437b9aec36"


def test_protected_initial_decrypts_with_aioquic() -> None:
    crypto = pytest.importorskip("aioquic.quic.crypto")
    dcid = bytes.fromhex("0011223344556677")
    frames = b"\x06\x00\x40\x10" + bytes(range(16)) + bytes(1100)
    protector = gen_quic.InitialProtector(gen_quic.initial_keys(dcid, server=False))
    packet = protector.protect(
        dcid=dcid, scid=b"\xaa" * 8, token=b"", pn=1, pn_len=2, payload=frames
    )
    pair = crypto.CryptoPair()
    pair.setup_initial(cid=dcid, is_client=False, version=gen_quic.QUIC_V1)
    pn_offset = 1 + 4 + 1 + 8 + 1 + 8 + 1 + 2
    header, plain, pn = pair.decrypt_packet(packet, pn_offset, 0)
    assert pn == 1
    assert plain == frames
    assert header[0] == 0xC1
    # And our own inverse agrees.
    pn2, plain2, end = gen_quic.unprotect_initial(packet, gen_quic.initial_keys(dcid, server=False))
    assert (pn2, plain2, end) == (1, frames, len(packet))


# ------------------------------------------------------------------------------ templates


@pytest.mark.parametrize(
    ("name", "size", "n_ext"),
    [
        ("CH_CHROMIUM_TCP", 1951, 19),
        ("CH_CURL", 512, 11),
        ("CH_OPENSSL", 328, 11),
        ("CH_QUIC_AIOQUIC", 466, 7),
        ("CH_QUIC_CHROMIUM", 1944, 12),
    ],
)
def test_templates_are_the_real_hellos(name: str, size: int, n_ext: int) -> None:
    tpl = gen_hello.HelloTemplate.parse(name, getattr(templates, name))
    assert tpl.total_len == size
    assert len(tpl.extensions) == n_ext
    assert tpl.offers() == (["h3"] if "QUIC" in name else ["h2", "http/1.1"])


@pytest.mark.parametrize(
    "name", ["CH_CHROMIUM_TCP", "CH_CURL", "CH_OPENSSL", "CH_QUIC_AIOQUIC", "CH_QUIC_CHROMIUM"]
)
@pytest.mark.parametrize(
    ("offers", "sni"),
    [
        (["h2", "http/1.1"], "www.example.com"),
        (None, None),
        (["h2", "http/1.1", "spdy/3.1"], "x" * 60 + ".example"),
        (["acme-tls/1"], "a.example"),
    ],
)
def test_rebuilt_hello_parses_with_aioquic(
    name: str, offers: list[str] | None, sni: str | None
) -> None:
    tls = pytest.importorskip("aioquic.tls")
    buffer = pytest.importorskip("aioquic.buffer")
    import random

    tpl = gen_hello.HelloTemplate.parse(name, getattr(templates, name), shuffle="CHROMIUM" in name)
    ch = gen_hello.build_client_hello(tpl, random.Random(5), sni=sni, offers=offers)
    hello = tls.pull_client_hello(buffer.Buffer(data=ch))
    assert hello.alpn_protocols == offers
    assert hello.server_name == sni
    original = tls.pull_client_hello(buffer.Buffer(data=getattr(templates, name)))
    assert hello.random != original.random
    assert [g for g, _ in hello.key_share] == [g for g, _ in original.key_share]
    assert [k for _, k in hello.key_share] != [k for _, k in original.key_share]
    if name == "CH_CURL":
        assert len(ch) == 512  # OpenSSL's padding extension keeps the size


def test_chromium_hello_is_split_like_chromium() -> None:
    import random

    tpl = gen_hello.HelloTemplate.parse("c", templates.CH_CHROMIUM_TCP, shuffle=True)
    a = gen_hello.build_client_hello(
        tpl, random.Random(1), sni="www.example.com", offers=["h2", "http/1.1"]
    )
    b = gen_hello.build_client_hello(
        tpl, random.Random(2), sni="www.example.com", offers=["h2", "http/1.1"]
    )
    types_a = [t for t, _ in gen_hello.HelloTemplate.parse("a", a).extensions]
    types_b = [t for t, _ in gen_hello.HelloTemplate.parse("b", b).extensions]
    assert sorted(t for t in types_a if not gen_hello.is_grease(t)) == sorted(
        t for t in types_b if not gen_hello.is_grease(t)
    )
    assert types_a != types_b  # permuted per connection
    assert gen_hello.is_grease(types_a[0]) and gen_hello.is_grease(types_a[-1])
    record_len = 5 + len(a)
    assert 1448 < record_len < 2 * 1448  # two segments at MSS 1448
    assert record_len - 1448 > 450


# ---------------------------------------------------------------------------- the writer


def test_writer_streams_with_a_bounded_buffer() -> None:
    sink = io.BytesIO()
    writer = gen_packets.PcapWriter(sink)
    frame = bytes(1500)
    for i in range(2000):
        writer.write(1_000_000 + i, frame)
        assert len(writer._buf) < gen_packets.FLUSH_BYTES
    writer.close()
    assert writer.packets == 2000
    assert writer.bytes == len(sink.getvalue()) == 24 + 2000 * (16 + 1500)


def test_inet_checksum_agrees_with_rfc1071() -> None:
    import random

    rng = random.Random(0)
    for n in [1, 2, 3, 20, 1447, 1500]:
        for _ in range(50):
            data = rng.randbytes(n)
            assert gen_packets.inet_checksum(data) == ~_naive_sum(data) & 0xFFFF
    assert gen_packets.inet_checksum(bytes(40)) == 0xFFFF
    assert gen_packets.inet_checksum(b"\xff\xff" * 3) == 0x0000


# ------------------------------------------------------------------------- the capture


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("gen") / "small.pcap"
    return path, _generate(path, 4000, seed=3)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    sa = _generate(a, 3000, seed=7)
    sb = _generate(b, 3000, seed=7)
    sc = _generate(c, 3000, seed=8)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1]
    assert digest[0] != digest[2]
    assert sa == sb
    assert sa != sc


def test_exact_packet_count_size_and_time_order(small: tuple[Path, dict[str, Any]]) -> None:
    path, summary = small
    recs = _records(path)
    assert len(recs) == summary["packets"] == 4000
    assert path.stat().st_size == summary["bytes"]
    stamps = [ts for ts, _ in recs]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert abs((stamps[-1] - gen_capture.START_US) / 1e6 - summary["duration_s"]) < 1e-6


def _l4(frame: bytes) -> tuple[int, bytes, bytes] | None:
    """(protocol, pseudo-header, L4 bytes) of an Ethernet/IPv4|IPv6 frame."""
    etype = frame[12:14]
    if etype == b"\x08\x00":
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        assert _naive_sum(ip[:ihl]) == 0xFFFF  # IPv4 header checksum
        total = struct.unpack_from("!H", ip, 2)[0]
        assert total == len(ip)
        l4 = ip[ihl:total]
        pseudo = ip[12:20] + struct.pack("!xBH", ip[9], len(l4))
        return ip[9], pseudo, l4
    if etype == b"\x86\xdd":
        ip = frame[14:]
        plen = struct.unpack_from("!H", ip, 4)[0]
        assert plen == len(ip) - 40
        l4 = ip[40:]
        pseudo = ip[8:40] + struct.pack("!IxxxB", len(l4), ip[6])
        return ip[6], pseudo, l4
    return None


def test_every_frame_has_valid_checksums(small: tuple[Path, dict[str, Any]]) -> None:
    kinds: Counter[tuple[int, int]] = Counter()
    for _, frame in _records(small[0]):
        parsed = _l4(frame)
        assert parsed is not None
        proto, pseudo, l4 = parsed
        assert proto in (6, 17)
        assert _naive_sum(pseudo + l4) == 0xFFFF
        sport, dport = struct.unpack_from("!HH", l4, 0)
        kinds[(proto, min(sport, dport))] += 1
    assert kinds[(6, 443)] > kinds[(17, 443)] > kinds[(17, 53)] > 0
    assert kinds[(6, 80)] > 0 and kinds[(6, 22)] > 0


def test_packet_shares_follow_the_quic_share(tmp_path: Path) -> None:
    path = tmp_path / "share.pcap"
    summary = _generate(path, 20000, seed=11, quic_share=0.3)
    udp443 = v6 = 0
    for _, frame in _records(path):
        v6 += frame[12:14] == b"\x86\xdd"
        parsed = _l4(frame)
        assert parsed is not None
        if parsed[0] == 17 and 443 in struct.unpack_from("!HH", parsed[2], 0):
            udp443 += 1
    assert 0.26 < udp443 / 20000 < 0.34
    assert 0.08 < v6 / 20000 < 0.25
    conns = summary["connections"]
    assert 0.08 < summary["ipv6_connections"] / sum(conns.values()) < 0.25
    assert conns["tls_midstream"] > 0 and conns["quic_midstream"] > 0


def test_about_half_the_tcp_hellos_take_two_segments(tmp_path: Path) -> None:
    summary = _generate(tmp_path / "half.pcap", 20000, seed=2)
    tls = summary["tls"]
    assert 0.4 < tls["two_segment_client_hellos"] / tls["client_hellos"] < 0.6
    assert set(tls["client_hellos_by_alpn"]) >= {"", "h2", "h2,http/1.1", "http/1.1"}
    assert summary["quic"]["client_hellos_by_alpn"] == {"h3": summary["quic"]["client_hellos"]}


def test_truth_file_lists_every_hello(tmp_path: Path) -> None:
    truth = tmp_path / "truth.ndjson"
    summary = _generate(tmp_path / "t.pcap", 5000, seed=4, truth=truth)
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    tls = Counter(",".join(r["offers"] or []) for r in rows if r["kind"] == "tls")
    quic = Counter(",".join(r["offers"]) for r in rows if r["kind"] == "quic")
    assert dict(tls) == summary["expected"]["tls_client_hellos_by_alpn"]
    assert dict(quic) == summary["expected"]["quic_client_hellos_by_alpn"]


def test_cli_prints_the_summary_as_json(tmp_path: Path) -> None:
    out = tmp_path / "cli.pcap"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "gen_capture.py"),
            str(out),
            "--packets",
            "500",
            "--seed",
            "9",
            "--sha256",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(proc.stdout)
    assert summary["packets"] == 500
    assert summary["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert summary["generation_seconds"] >= 0
    bad = subprocess.run(
        [sys.executable, str(BENCH / "gen_capture.py"), str(out), "--quic-share", "0.99"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "--quic-share must be between" in bad.stderr


# ------------------------------------------------------------------------------- tshark


def _tshark_hellos(path: Path, *opts: str) -> dict[str, Any]:
    """One tshark pass: ClientHellos over TCP and QUIC by ALPN, segment counts, ServerHellos."""
    assert TSHARK is not None
    proc = subprocess.run(
        [
            TSHARK,
            *opts,
            "-r",
            str(path),
            "-Y",
            "tls.handshake.type==1 || tls.handshake.type==2",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-e",
            "tls.handshake.type",
            "-e",
            "tls.handshake.extensions_alpn_str",
            "-e",
            "tcp.segment.count",
            "-e",
            "udp.port",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[str, Any] = {
        "tcp": Counter(),
        "quic": Counter(),
        "seg": Counter(),
        "sh": Counter(),
        "quic_sh": 0,
    }
    for line in proc.stdout.splitlines():
        types, alpn, segs, udp = line.split("\t")
        if "1" in types.split(","):
            if udp:
                out["quic"][alpn] += 1
            else:
                out["tcp"][alpn] += 1
                out["seg"][segs] += 1
        if "2" in types.split(","):
            if udp:
                out["quic_sh"] += 1
            else:
                out["sh"][alpn] += 1
    return out


@needs_tshark
def test_tshark_decrypts_the_quic_initials(small: tuple[Path, dict[str, Any]]) -> None:
    assert TSHARK is not None
    proc = subprocess.run(
        [
            TSHARK,
            "-r",
            str(small[0]),
            "-Y",
            "quic && tls.handshake.type==1",
            "-T",
            "fields",
            "-e",
            "tls.handshake.extensions_alpn_str",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = Counter(proc.stdout.split())
    assert dict(seen) == small[1]["expected"]["quic_client_hellos_by_alpn"]
    assert seen["h3"] > 10


@pytest.fixture(scope="module")
def fifty_k(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("gen50k") / "50k.pcap"
    return path, _generate(path, 50_000, seed=1)


@needs_tshark
def test_tshark_default_counts_match_on_50k(fifty_k: tuple[Path, dict[str, Any]]) -> None:
    path, summary = fifty_k
    exp = summary["expected"]
    got = _tshark_hellos(path)
    assert dict(got["tcp"]) == exp["tshark"]["default"]["tls_client_hellos_by_alpn"]
    assert got["seg"]["2"] == exp["tshark"]["default"]["tcp_segment_count_2"]
    assert got["seg"]["3"] == 0
    assert dict(got["quic"]) == exp["quic_client_hellos_by_alpn"]
    assert dict(got["sh"]) == exp["tls_server_hellos_by_alpn"]
    assert got["quic_sh"] == exp["quic_server_hellos"]
    # The out-of-order hellos are the only ones default tshark misses.
    missed = sum(exp["tls_client_hellos_by_alpn"].values()) - sum(got["tcp"].values())
    assert missed == sum(summary["tls"]["out_of_order_client_hellos_by_alpn"].values()) > 0


@needs_tshark
def test_tshark_out_of_order_counts_match_on_50k(fifty_k: tuple[Path, dict[str, Any]]) -> None:
    path, summary = fifty_k
    exp = summary["expected"]
    got = _tshark_hellos(path, "-o", "tcp.reassemble_out_of_order:TRUE")
    assert dict(got["tcp"]) == exp["tls_client_hellos_by_alpn"]
    ooo = exp["tshark"]["reassemble_out_of_order"]
    assert got["seg"]["2"] == ooo["tcp_segment_count_2"]
    assert got["seg"]["3"] == ooo["tcp_segment_count_3"]
    assert got["seg"]["2"] + got["seg"]["3"] == summary["tls"]["two_segment_client_hellos"]
    assert dict(got["quic"]) == exp["quic_client_hellos_by_alpn"]


@needs_tshark
def test_avoided_client_ports_are_those_tshark_claims() -> None:
    assert TSHARK is not None
    import gen_flows

    proc = subprocess.run([TSHARK, "-G", "decodes"], capture_output=True, text=True, check=True)
    claimed = set()
    for line in proc.stdout.splitlines():
        table, port, *_ = line.split("\t")
        if table in ("tcp.port", "udp.port") and 32768 <= int(port) <= 60999:
            claimed.add(int(port))
    assert claimed == gen_flows.TSHARK_CLAIMED_PORTS


SHARED = ROOT / ".." / "shared"


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED / "realcap").is_dir(), reason="../shared/realcap is absent")
def test_templates_regenerate_from_the_real_captures() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gen_extract.py"), str(SHARED / "realcap")],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH,
    )
    assert proc.stdout == (BENCH / "templates.py").read_text()
