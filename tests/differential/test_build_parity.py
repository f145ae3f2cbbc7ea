"""The compiled build and the pure Python source give the same outputs on every capture of
the differential suite (``captures/``, ``../shared/realcap``, ``../shared/corpus/pcaps``).

Both run the same command, ``python -m alpnsniff.cli read`` over all the captures at once
with every key log beside them, one with the installed compiled build on ``PYTHONPATH``, the
other with the source tree: the ndjson rows, the ``--stats`` counts (but the peak RSS), stderr and
the exit status must be identical. Only meaningful when the build under test is compiled (CI's main
run); on a pure build it is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tshark_view import capture_files

from tests.conftest import COMPILED, INSTALLED_SITE, REPO, SHARED

FOLDERS = (REPO / "captures", SHARED / "realcap", SHARED / "corpus" / "pcaps")

pytestmark = pytest.mark.skipif(
    not COMPILED or INSTALLED_SITE is None,
    reason="compares the compiled build with the source: needs `pip install .` with a C "
    "compiler and the Python headers (CI's main run has them)",
)


def _run(tree: Path, files: list[Path], keylogs: list[Path], out: Path) -> tuple[int, str]:
    """One build's run over every capture: (exit status, stderr); its rows and counts go to
    ``out``.ndjson and ``out``.stats.json."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-P", "-m", "alpnsniff.cli", "read", "-T", "ndjson", "-q"]
    command += ["-o", f"{out}.ndjson", "--stats", f"{out}.stats.json", "--jobs", "1"]
    for keylog in keylogs:
        command += ["--keylog", str(keylog)]
    proc = subprocess.run(
        [*command, *map(str, files)],
        env=env,
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return proc.returncode, proc.stderr


def _counts(path: Path) -> dict[str, int]:
    """The ``--stats`` counts but the process's peak memory (the one that may differ)."""
    counts = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in counts.items() if not k.startswith("peak_rss_kb")}


def _build_of(tree: Path) -> str:
    code = "from alpnsniff._build_plan import build_kind; print(build_kind())"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True, check=True
    ).stdout.strip()


def test_compiled_and_pure_give_the_same_outputs(tmp_path: Path) -> None:
    assert INSTALLED_SITE is not None
    folders = [f for f in FOLDERS if f.is_dir()]
    files = [p for folder in folders for p in capture_files(folder)]
    keylogs = sorted(p for folder in folders for p in folder.glob("*.keys"))
    # each side really is the build it stands for
    assert _build_of(INSTALLED_SITE) == "compiled (mypyc)"
    assert _build_of(REPO) == "pure Python"

    compiled = _run(INSTALLED_SITE, files, keylogs, tmp_path / "compiled")
    pure = _run(REPO, files, keylogs, tmp_path / "pure")

    assert compiled == pure
    rows = (tmp_path / "compiled.ndjson").read_bytes()
    assert rows == (tmp_path / "pure.ndjson").read_bytes()
    stats = [_counts(tmp_path / f"{build}.stats.json") for build in ("compiled", "pure")]
    assert stats[0] == stats[1]
    assert stats[0]["packets"] > 10_000
    # the comparison covered real work: every folder's captures gave records
    assert rows.count(b"\n") > (300 if len(folders) == len(FOLDERS) else 20)
