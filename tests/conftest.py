"""Shared fixtures: where the real captures are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
