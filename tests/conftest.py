"""Shared offline fixtures: the real data directory, the packaged model, tiny random models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
KERNEL_JITTER = "INSTRUCTEMBED_TEST_KERNEL_JITTER"


def pytest_configure(config: pytest.Config) -> None:
    """`make unit-other-kernels` sets INSTRUCTEMBED_TEST_KERNEL_JITTER=1: see `helpers.kernels`."""
    if os.environ.get(KERNEL_JITTER) != "1":
        return
    import importlib

    from helpers.kernels import shape_jitter

    for module, cls in [
        ("instructembed.backends.torch_backend", "TorchBackend"),
        ("instructembed.backends.onnx_backend", "OnnxBackend"),
        ("instructembed.backends.openvino_backend", "OpenVinoBackend"),
    ]:
        try:
            backend = getattr(importlib.import_module(module), cls)
        except ImportError:  # that runtime's extra is not installed
            continue
        backend.run = shape_jitter(backend.run)


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
