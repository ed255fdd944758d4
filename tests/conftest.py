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


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT in the INSTRUCTOR layout (Transformer, Pooling, Dense, Normalize)."""
    from instructembed.testing import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("models") / "tiny-bert", "bert")


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random T5 encoder (GTR/INSTRUCTOR style) in the INSTRUCTOR layout."""
    from instructembed.testing import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("models") / "tiny-t5", "t5")


@pytest.fixture(scope="session")
def minilm():  # type: ignore[no-untyped-def]
    """The real packaged all-MiniLM-L6-v2, loaded once."""
    from instructembed import Embedder

    return Embedder.load("all-MiniLM-L6-v2")
