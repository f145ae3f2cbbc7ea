"""alpnsniff against tshark 4.0.17 on the span-port encapsulations (captures/span_*.pcap).

Each capture is a real capture of captures/ with every frame wrapped as a mirror port or
fabric wraps it (captures/tools/span_wrap.py): Cisco MetaData (SGT), VN-Tag, 802.1BR E-tag,
802.1ah PBB, NSH, VXLAN-GPE (IP, and NSH carrying Ethernet), CAPWAP data (802.3, and 802.11
with the Cisco frame control order) and TZSP. Three things must hold for each:

1. tshark dissects the encapsulation on every frame, with the values span_wrap wrote (so
   the comparison below is not two decoders agreeing on nothing);
2. alpnsniff's records equal tshark's view of the same file, by the rules of the TCP and
   QUIC comparisons (``compare.compare_tcp`` / ``compare_quic``: offers, SNI, selection);
3. alpnsniff's records (offers, selection, SNI, ports, frames) equal its records of the
   unwrapped source capture, and the decoder counted the encapsulation on every frame.

No file needs a Decode As: tshark 4.0.17 dissects UDP 4790 (VXLAN-GPE), 5247 (CAPWAP data)
and 37008 (TZSP) by port. One variant needs a preference: CAPWAP carrying 802.11 frames
whose frame control is in the standard order. tshark assumes by default Cisco's swapped
order (``capwap.swap_fc: TRUE``) and with the standard order shows a malformed "802.11 PV1
Control" frame and no TLS at all; that file is made here and compared with
``-o capwap.swap_fc:FALSE``. alpnsniff reads both orders (told apart by the version bits).
Neither is a bug of either tool: the order on the wire depends on the access point's vendor.

One difference is a tshark misdissection: with the truth's preferences (heuristics first,
``udp.try_heuristic_first:TRUE``) tshark's DNS-over-UDP heuristic claims every TZSP datagram
(its first bytes ``01 00 00 01``, version 1, type 0, encapsulation 1, read as a DNS query
"ID 0x0100, 1 question" with 395 bytes of "extraneous data") and shows no ClientHello; with
``--disable-heuristic dns_udp`` it dissects TZSP on its port and agrees with alpnsniff. The
datagrams are TZSP (port 37008, and the rest of the bytes are an Ethernet frame), not DNS:
tshark is wrong there, alpnsniff right.

The UDP tunnels reach the decoder only when pipeline.py's hot loop sends their ports to it
(``alpnsniff.net.tunnels.TUNNEL_UDP_PORTS``); until then those cases fail with alpnsniff
showing no record (the datagrams are counted as ``udp_skipped``).
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest
from compare import compare_quic, compare_tcp
from tshark_view import TsharkCache, TsharkQuicClose, TsharkView, parse_pdml, tshark_command

from alpnsniff import pipeline
from alpnsniff.net.tunnels import TUNNEL_UDP_PORTS
from alpnsniff.pipeline import RunResult, analyze_file

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "captures"

pytestmark = [pytest.mark.tshark]


def _load_span_wrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("span_wrap", CAPTURES / "tools" / "span_wrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["span_wrap"] = module
    spec.loader.exec_module(module)
    return module


SPAN = _load_span_wrap()

# encapsulation -> (tshark field shown on every frame, the values span_wrap wrote there)
TSHARK_FIELD: dict[str, tuple[str, frozenset[str]]] = {
    "cisco-metadata": ("cmd.sgt", frozenset({"10", "20"})),
    "vntag": ("vntag.src", frozenset({"0", "5"})),
    "etag": ("etag.ecid_base", frozenset({"0x0123", "0x0456"})),
    "pbb": ("ieee8021ah.isid", frozenset({"74565"})),  # 0x012345
    "nsh": ("nsh.spi", frozenset({"42"})),
    "vxlan-gpe": ("vxlan.next_proto", frozenset({"1"})),  # IPv4
    "vxlan-gpe-nsh": ("vxlan.next_proto", frozenset({"4"})),  # NSH
    "capwap": ("capwap.header.flags.t", frozenset({"0"})),  # 802.3 payload
    "capwap-80211": ("wlan.fc.type_subtype", frozenset({"0x0028"})),  # QoS data
    "capwap-80211-rfc": ("wlan.fc.type_subtype", frozenset({"0x0028"})),
    "tzsp": ("tzsp.encap", frozenset({"1"})),  # Ethernet
}
# encapsulation -> what the decoder counts once per frame
DECODE_COUNTS: dict[str, tuple[str, ...]] = {
    "cisco-metadata": ("decode_cisco-metadata",),
    "vntag": ("decode_vn-tag",),
    "etag": ("decode_e-tag",),
    "pbb": ("decode_pbb", "decode_qinq"),
    "nsh": ("decode_nsh", "decode_bridged-ethernet"),
    "vxlan-gpe": ("decode_tunnel:vxlan-gpe",),
    "vxlan-gpe-nsh": ("decode_tunnel:vxlan-gpe", "decode_nsh", "decode_bridged-ethernet"),
    "capwap": ("decode_tunnel:capwap", "decode_bridged-ethernet"),
    "capwap-80211": ("decode_tunnel:capwap",),
    "capwap-80211-rfc": ("decode_tunnel:capwap",),
    "tzsp": ("decode_tunnel:tzsp", "decode_bridged-ethernet"),
}
UDP_ENCAPS = frozenset({"vxlan-gpe", "vxlan-gpe-nsh", "capwap", "capwap-80211",
                        "capwap-80211-rfc", "tzsp"})  # fmt: skip
RFC_80211 = ("span_capwap_80211_rfc.pcap", "capwap-80211-rfc", "openssl_tls12_h2.pcap")
TSHARK_PREFS = {
    "capwap-80211-rfc": ("-o", "capwap.swap_fc:FALSE"),
    "tzsp": ("--disable-heuristic", "dns_udp"),
}
CASES = [*SPAN.SPAN_CAPTURES, RFC_80211]


def test_every_span_capture_is_in_captures_and_compared() -> None:
    made = {p.name for p in CAPTURES.glob("span_*.pcap")}
    assert made == {name for name, _, _ in SPAN.SPAN_CAPTURES}
    assert set(TSHARK_FIELD) == set(DECODE_COUNTS) == set(SPAN.WRAPS) == {c[1] for c in CASES}


def _capture(case: tuple[str, str, str], tmp: Path) -> Path:
    name, encap, source = case
    if (CAPTURES / name).exists():
        return CAPTURES / name
    path = tmp / name  # the variant no file in captures/ holds: made here, the same way
    SPAN.wrap_file(encap, CAPTURES / source, path)
    return path


def _tshark_env(tmp: str) -> dict[str, str]:
    return dict(os.environ, WIRESHARK_CONFIG_DIR=tmp)  # an empty profile: no local prefs


def _tshark_view(path: Path, prefs: tuple[str, ...]) -> TsharkView:
    """tshark_view.run_tshark with extra preferences (pdml of the hellos, alerts, closes)."""
    cmd = tshark_command(path)
    at = cmd.index("-Y")  # after the truth's preferences, which they override
    cmd[at:at] = prefs
    with tempfile.TemporaryDirectory(prefix="alpnsniff-tshark-") as tmp:
        done = subprocess.run(cmd, capture_output=True, env=_tshark_env(tmp), timeout=120)
    closes: list[TsharkQuicClose] = []
    hellos, alerts, complete = parse_pdml(io.BytesIO(done.stdout), closes)
    return TsharkView(path, tuple(hellos), tuple(alerts), done.returncode,
                      done.stderr.decode("utf-8", "replace"), complete, tuple(closes))  # fmt: skip


def _tshark_field(path: Path, field: str, prefs: tuple[str, ...]) -> list[str]:
    cmd = ["tshark", "-n", "-r", str(path), *prefs, "-T", "fields", "-e", field]
    with tempfile.TemporaryDirectory(prefix="alpnsniff-tshark-") as tmp:
        done = subprocess.run(cmd, capture_output=True, text=True, env=_tshark_env(tmp),
                              timeout=120, check=True)  # fmt: skip
    return done.stdout.splitlines()


def _facts(result: RunResult) -> list[tuple[object, ...]]:
    return [
        (h.transport, h.frame, h.server_frame, h.client_port, h.server_port,
         h.alpn_offered_raw, h.alpn_selected_raw, h.selection, h.sni)
        for h in result.handshakes
    ]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_span_capture_matches_tshark_and_the_unwrapped_capture(
    case: tuple[str, str, str], tshark_cache: TsharkCache, tmp_path: Path
) -> None:
    _, encap, source = case
    path = _capture(case, tmp_path)
    prefs = TSHARK_PREFS.get(encap, ())
    frames = len(SPAN.read_pcap(path)[1])

    # 1. tshark sees the encapsulation, with span_wrap's values, on every frame
    field, values = TSHARK_FIELD[encap]
    shown = _tshark_field(path, field, prefs)
    assert len(shown) == frames and set(shown) == values, (field, shown)

    # 2. alpnsniff's records are tshark's
    unrouted = sorted(TUNNEL_UDP_PORTS - pipeline.TUNNEL_UDP_PORTS)
    assert encap not in UDP_ENCAPS or not unrouted, (
        f"pipeline.TUNNEL_UDP_PORTS lacks {unrouted}: the hot loop peeks them as plain UDP "
        "and never decodes the tunnel (it must import alpnsniff.net.tunnels.TUNNEL_UDP_PORTS)"
    )
    view = _tshark_view(path, prefs) if prefs else tshark_cache.get(path)
    assert view.returncode == 0 and view.pdml_complete, view.stderr
    result = analyze_file(path)
    tcp = compare_tcp(view, result.handshakes)
    quic = compare_quic(view, result.handshakes)
    assert [str(d) for d in tcp.differences + quic.differences] == []
    compared = tcp.counts["ch_compared"] + quic.counts["quic_ch_compared"]
    assert compared == len(result.handshakes) > 0

    # 3. ... and those of the capture before it was wrapped; every frame's wrapping counted
    assert _facts(result) == _facts(analyze_file(CAPTURES / source))
    for counter in DECODE_COUNTS[encap]:
        assert result.stats[counter] == frames, counter
    assert not [k for k in result.stats if k.startswith(("skipped_", "decode_tunnel-fallback"))]
