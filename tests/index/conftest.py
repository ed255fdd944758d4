"""Fixtures for the index tests: a tiny BERT with a 32-token window, so ordinary texts need several
chunks (helpers live in index_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from instructembed import Embedder


@pytest.fixture(scope="session")
def short_bert(tiny_bert_dir: Path) -> Embedder:
    return Embedder.load(tiny_bert_dir, max_seq_length=32)
