"""alpnsniff against tshark 4.0.17 on every capture: TLS over TCP.

For each capture in ``captures/``, ``../shared/realcap`` and ``../shared/corpus/pcaps``, every
ClientHello tshark dissects over TCP must come out of alpnsniff with the same offered ALPN
octets, matched by connection and frame, and every ServerHello ALPN tshark shows must be the
record's ``alpn_selected_raw`` (selection "visible"). See ``compare.py`` for the rules.

Out of scope here (UDP): QUIC, DTLS and gQUIC rows (QUIC has its own comparison later).

``KNOWN_DIFFERENCES`` lists every difference that is not an alpnsniff bug, each checked by
reading the bytes (``tshark -V -x``). A listed difference that no longer occurs fails too, so
the table stays true. Differences that are alpnsniff bugs are NOT listed: they fail.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from compare import compare_tcp
from tshark_view import TsharkCache, capture_files

from alpnsniff.records import Handshake

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
FOLDERS: tuple[tuple[str, Path], ...] = (
    ("captures", REPO / "captures"),
    ("realcap", SHARED / "realcap"),
    ("corpus", SHARED / "corpus" / "pcaps"),
)

pytestmark = [pytest.mark.tshark]


@dataclass(frozen=True, slots=True)
class Known:
    file: str
    kind: str  # a compare.py kind: missing, extra, frame, alpn, sh_alpn, ...
    frames: tuple[int, ...]  # tshark's frame (alpnsniff's for extra / sh_extra / alert_extra)
    what: str
    right: str  # who is right: "alpnsniff", "tshark", "both"
    why: str


KNOWN_DIFFERENCES: tuple[Known, ...] = ()


def _params() -> list[object]:
    out: list[object] = []
    for label, folder in FOLDERS:
        if not folder.is_dir():
            mark = pytest.mark.skip(reason=f"{folder} absent")
            out.append(pytest.param(None, id=f"{label}-absent", marks=mark))
            continue
        files = capture_files(folder)
        if not files:
            mark = pytest.mark.skip(reason=f"no capture files in {folder}")
            out.append(pytest.param(None, id=f"{label}-empty", marks=mark))
        out.extend(pytest.param(p, id=f"{label}/{p.name}") for p in files)
    return out


PARAMS = _params()
ALL_FILES = [p.values[0] for p in PARAMS if p.values[0] is not None]  # type: ignore[attr-defined]


def _analyze(path: Path) -> list[Handshake]:
    try:
        from alpnsniff.pipeline import analyze_file
    except ModuleNotFoundError as err:
        if err.name == "alpnsniff.pipeline":
            pytest.skip("alpnsniff.pipeline not written yet")
        raise
    return list(analyze_file(path).handshakes)


@pytest.mark.parametrize("capture", PARAMS)
def test_tls_over_tcp_matches_tshark(
    capture: Path, tshark_cache: TsharkCache, diff_tally: Counter[str]
) -> None:
    tshark_cache.prefetch(ALL_FILES)  # every file, in the background, 2 at a time
    records = _analyze(capture)
    view = tshark_cache.get(capture)
    cmp = compare_tcp(view, records)
    known = {(k.kind, f): k for k in KNOWN_DIFFERENCES if k.file == capture.name for f in k.frames}
    seen = {(d.kind, d.frame) for d in cmp.differences}
    diff_tally.update(cmp.counts)
    diff_tally["files"] += 1
    diff_tally["known"] += len(seen & known.keys())
    unexplained = [str(d) for d in cmp.differences if (d.kind, d.frame) not in known]
    gone = [
        f"{k.kind} @ frame {f}: {k.what}" for (kind, f), k in known.items() if (kind, f) not in seen
    ]
    assert not unexplained, "differences from tshark:\n" + "\n".join(unexplained)
    assert not gone, "known differences that no longer occur:\n" + "\n".join(gone)


def test_known_differences_are_well_formed() -> None:
    kinds = {"missing", "extra", "frame", "alpn", "sni", "sslv2", "sh_missing", "sh_alpn",
             "sh_extra", "alert_missing", "alert_extra"}  # fmt: skip
    for k in KNOWN_DIFFERENCES:
        assert k.kind in kinds, k
        assert k.frames, k
        assert k.right in ("alpnsniff", "tshark", "both"), k
        assert k.what and k.why, k
