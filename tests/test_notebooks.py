"""Every notebook under notebooks/ runs top to bottom."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# notebooks that sniff a live interface: they also run without CAP_NET_RAW (saying why they
# captured nothing); their first line is "<made> made, <captured> captured on lo"
LIVE = {"live_sniff.ipynb"}


def _has_cap_net_raw() -> bool:
    """CAP_NET_RAW (bit 13) in this process's effective set, which the kernel it starts gets."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("CapEff:"))
    return bool(int(line.split()[1], 16) >> 13 & 1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    # the first code cell's first line says how many handshakes it read: more than none
    first = next(c for c in nb.cells if c.cell_type == "code")
    text = "".join(o.get("text", "") for o in first.outputs if o.get("output_type") == "stream")
    words = text.split("\n", 1)[0].split()
    if path.name in LIVE:
        made, captured = int(words[0]), int(words[2])
        assert made > 0, text
        if _has_cap_net_raw():
            assert captured == made, text  # every handshake it made, seen on lo
        else:
            assert captured == 0 and "CAP_NET_RAW" in text, text
    else:
        assert int(words[2]) > 0, text
