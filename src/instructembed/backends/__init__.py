"""Backends run a padded `TokenBatch` through the model and return pooled vectors.

Every backend takes the same batch (ids, attention mask, per-row pooling mask) and returns
float32 (B, D), so `Embedder.embed` behaves identically whichever one runs.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from instructembed.batching import TokenBatch


class Backend(Protocol):
    name: str

    @property
    def precision(self) -> str:
        """What the numbers are computed in, e.g. "fp32", "bf16", "int8 (dynamic)" (for `info()`)."""
        ...

    def run(self, batch: TokenBatch) -> np.ndarray:
        """(B, T) batch -> (B, D) float32 embeddings, rows in batch order."""
        ...


def batch_feed(batch: TokenBatch, input_names: list[str]) -> dict[str, np.ndarray]:
    """The graph inputs a runtime asks for, by name, from a batch (token type ids as zeros when the
    graph takes them and the tokenizer made none)."""
    feed: dict[str, np.ndarray] = {}
    for name in input_names:
        value = getattr(batch, name)
        feed[name] = np.zeros_like(batch.input_ids) if value is None else value
    return feed


def physical_cores() -> int:
    """Physical cores (threads beyond these only add contention on SMT siblings)."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is usually present
        cores = None
    return max(1, cores or os.cpu_count() or 1)
