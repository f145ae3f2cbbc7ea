"""tshark's view of a capture: one row per TLS handshake message, as tshark 4.0.17 dissects it.

The differential tests compare alpnsniff with this view. The preferences are those of the
corpus ground truth (``../shared/corpus/truth/README.md``): heuristics first, TCP and TLS
reassembly on, no keys (pcapng Decryption Secrets Blocks are dropped on a temporary copy), plus
a few per-file overrides (:data:`OVERRIDES`: the corpus's, copied from ``corpus/tools/tshark_overrides.tsv`` so
the project's own captures need no ``../shared``).

tshark runs once per file with ``-T pdml``: PDML gives each field's exact octets (``value``) as
hex, so ALPN protocol IDs come out as the raw bytes on the wire, never the display string.
"""

from __future__ import annotations

import gzip
import ipaddress
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

TSHARK_VERSION = "4.0.17"  # the version the stored truth was made with

PREFS: tuple[str, ...] = (
    "-n",
    "-o", "tcp.desegment_tcp_streams:TRUE",
    "-o", "tcp.reassemble_out_of_order:TRUE",
    "-o", "tcp.try_heuristic_first:TRUE",
    "-o", "udp.try_heuristic_first:TRUE",
    "-o", "tls.desegment_ssl_records:TRUE",
    "-o", "tls.desegment_ssl_application_data:TRUE",
    "-o", "quic.reassemble_crypto_out_of_order:TRUE",
    "-o", "tls.keylog_file:",
)  # fmt: skip

HELLO_FILTER = (
    "tls.handshake.type == 1 || tls.handshake.type == 2"
    " || (tls.record.version == 0x0002 && tls.handshake.type == 4)"
    " || dtls.handshake.type == 1 || dtls.handshake.type == 2"
    ' || gquic.tag == "CHLO"'
)
ALERT_FILTER = "tls.alert_message.desc == 120"
# QUIC CONNECTION_CLOSE frames tshark can read without keys (those in Initial packets):
# 0x1c transport (CRYPTO_ERROR 0x178 = TLS alert 120 no_application_protocol), 0x1d application.
QUIC_CLOSE_FILTER = "quic.frame_type == 0x1c || quic.frame_type == 0x1d"
DISPLAY_FILTER = f"{HELLO_FILTER} || {ALERT_FILTER} || {QUIC_CLOSE_FILTER}"

# Per-file extra arguments: a copy of corpus/tools/tshark_overrides.tsv (file name -> args).
# The project's own captures' overrides (captures/).
PROJECT_OVERRIDES: dict[str, tuple[str, ...]] = {
    # TZSP (UDP 37008) datagrams start 01 00 00 01: with heuristics first, tshark's DNS
    # heuristic takes each for a query ("ID 0x0100, 1 question") and never reaches TZSP. That
    # is tshark's mistake; without the DNS heuristic it decodes them as alpnsniff does.
    "span_tzsp.pcap": ("--disable-heuristic", "dns_udp"),
}
CORPUS_OVERRIDES: dict[str, tuple[str, ...]] = {
    # Bare ACKs carry 2 bytes (00 00) at the ClientHello's sequence number, so reassembly drops
    # the CH; without desegmentation each CH fits in one segment (retransmissions become rows).
    "nDPI__heuristic_tcp_ack_payload.pcap": (
        "-o", "tcp.desegment_tcp_streams:FALSE",
        "-o", "tcp.analyze_sequence_numbers:FALSE",
    ),
    # RDP switches to TLS after the X.224 exchange: needs Decode-As.
    "nDPI__rdp.pcap": ("-d", "tcp.port==3389,tls"),
    "zeek__rdp_rdp-no-cookie-mstshash.pcap": ("-d", "tcp.port==3389,tls"),
}  # fmt: skip
OVERRIDES: dict[str, tuple[str, ...]] = {**CORPUS_OVERRIDES, **PROJECT_OVERRIDES}

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz", ".cap")
TSHARK_TIMEOUT_S = 300  # one capture; the largest corpus file takes ~10 s
DSB_BLOCK_TYPE = 0x0000000A  # pcapng Decryption Secrets Block type


@dataclass(frozen=True, slots=True)
class TsharkHello:
    """One ClientHello (hs_type 1) or ServerHello / HelloRetryRequest (hs_type 2)."""

    frame: int  # frame where tshark finished the message (last frame of a reassembly)
    proto: str  # "tls" (over TCP), "sslv2", "quic", "dtls", "gquic"
    transport: str  # "tcp" or "udp" (innermost)
    stream: int | None  # tcp.stream / udp.stream
    src: str
    dst: str
    sport: int
    dport: int
    hs_type: int  # 1 ClientHello, 2 ServerHello/HRR (gQUIC CHLO: 1)
    alpn: tuple[bytes, ...]  # ALPN protocol IDs, wire order, exact octets
    sni: str | None  # tshark's display form; None when absent
    is_hrr: bool
    sslv2: bool
    reasm_frames: tuple[int, ...]  # frames the message came from (sorted)
    quic_version: str = ""
    name: str = ""  # tshark's message name ("Client Hello", "Hello Retry Request", ...)
    legacy_version: int = 0  # tls.handshake.version (0x0303 ...)
    supported_versions: tuple[int, ...] = ()  # in wire order, GREASE included
    quic_dcid: str = ""  # QUIC: DCID / SCID (hex) of the packet that completed the message
    quic_scid: str = ""

    @property
    def tls13(self) -> bool:
        """A ServerHello / HRR that selects TLS 1.3 or one of its drafts: supported_versions
        (RFC 8446), else the version field (drafts before 22 put 0x7fNN or 0x0304 there);
        0xfbNN are Facebook's fizz drafts (0xfb1a: draft 26), whose ALPN is encrypted too."""
        if self.hs_type != 2:
            return False
        chosen = self.supported_versions[0] if self.supported_versions else self.legacy_version
        return chosen == 0x0304 or chosen >> 8 in (0x7F, 0xFB)

    @property
    def alpn_hex(self) -> str:
        """The truth's ``alpn_hex`` column: hex of each ID, comma-joined."""
        return ",".join(p.hex() for p in self.alpn)


@dataclass(frozen=True, slots=True)
class TsharkAlert:
    """A plaintext TLS alert 120 (no_application_protocol) over TCP."""

    frame: int
    stream: int | None
    src: str
    dst: str
    sport: int
    dport: int
    level: int
    desc: int


@dataclass(frozen=True, slots=True)
class TsharkQuicClose:
    """A QUIC CONNECTION_CLOSE frame tshark decrypted (Initial packets: no keys needed)."""

    frame: int
    src: str
    dst: str
    sport: int
    dport: int
    frame_type: int  # 0x1c (transport error) or 0x1d (application error)
    error_code: int  # 0x178 = CRYPTO_ERROR carrying TLS alert 120
    tls_alert: int | None  # quic.cc.error_code.tls_alert, for CRYPTO_ERROR (0x100-0x1ff)
    quic_version: str  # of the packet that carried it ("0x00000001" ...)
    quic_dcid: str


@dataclass(frozen=True, slots=True)
class TsharkView:
    """Everything tshark showed for one capture."""

    path: Path
    rows: tuple[TsharkHello, ...]  # every hello, in tshark's document order
    alerts: tuple[TsharkAlert, ...]
    returncode: int
    stderr: str
    pdml_complete: bool  # False when tshark stopped mid-document (damaged capture)
    quic_closes: tuple[TsharkQuicClose, ...] = ()  # CONNECTION_CLOSE frames in QUIC Initials

    @property
    def tcp(self) -> list[TsharkHello]:
        """TLS (and SSLv2-format) hellos over TCP."""
        return [r for r in self.rows if _is_tcp_tls(r)]

    @property
    def quic(self) -> list[TsharkHello]:
        """TLS hellos in QUIC CRYPTO frames (for the QUIC comparison)."""
        return [r for r in self.rows if r.proto == "quic"]

    @property
    def other(self) -> list[TsharkHello]:
        """DTLS, gQUIC CHLO, and anything else tshark found over UDP."""
        return [r for r in self.rows if not _is_tcp_tls(r) and r.proto != "quic"]


def _is_tcp_tls(row: TsharkHello) -> bool:
    return row.transport == "tcp" and row.proto in ("tls", "sslv2")


def tshark_unavailable_reason() -> str | None:
    """None when tshark TSHARK_VERSION is on PATH, else why the tests must skip."""
    exe = shutil.which("tshark")
    if exe is None:
        return "tshark is not on PATH"
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"tshark --version failed: {err}"
    first = out.splitlines()[0] if out else ""
    if f" {TSHARK_VERSION} " not in first + " ":
        return f"need tshark {TSHARK_VERSION} (the truth's version), found: {first!r}"
    return None


def capture_params(folders: Iterable[tuple[str, Path]]) -> list[Any]:
    """pytest params, one per capture file of each (label, folder); a folder that is absent
    or empty gives one skipped param saying so. Files outside captures/ are marked shared."""
    import pytest

    out: list[Any] = []
    for label, folder in folders:
        if not folder.is_dir():
            mark = pytest.mark.skip(reason=f"{folder} absent")
            out.append(pytest.param(None, id=f"{label}-absent", marks=mark))
            continue
        files = capture_files(folder)
        if not files:
            mark = pytest.mark.skip(reason=f"no capture files in {folder}")
            out.append(pytest.param(None, id=f"{label}-empty", marks=mark))
        marks = () if label == "captures" else (pytest.mark.shared,)
        out.extend(pytest.param(p, id=f"{label}/{p.name}", marks=marks) for p in files)
    return out


def capture_files(folder: Path) -> list[Path]:
    """The capture files directly in ``folder`` (sorted by name)."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES)
    )


# --- pcapng Decryption Secrets Blocks --------------------------------------------------------


def _open_bytes(path: Path) -> bytes:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            return fh.read()
    return path.read_bytes()


def strip_secrets(data: bytes) -> tuple[bytes, int]:
    """Drop pcapng Decryption Secrets Blocks; returns (new bytes, blocks dropped).

    Other formats, and a damaged tail, are returned unchanged from where parsing stops.
    """
    if data[:4] != b"\x0a\x0d\x0d\x0a":
        return data, 0
    out = bytearray()
    pos, dropped, endian = 0, 0, "<"
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":  # SHB: its byte-order magic sets endian
            endian = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack(endian + "II", data[pos : pos + 8])
        if blen < 12 or pos + blen > len(data):
            break
        if btype == DSB_BLOCK_TYPE:
            dropped += 1
        else:
            out += data[pos : pos + blen]
        pos += blen
    out += data[pos:]
    return bytes(out), dropped


# --- PDML ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Ctx:
    frame: int
    transport: str = ""
    proto: str = "tls"
    src: str = ""
    dst: str = ""
    sport: int = 0
    dport: int = 0
    stream: int | None = None
    quic_version: str = ""
    quic_dcid: str = ""
    quic_scid: str = ""
    segs: list[str] = field(default_factory=list)
    qfrags: list[str] = field(default_factory=list)
    hsfrags: list[str] = field(default_factory=list)


def _child_show(el: ET.Element, name: str) -> str | None:
    for c in el:
        if c.get("name") == name:
            return c.get("show")
    return None


def _child_int(el: ET.Element, name: str) -> int:
    """A direct child's value (its octets, big-endian); 0 when absent or not hex."""
    for c in el:
        if c.get("name") == name:
            try:
                return int(c.get("value", "") or "0", 16)
            except ValueError:
                return 0
    return 0


def _hello(el: ET.Element, pfx: str, ctx: _Ctx, sslv2: bool) -> TsharkHello | None:
    htype = _child_show(el, pfx + ".handshake.type")
    if sslv2:  # SSLv2 message codes: 1 CLIENT-HELLO, 4 SERVER-HELLO (2 is CLIENT-MASTER-KEY)
        htype = {"1": "1", "4": "2"}.get(htype or "")
    if htype not in ("1", "2"):
        return None
    showname = el.get("showname", "")
    if "(Fragment)" in showname:  # DTLS piece; the "(Reassembled)" message is the row
        return None
    alpn: list[bytes] = []
    sni: list[str] = []
    frags: list[str] = []
    versions: list[int] = []
    for d in el.iter():
        n = d.get("name")
        if n == pfx + ".handshake.extensions.supported_version":
            versions.append(int(d.get("value", "") or "0", 16))
        elif n == pfx + ".handshake.extensions_alpn_str":
            alpn.append(bytes.fromhex(d.get("value", "")))
        elif n == pfx + ".handshake.extensions_server_name":
            sni.append(d.get("show", ""))
        elif n in ("tls.handshake.fragment", "dtls.fragment"):
            frags.append(d.get("show", ""))
    frames = {*ctx.segs, *ctx.qfrags, *frags, *ctx.hsfrags, str(ctx.frame)}
    proto = "sslv2" if sslv2 else (ctx.proto if pfx == "tls" else "dtls")
    return TsharkHello(
        frame=ctx.frame,
        proto=proto,
        transport=ctx.transport,
        stream=ctx.stream,
        src=ctx.src,
        dst=ctx.dst,
        sport=ctx.sport,
        dport=ctx.dport,
        hs_type=int(htype),
        alpn=tuple(alpn),
        sni=",".join(sni) if sni else None,
        is_hrr="Hello Retry Request" in showname,
        sslv2=sslv2,
        reasm_frames=tuple(sorted(int(x) for x in frames if x.isdigit())),
        quic_version=ctx.quic_version,
        name=showname.replace("Handshake Protocol: ", "").replace(" Record Layer:", ""),
        legacy_version=_child_int(el, pfx + ".handshake.version"),
        supported_versions=tuple(versions),
        quic_dcid=ctx.quic_dcid if ctx.proto == "quic" else "",
        quic_scid=ctx.quic_scid if ctx.proto == "quic" else "",
    )


def _alert(el: ET.Element, ctx: _Ctx) -> TsharkAlert | None:
    desc = _child_show(el, "tls.alert_message.desc")
    level = _child_show(el, "tls.alert_message.level")
    if desc is None or not desc.isdigit() or int(desc) != 120 or ctx.transport != "tcp":
        return None
    return TsharkAlert(
        frame=ctx.frame,
        stream=ctx.stream,
        src=ctx.src,
        dst=ctx.dst,
        sport=ctx.sport,
        dport=ctx.dport,
        level=int(level) if level and level.isdigit() else -1,
        desc=int(desc),
    )


def _quic_close(el: ET.Element, ctx: _Ctx) -> TsharkQuicClose | None:
    """A ``quic.frame`` element that is a CONNECTION_CLOSE, else None."""
    ftype = _child_show(el, "quic.frame_type")
    if ftype not in ("28", "29"):
        return None
    alert = _child_show(el, "quic.cc.error_code.tls_alert")
    code = _child_show(el, "quic.cc.error_code") or _child_show(el, "quic.cc.error_code.app")
    return TsharkQuicClose(
        frame=ctx.frame, src=ctx.src, dst=ctx.dst, sport=ctx.sport, dport=ctx.dport,
        frame_type=int(ftype), error_code=int(code) if code and code.isdigit() else -1,
        tls_alert=int(alert) if alert and alert.isdigit() else None,
        quic_version=ctx.quic_version, quic_dcid=ctx.quic_dcid,
    )  # fmt: skip


def _walk(
    el: ET.Element,
    ctx: _Ctx,
    hellos: list[TsharkHello],
    alerts: list[TsharkAlert],
    closes: list[TsharkQuicClose] | None = None,
) -> None:
    # TLS handshake-fragment reassembly info is a sibling of the reassembled handshake element.
    saved = ctx.hsfrags
    for ch in el:
        if ch.get("name") in ("tls.handshake.fragments", "dtls.fragments"):
            ctx.hsfrags = [
                d.get("show", "")
                for d in ch.iter()
                if d.get("name") in ("tls.handshake.fragment", "dtls.fragment")
            ]
    for ch in el:
        n = ch.get("name", "")
        if ch.tag == "proto":
            if n in ("tcp", "udp"):
                ctx.transport, ctx.proto, ctx.quic_version = n, "tls", ""
                ctx.segs, ctx.qfrags, ctx.hsfrags = [], [], []
            elif n == "quic":
                ctx.proto, ctx.quic_version = "quic", ""
                ctx.quic_dcid = ctx.quic_scid = ""
                ctx.qfrags = [
                    d.get("show", "")
                    for d in ch.iter("field")
                    if d.get("name") == "quic.crypto.fragment"
                ]
            elif n == "gquic":
                _gquic(ch, ctx, hellos)
                continue
        elif ch.tag == "field":
            show = ch.get("show", "")
            if n in ("ip.src", "ipv6.src"):
                ctx.src = show
            elif n in ("ip.dst", "ipv6.dst"):
                ctx.dst = show
            elif n in ("tcp.srcport", "udp.srcport"):
                ctx.sport = int(show)
            elif n in ("tcp.dstport", "udp.dstport"):
                ctx.dport = int(show)
            elif n in ("tcp.stream", "udp.stream"):
                ctx.stream = int(show)
            elif n == "quic.version" and not ctx.quic_version:
                ctx.quic_version = show
            elif n == "quic.dcid":
                ctx.quic_dcid = ch.get("value", "")
            elif n == "quic.scid":
                ctx.quic_scid = ch.get("value", "")
            elif n == "quic.frame" and (close := _quic_close(ch, ctx)) is not None:
                if closes is not None:
                    closes.append(close)
                continue
            elif n in ("tcp.segments", "tls.segments"):
                ctx.segs = [
                    d.get("show", "")
                    for d in ch.iter()
                    if d.get("name") in ("tcp.segment", "tls.segment")
                ]
            elif n == "tls.record" and _child_show(ch, "tls.handshake.type") is not None:
                row = _hello(ch, "tls", ctx, sslv2=True)  # SSLv2 records carry the message
                if row is not None:
                    hellos.append(row)
                continue
            elif n in ("tls.handshake", "dtls.handshake"):
                row = _hello(ch, n.split(".")[0], ctx, sslv2=False)
                if row is not None:
                    hellos.append(row)
                continue
            elif n == "tls.alert_message":
                alert = _alert(ch, ctx)
                if alert is not None:
                    alerts.append(alert)
                continue
        _walk(ch, ctx, hellos, alerts, closes)
    ctx.hsfrags = saved


def _gquic(el: ET.Element, ctx: _Ctx, hellos: list[TsharkHello]) -> None:
    tags = [d.get("show") for d in el.iter("field") if d.get("name") == "gquic.tag"]
    if "CHLO" not in tags:
        return
    ver = next(
        (d.get("show", "") for d in el.iter("field") if d.get("name") == "gquic.version"), ""
    )
    sni = next((d.get("show") for d in el.iter("field") if d.get("name") == "gquic.tag.sni"), None)
    hellos.append(
        TsharkHello(
            frame=ctx.frame, proto="gquic", transport=ctx.transport, stream=ctx.stream,
            src=ctx.src, dst=ctx.dst, sport=ctx.sport, dport=ctx.dport, hs_type=1, alpn=(),
            sni=sni, is_hrr=False, sslv2=False, reasm_frames=(ctx.frame,), quic_version=ver,
            name="gQUIC CHLO",
        )
    )  # fmt: skip


def parse_pdml(
    stream: IO[bytes], closes: list[TsharkQuicClose] | None = None
) -> tuple[list[TsharkHello], list[TsharkAlert], bool]:
    """Rows from a PDML document; the flag is False when the document ended early.
    QUIC CONNECTION_CLOSE frames are appended to ``closes`` when it is given."""
    hellos: list[TsharkHello] = []
    alerts: list[TsharkAlert] = []
    root: ET.Element | None = None
    try:
        for event, el in ET.iterparse(stream, events=("start", "end")):
            if event == "start":
                if root is None:
                    root = el
                continue
            if el.tag != "packet":
                continue
            frame = next(
                (
                    int(d.get("show", "0"))
                    for d in el.iter("field")
                    if d.get("name") == "frame.number"
                ),
                0,
            )
            _walk(el, _Ctx(frame=frame), hellos, alerts, closes)
            if root is not None:
                root.clear()  # keep memory flat on big captures
    except ET.ParseError:
        return hellos, alerts, False
    return hellos, alerts, True


# --- running tshark ------------------------------------------------------------------------


def tshark_command(path: Path, name: str | None = None) -> list[str]:
    """The tshark command line for ``path``; ``name`` picks the per-file overrides."""
    return [
        "tshark", "-r", str(path), *PREFS, *OVERRIDES.get(name or path.name, ()),
        "-Y", DISPLAY_FILTER, "-T", "pdml",
    ]  # fmt: skip


def run_tshark(path: Path) -> TsharkView:
    """tshark's view of one capture (passive, no keys), with the truth's preferences."""
    with tempfile.TemporaryDirectory(prefix="alpnsniff-tshark-") as tmp:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=tmp)  # an empty profile: no local prefs
        target = path
        if ".pcapng" in path.name:
            stripped, dropped = strip_secrets(_open_bytes(path))
            if dropped:  # the passive view: tshark must not decrypt with embedded keys
                target = Path(tmp) / path.name.removesuffix(".gz")
                target.write_bytes(stripped)
        with (
            open(Path(tmp) / "stderr", "w+b") as err,
            subprocess.Popen(
                tshark_command(target, path.name), stdout=subprocess.PIPE, stderr=err, env=env
            ) as proc,
        ):
            assert proc.stdout is not None
            closes: list[TsharkQuicClose] = []
            hellos, alerts, complete = parse_pdml(proc.stdout, closes)
            proc.stdout.read()  # drain whatever follows a parse error
            rc = proc.wait(timeout=TSHARK_TIMEOUT_S)
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")
    return TsharkView(
        path=path,
        rows=tuple(hellos),
        alerts=tuple(alerts),
        returncode=rc,
        stderr=stderr,
        pdml_complete=complete,
        quic_closes=tuple(closes),
    )


class TsharkCache:
    """Runs tshark on many files in the background (2 at a time), each file once."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tshark")
        self._futures: dict[Path, Future[TsharkView]] = {}
        self._lock = threading.Lock()

    def prefetch(self, paths: Iterable[Path]) -> None:
        with self._lock:
            for p in paths:
                if p not in self._futures:
                    self._futures[p] = self._pool.submit(run_tshark, p)

    def get(self, path: Path) -> TsharkView:
        self.prefetch([path])
        return self._futures[path].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# --- the stored truth ----------------------------------------------------------------------


def read_truth(tsv: Path) -> list[dict[str, str]]:
    """Rows of a ``truth/NAME.tsv`` file as dicts (column -> text)."""
    lines = tsv.read_text(encoding="utf-8").splitlines()
    cols = lines[0].split("\t")
    return [dict(zip(cols, ln.split("\t"), strict=False)) for ln in lines[1:] if ln]


def truth_name(capture: Path) -> str:
    """``NAME`` of ``truth/NAME.tsv`` for a corpus capture (its name minus the last suffix)."""
    return capture.name.rsplit(".", 1)[0]


def norm_ip(a: str) -> str:
    try:
        return str(ipaddress.ip_address(a))
    except ValueError:
        return a
