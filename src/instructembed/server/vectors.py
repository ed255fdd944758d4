"""Pure functions on the embeddings a route returns: Matryoshka truncation, normalization, base64."""

from __future__ import annotations

import base64

import numpy as np


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise unit length; all-zero rows stay zero. (N, D) float32 -> new (N, D) float32."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (N, 1)
    return (vectors / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


def truncate_dimensions(vectors: np.ndarray, dimensions: int, *, renormalize: bool) -> np.ndarray:
    """Keep the first `dimensions` coordinates (OpenAI's `dimensions`), renormalizing if asked.

    This is how Matryoshka-trained models shorten embeddings; for other models it still works but
    loses more quality per dropped coordinate.
    """
    out = np.ascontiguousarray(vectors[:, :dimensions], dtype=np.float32)  # (N, d)
    return l2_normalize(out) if renormalize else out


def to_base64(row: np.ndarray) -> str:
    """One embedding as OpenAI's base64: little-endian float32 bytes."""
    return base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode("ascii")


def from_base64(text: str) -> np.ndarray:
    """Inverse of `to_base64` (for clients and tests)."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)
