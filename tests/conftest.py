"""Shared fixtures: where the real captures are, and which alpnsniff build is under test.

The suite tests the alpnsniff that pip installed. After ``pip install .`` (compiled with mypyc
where it can be) that is the copy in site-packages, not the source tree beside the tests,
which Python would otherwise import first (``python3 -m pytest`` puts the working directory
on ``sys.path``); after ``pip install -e .`` the two are the same. The report header names
the build.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the two-namespace lab's fixtures (veth_pair), for the live tests
pytest_plugins = ["tests.netns_lab", "tests.span_lab"]


def _installed_site() -> Path | None:
    """The directory holding a non-editable install of alpnsniff, or None (editable or none).
    Looked for on ``sys.path`` without the repository (an editable install points there)."""
    elsewhere = [p for p in sys.path if p and Path(p).resolve() != REPO]
    spec = importlib.machinery.PathFinder.find_spec("alpnsniff", elsewhere)
    if spec is None or spec.origin is None:
        return None
    init = Path(spec.origin).resolve()
    if init.parent == REPO / "alpnsniff":
        return None
    return init.parent.parent


INSTALLED_SITE = _installed_site()
if INSTALLED_SITE is not None:
    loaded = sys.modules.get("alpnsniff")
    if loaded is None:
        sys.path.insert(0, str(INSTALLED_SITE))
    elif not Path(str(loaded.__file__)).resolve().is_relative_to(INSTALLED_SITE.resolve()):
        raise RuntimeError(f"alpnsniff was imported from {loaded.__file__} before the tests chose")

from alpnsniff._build_plan import build_kind  # noqa: E402  (after the choice above)

BUILD = build_kind()
COMPILED = BUILD != "pure Python"


def pytest_report_header() -> str:
    import alpnsniff

    return f"alpnsniff under test: {Path(alpnsniff.__file__).parent}, {BUILD}"


def subprocess_env() -> dict[str, str]:
    """The environment for a ``python -c`` subprocess that must import the build under test."""
    return {**os.environ, "PYTHONPATH": str(INSTALLED_SITE or REPO)}


# Fault injection replaces a method on a class; a class mypyc compiled keeps its own.
pure_python_only = pytest.mark.skipif(
    COMPILED,
    reason="patches a method, which a class compiled by mypyc does not allow; "
    "CI runs this test on the pure Python build",
)
CAPTURES = REPO / "captures"
SHARED = REPO.parent / "shared"
REALCAP = SHARED / "realcap"
CORPUS = SHARED / "corpus"


def shared_file(*parts: str) -> Path:
    """A file under ../shared, or skip the test (a user's clone has no ../shared)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is only beside the repo in CI and dev machines)")
    return path
