"""What ``pip install alpnsniff`` pulls in is used: every runtime dependency is imported by
the package (test-only tools are dev extras)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# distribution name -> the module it installs, where they differ
IMPORT_NAME = {"pyyaml": "yaml"}


def test_every_runtime_dependency_is_imported_by_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower() for d in project["dependencies"]]
    assert names, "no runtime dependency at all?"
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "alpnsniff").rglob("*.py"))
    for name in names:
        module = IMPORT_NAME.get(name, name.replace("-", "_"))
        imported = re.search(rf"^\s*(import|from) {re.escape(module)}\b", source, re.M)
        assert imported, f"{name} is a runtime dependency that alpnsniff never imports"
