"""Shared offline fixtures: the real data directory, the packaged model, tiny random models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _need(path: Path, what: str) -> Path:
    """Return `path`, or skip locally / fail in CI (CI always has ../shared)."""
    if path.exists():
        return path
    message = f"{what} not found at {path}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must have ../shared beside the checkout")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`: the real datasets (never copied into the project)."""
    return _need(SHARED_DATA, "the shared data directory")
