"""Pure functions on the embeddings a route returns: normalization, base64 (truncation and
quantization are `instructembed.vectors_out`)."""

from __future__ import annotations

import base64

import numpy as np


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise unit length; all-zero rows stay zero. (N, D) float32 -> new (N, D) float32."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (N, 1)
    return (vectors / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


def to_base64(row: np.ndarray) -> str:
    """One embedding as base64 of its bytes: OpenAI's little-endian float32 for float rows, one byte
    per value (or per 8 packed sign bits) for int8 / uint8 / binary / ubinary rows."""
    array = np.asarray(row)
    dtype = array.dtype if array.dtype in (np.int8, np.uint8) else np.dtype("<f4")
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def from_base64(text: str, dtype: str = "<f4") -> np.ndarray:
    """Inverse of `to_base64` (for clients and tests); `dtype` "i1" / "u1" for quantized rows."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype).astype(np.float32 if dtype == "<f4" else dtype)
