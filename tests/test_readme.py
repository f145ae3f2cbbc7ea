"""The README says what is true: its first commands, its sample output, its flags."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV = "python3 -m venv .venv && . .venv/bin/activate && "


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 3)
    return README[start : end if end > 0 else None]


def sh_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, re.S)]


def test_first_commands_make_a_venv_and_ci_runs_the_test_command() -> None:
    run, test = sh_blocks(section("First commands"))[:2]
    assert run == VENV + "pip install -e . && alpnsniff read captures/*.pcap*"
    assert test == VENV + "pip install -e '.[dev]' && python3 -m pytest"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # .ci/run runs the same chain (the linters between its install and its test step)
    assert f"\n{VENV}pip install -q -e '.[dev]'\n" in ci
    assert ci.rstrip().endswith("\npython3 -m pytest")
    assert f"# {test}\n" in ci
