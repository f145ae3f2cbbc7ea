"""The benchmark generator's sealed TLS 1.3 server flights and its key log (bench/gen_tls13.py,
``gen_capture.py --keylog``): RFC 8448 keys, flights that alpnsniff's decryptor opens, a key
log for half the connections, and agreement with tshark and alpnsniff on a 50k-packet file."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from alpnsniff.keys.tls13 import Tls13ServerFlightDecryptor, server_handshake_keys
from alpnsniff.tls.events import HandshakeMessage
from alpnsniff.tls.messages import parse_encrypted_extensions

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import gen_capture  # noqa: E402
import gen_tls13  # noqa: E402

TSHARK = shutil.which("tshark")

# RFC 8448 §3 (simple 1-RTT): {server} handshake traffic secret and the write key/iv from it.
RFC8448_SERVER_HS_SECRET = bytes.fromhex(
    "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"
)
RFC8448_KEY = "3fce516009c21727d0f2e4e86ee403bc"
RFC8448_IV = "5d313eb2671276ee13000b30"


def test_handshake_keys_match_rfc8448() -> None:
    key, iv = gen_tls13.server_handshake_key_iv(RFC8448_SERVER_HS_SECRET)
    assert (key.hex(), iv.hex()) == (RFC8448_KEY, RFC8448_IV)


def test_handshake_keys_agree_with_alpnsniff() -> None:
    rng = random.Random(5)
    for _ in range(20):
        secret = rng.randbytes(32)
        ours = gen_tls13.server_handshake_key_iv(secret)
        theirs = server_handshake_keys(0x1301, secret)
        assert ours == (theirs.key, theirs.iv)


def _open_flight(flight: bytes, secret: bytes) -> list[HandshakeMessage]:
    """Feed every record of ``flight`` to alpnsniff's decryptor; the messages it yields."""
    dec = Tls13ServerFlightDecryptor(0x1301, secret)
    out: list[HandshakeMessage] = []
    pos = 0
    while pos < len(flight):
        n = int.from_bytes(flight[pos + 3 : pos + 5], "big")
        header, body = flight[pos : pos + 5], flight[pos + 5 : pos + 5 + n]
        for ev in dec.feed_record(header[0], header, body):
            assert isinstance(ev, HandshakeMessage), ev
            out.append(ev)
        pos += 5 + n
    assert pos == len(flight)
    assert dec.done and dec.error is None
    assert dec.stats["records"] == 4
    return out


@pytest.mark.parametrize(("selected", "size"), [("h2", 905), ("http/1.1", 3904), (None, 2000)])
def test_sealed_flight_opens_and_keeps_its_size(selected: str | None, size: int) -> None:
    rng = random.Random(1)
    secret = rng.randbytes(32)
    flight = gen_tls13.server_flight(rng, secret, selected, size)
    assert len(flight) == size
    msgs = _open_flight(flight, secret)
    assert [m.msg_type for m in msgs] == [8, 11, 15, 20]
    ee = parse_encrypted_extensions(msgs[0].body)
    assert ee.alpn == ((selected.encode(),) if selected else ())
    assert ee.has_alpn == (selected is not None)
    assert gen_tls13.CERT_DER in msgs[1].body
    assert len(msgs[3].body) == 32
    # another secret does not open it
    with pytest.raises(AssertionError):
        _open_flight(flight, bytes(32))


def test_small_target_gives_the_unpadded_flight() -> None:
    rng = random.Random(2)
    flight = gen_tls13.server_flight(rng, rng.randbytes(32), "h2", 10)
    assert 600 < len(flight) < 905  # never below the old 905-byte minimum once padded


def test_keylog_line_format() -> None:
    line = gen_tls13.keylog_line(bytes(range(32)), b"\xab" * 32)
    label, cr, secret = line.split()
    assert label == "SERVER_HANDSHAKE_TRAFFIC_SECRET"
    assert cr == bytes(range(32)).hex() and secret == "ab" * 32
    assert line.endswith("\n")


def test_keylog_covers_half_the_tls13_flights(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    keys, truth = tmp_path / "a.keys", tmp_path / "a.ndjson"
    sa = gen_capture.generate(a, 8000, seed=6, keylog=keys, truth=truth)
    sb = gen_capture.generate(b, 8000, seed=6)
    # the key log changes nothing in the capture or the summary
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert sa == sb
    lines = keys.read_text().splitlines()
    flights = sa["tls"]["tls13_server_flights_by_keylog"]
    decrypted = sa["expected"]["decrypted_by_alpn"]
    assert len(lines) == flights["in_keylog"] == sum(decrypted.values())
    assert 0.35 < flights["in_keylog"] / sum(flights.values()) < 0.65
    assert flights["in_keylog"] + flights["not_in_keylog"] == sa["tls"][
        "server_hellos_by_version"
    ].get("1.3", 0)
    assert len({line.split()[1] for line in lines}) == len(lines)  # one line per connection
    rows = [json.loads(x) for x in truth.read_text().splitlines()]
    logged = Counter(r["ee_selected"] or "" for r in rows if r["kind"] == "tls" and r["keylog"])
    assert all(logged[k] >= n for k, n in decrypted.items())  # truth is written at the hello
    assert decrypted.get("h2", 0) > decrypted.get("http/1.1", 0) > 0


def test_cli_writes_the_keylog(tmp_path: Path) -> None:
    out, keys = tmp_path / "c.pcap", tmp_path / "c.keys"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gen_capture.py"), str(out), "--packets", "3000",
         "--seed", "9", "--keylog", str(keys)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    n = len(keys.read_text().splitlines())
    assert n == sum(summary["expected"]["decrypted_by_alpn"].values()) > 0


# ------------------------------------------------------------------- tshark and alpnsniff


@pytest.fixture(scope="module")
def keyed_50k(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("keyed50k")
    path, keys = d / "50k.pcap", d / "50k.keys"
    return path, keys, gen_capture.generate(path, 50_000, seed=1, keylog=keys)


def _tshark_ee(path: Path, keys: Path, *opts: str) -> dict[str, int]:
    assert TSHARK is not None
    proc = subprocess.run(
        [TSHARK, "-n", *opts, "-r", str(path), "-o", f"tls.keylog_file:{keys}",
         "-Y", "tls.handshake.type==8", "-T", "fields", "-e", "tls.handshake.extensions_alpn_str"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(Counter(proc.stdout.splitlines()))


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="tshark not on PATH")
def test_tshark_decrypts_exactly_the_logged_flights(
    keyed_50k: tuple[Path, Path, dict[str, Any]],
) -> None:
    path, keys, summary = keyed_50k
    exp = summary["expected"]
    got = _tshark_ee(path, keys, "-o", "tcp.reassemble_out_of_order:TRUE")
    assert (
        got
        == exp["decrypted_by_alpn"]
        == exp["tshark"]["reassemble_out_of_order"]["decrypted_by_alpn"]
    )
    # default tshark cannot read the client random of a hello whose segments came reordered
    assert _tshark_ee(path, keys) == exp["tshark"]["default"]["decrypted_by_alpn"]
    assert sum(got.values()) > 100


def _alpnsniff(path: Path, tmp: Path, *opts: str) -> tuple[Counter[str], dict[str, int]]:
    out, stats = tmp / "out.ndjson", tmp / "stats.json"
    subprocess.run(
        [sys.executable, "-m", "alpnsniff.cli", "read", str(path), "--format", "ndjson", "-o", str(out),
         "--quiet", "--progress", "never", "--stats", str(stats), *opts],
        check=True, cwd=ROOT,
    )  # fmt: skip
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    decrypted = Counter(r["alpn_selected"] for r in rows if r["selection"] == "decrypted")
    return decrypted, json.loads(stats.read_text())


def test_alpnsniff_decrypts_exactly_the_logged_flights(
    keyed_50k: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, keys, summary = keyed_50k
    exp = summary["expected"]["decrypted_by_alpn"]
    decrypted, stats = _alpnsniff(path, tmp_path, "--keylog", str(keys))
    # an EncryptedExtensions without ALPN reads as selection "none", so it is not a row here
    assert dict(decrypted) == {k: n for k, n in exp.items() if k}
    assert stats["tcp_decrypted_encrypted_extensions"] == sum(exp.values())
    assert not any(k.startswith("tcp_decrypt_") for k in stats)  # no failed tags
    flights = summary["tls"]["tls13_server_flights_by_keylog"]
    assert stats["keys_not_in_keylog"] >= flights["not_in_keylog"]
    without, stats0 = _alpnsniff(path, tmp_path)
    assert not without
    assert "tcp_decrypted_encrypted_extensions" not in stats0
