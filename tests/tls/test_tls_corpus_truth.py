"""Every TLS-over-TCP hello of the third-party corpus against tshark's stored view of it.

For each TCP direction that starts with TLS, the hellos the stream parser and the hello
parsers find are compared with truth/NAME.tsv (tshark 4.0.17, see corpus/truth/README.md):
the count per direction, legacy version, supported_versions, SNI, ALPN octets, extension
types, ECH / ESNI / NPN flags, the server's NPN list and the ALPS list. Streams that start
with something else (STARTTLS, CONNECT, PROXY, SOCKS) are the pipeline's business, not
compared here.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from tlscap import PCAPS, TRUTH, tls_payloads, truth_rows

from alpnsniff.errors import DissectError
from alpnsniff.tls.hello import ClientHello, ServerHello, parse_client_hello, parse_server_hello
from alpnsniff.tls.stream import HandshakeMessage, TlsStreamParser

FILES = sorted(p.name for p in PCAPS.iterdir()) if PCAPS.is_dir() else []

# Where tshark 4.0 and the RFC part ways, the RFC wins; each entry says why.
KNOWN = {
    # Draft-14 ServerHello (version 0x0304, no session_id): tshark lists no extensions,
    # the hello carries key_share in its draft-14 code point 40.
    ("suricata-verify__tls_tls13-draft14_tls13_draft14", 2, "ext_types"): ("40", ""),
}


def _flag(b: bool) -> str:
    return "1" if b else "0"


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("latin-1")


def _fields(x: ClientHello | ServerHello) -> dict[str, str]:
    common = {
        "legacy_version": f"0x{x.legacy_version:04x}",
        "alpn_hex": ",".join(p.hex() for p in x.alpn),
        "ext_types": ",".join(map(str, x.extensions)),
    }
    if isinstance(x, ClientHello):
        alps = (
            "" if 17613 in x.extensions else ",".join(map(_text, x.alps))
        )  # tshark 4.0: 17513 only
        return common | {
            "supported_versions": ",".join(f"0x{v:04x}" for v in x.supported_versions),
            "sni": _text(x.sni),
            "ech": _flag(x.ech is not None or 0xFE0D in x.extensions),
            "esni": _flag(x.esni),
            "npn_ext": _flag(x.npn),
            "alps_alpn": alps,
        }
    return common | {
        "supported_versions": f"0x{x.selected_version:04x}" if 43 in x.extensions else "",
        "npn_protocols": ",".join(map(_text, x.npn_protocols)),
    }


def _compare(pcap: str) -> tuple[int, list[str]]:
    """(hellos compared, differences) for one capture."""
    name = pcap.rsplit(".", 1)[0]
    rows = [r for r in truth_rows(name) if r["proto"] == "tls" and r["hs_type"] in ("1", "2")]
    truth: dict[tuple[str, int, str, int, int], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        key = (r["src"], int(r["sport"]), r["dst"], int(r["dport"]), int(r["hs_type"]))
        truth[key].append(r)
    compared = 0
    diffs: list[str] = []
    for d, data in tls_payloads(PCAPS / pcap):
        mine: dict[int, list[HandshakeMessage]] = defaultdict(list)
        for e in TlsStreamParser().feed(data):
            if isinstance(e, HandshakeMessage) and e.msg_type in (1, 2):
                mine[e.msg_type].append(e)
        for t in (1, 2):
            key = (d.src, d.sport, d.dst, d.dport, t)
            expected = truth.get(key, [])
            if len(expected) != len(mine[t]):
                diffs.append(f"{key}: tshark {len(expected)} hellos, here {len(mine[t])}")
                continue
            for r, msg in zip(expected, mine[t], strict=True):
                compared += 1
                try:
                    x = parse_client_hello(msg.body) if t == 1 else parse_server_hello(msg.body)
                except DissectError as err:
                    if r["anomaly"] != "malformed":
                        diffs.append(f"{key}: {err} (tshark: no anomaly)")
                    continue
                for field, got in _fields(x).items():
                    want = r[field]
                    if got != want and KNOWN.get((name, t, field)) != (got, want):
                        diffs.append(f"{key} {field}: here {got!r}, tshark {want!r}")
    return compared, diffs


@pytest.mark.parametrize("pcap", FILES)
def test_hellos_match_tshark_truth(pcap: str) -> None:
    name = pcap.rsplit(".", 1)[0]
    if not (TRUTH / f"{name}.tsv").is_file():
        pytest.skip("no truth file")
    compared, diffs = _compare(pcap)
    assert diffs == []
    if compared == 0:
        pytest.skip("no TCP direction of this capture starts with TLS")


def test_most_of_the_corpus_is_compared() -> None:
    if not FILES:
        pytest.skip(f"{PCAPS} absent")
    total = sum(_compare(p)[0] for p in FILES if _has_truth(p))
    assert total >= 1100


def _has_truth(pcap: str) -> bool:
    return (TRUTH / f"{pcap.rsplit('.', 1)[0]}.tsv").is_file()


def test_truth_files_exist_for_the_corpus() -> None:
    if not FILES:
        pytest.skip(f"{PCAPS} absent")
    assert all(_has_truth(p) for p in FILES)
