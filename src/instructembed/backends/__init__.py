"""Backends run a padded `TokenBatch` through the model and return pooled vectors.

Every backend takes the same batch (ids, attention mask, per-row pooling mask) and returns
float32 (B, D), so `Embedder.embed` behaves identically whichever one runs.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from instructembed.batching import TokenBatch


class Backend(Protocol):
    name: str

    def run(self, batch: TokenBatch) -> np.ndarray:
        """(B, T) batch -> (B, D) float32 embeddings, rows in batch order."""
        ...
