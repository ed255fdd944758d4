"""What evaluation sees of a model: one `embed` method, plus a per-task cache in front of it.

`Embedder` satisfies `Encoder`; so does any object with the same `embed` (a fake in tests, a
sentence-transformers wrapper in benchmarks). Evaluation passes instructions as (instruction, text)
pairs, and bare strings when a role has no instruction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["CachingEncoder", "Encoder", "MemoEncoder", "TruncatedEncoder", "cosine_matrix", "normalize_rows"]


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns texts (or (instruction, text) pairs) into float32 (N, D) rows, in input order."""

    def embed(
        self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None
    ) -> np.ndarray: ...


class CachingEncoder:
    """Embed each distinct (instruction, text) once; later requests are served from memory.

    One instance lives for one task, so a corpus document or a repeated sentence is embedded once
    per task, however often it appears. `calls` and `embedded` count what reached the model.
    """

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self._cache: dict[tuple[str | None, str], np.ndarray] = {}
        self.calls = 0
        self.embedded = 0

    def embed(self, texts: Sequence[str], instruction: str | None) -> np.ndarray:
        """(N, D) float32 rows for `texts`, all under the same `instruction` (None = bare text)."""
        keys = [(instruction, text) for text in texts]
        missing = list(dict.fromkeys(key for key in keys if key not in self._cache))
        if missing:
            inputs: list[str | tuple[str, str]] = [
                text if inst is None else (inst, text) for inst, text in missing
            ]
            vectors = np.asarray(self._encoder.embed(inputs), dtype=np.float32)
            if vectors.ndim != 2 or vectors.shape[0] != len(missing):
                raise ValueError(
                    f"the encoder returned an array of shape {vectors.shape} for {len(missing)} inputs; "
                    "embed() must return a 2-D (N, D) array with one row per input, in input order"
                )
            self.calls += 1
            self.embedded += len(missing)
            for key, row in zip(missing, vectors, strict=True):
                self._cache[key] = row
        if not keys:
            dim = next(iter(self._cache.values())).shape[0] if self._cache else 0
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([self._cache[key] for key in keys])  # (N, D)


class MemoEncoder:
    """Remember every row `encoder` returned, across tasks and runs (`eval --dimensions 384 256 ...`
    embeds each text once and scores every dimension from the same vectors)."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self._cache: dict[str | tuple[str, str], np.ndarray] = {}

    def embed(self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None) -> np.ndarray:
        keys = [_key(text, instruction) for text in inputs]
        missing = list(dict.fromkeys(key for key in keys if key not in self._cache))
        if missing:
            vectors = np.asarray(self._encoder.embed(missing), dtype=np.float32)  # (M, D)
            for key, row in zip(missing, vectors, strict=True):
                self._cache[key] = row
        if not keys:
            return np.asarray(self._encoder.embed([]), dtype=np.float32)
        return np.stack([self._cache[key] for key in keys])  # (N, D)


def _key(text: str | tuple[str, str], instruction: str | None) -> str | tuple[str, str]:
    if isinstance(text, str):
        return text if instruction is None else (instruction, text)
    return (text[0], text[1])


class TruncatedEncoder:
    """`encoder`'s vectors cut to their first `dimensions` coordinates and renormalized
    (`vectors_out.truncate`): what a client asking for `dimensions` gets."""

    def __init__(self, encoder: Encoder, dimensions: int) -> None:
        self._encoder = encoder
        self.dimensions = dimensions

    def embed(self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None) -> np.ndarray:
        from instructembed.vectors_out import truncate

        return truncate(self._encoder.embed(inputs, instruction=instruction), self.dimensions)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero); float64 for stable scoring."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0.0, 1.0, norms)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, Nb) cosine similarities between the rows of `a` and `b`."""
    return normalize_rows(a) @ normalize_rows(b).T
