"""Eval test fixtures: a deterministic hashing bag-of-words encoder stands in for a model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import pytest


class HashingEncoder:
    """Each word adds a fixed pseudo-random vector; the instruction's words count too. Counts calls."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls: list[int] = []

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def embed(self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None) -> np.ndarray:
        self.calls.append(len(inputs))
        out = np.zeros((len(inputs), self.dim), dtype=np.float32)
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else f"{item[0]} {item[1]}"
            for word in re.findall(r"\w+", text.lower()):
                out[i] += self._word(word)
        return out


@pytest.fixture
def fake_encoder() -> HashingEncoder:
    """A fresh deterministic hashing bag-of-words encoder."""
    return HashingEncoder()
