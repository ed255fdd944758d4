"""Output controls on the vectors `Embedder.embed` returns: pure functions, never flags on `embed`.

    vectors = model.embed(texts)                          # float32 (N, D), the one return type
    short = truncate(vectors, 128)                        # (N, 128) float32, unit length again
    ranges = calibration_ranges(model)                    # per-dimension min/max of the packaged set
    codes = quantize(vectors, Precision.INT8, ranges)     # (N, D) int8
    bits = quantize(vectors, Precision.UBINARY)           # (N, D/8) uint8, sign bits packed

- `truncate` keeps the first `dimensions` coordinates and renormalizes (OpenAI's `dimensions`,
  sentence-transformers' `truncate_dim`). Matryoshka-trained models lose little; others lose more per
  dropped coordinate (docs/server.md has the measured cost for all-MiniLM-L6-v2).
- `quantize` follows sentence-transformers' `quantize_embeddings`: int8/uint8 map each dimension's
  [min, max] over calibration embeddings onto 256 steps; binary/ubinary keep the sign bit
  (`x > 0`), 8 dimensions per byte, big-endian bit order (`np.packbits`); binary is ubinary - 128 as
  int8. One difference: values outside the calibration range are clipped to the end steps, where
  sentence-transformers' bare cast wraps them around (an outlier would land at the far end).

Truncate first, then quantize with ranges computed on truncated calibration vectors
(`calibration_ranges(model, dimensions=d)`): renormalizing changes every coordinate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import numpy as np

from instructembed.package_data import read_text

__all__ = [
    "Precision",
    "QuantizationRanges",
    "calibration_inputs",
    "calibration_ranges",
    "dequantize",
    "packed_width",
    "quantize",
    "ranges_from_embeddings",
    "truncate",
    "unpack_bits",
]


class Precision(str, Enum):
    """The element types an embedding can be returned in (infinity's `embedding_dtype` names)."""

    FLOAT32 = "float32"
    INT8 = "int8"
    UINT8 = "uint8"
    BINARY = "binary"  # packed sign bits as int8 (ubinary - 128), as sentence-transformers
    UBINARY = "ubinary"  # packed sign bits as uint8

    @property
    def needs_ranges(self) -> bool:
        return self in (Precision.INT8, Precision.UINT8)

    @property
    def packed(self) -> bool:
        return self in (Precision.BINARY, Precision.UBINARY)

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(
            {"float32": "<f4", "int8": "i1", "uint8": "u1", "binary": "i1", "ubinary": "u1"}[self.value]
        )


def truncate(vectors: np.ndarray, dimensions: int, *, renormalize: bool = True) -> np.ndarray:
    """The first `dimensions` coordinates of each row, made unit length again when `renormalize`.

    (N, D) -> new (N, dimensions) float32; all-zero rows stay zero. `dimensions` must be in 1..D.
    """
    array = np.asarray(vectors)
    if array.ndim != 2:
        raise ValueError(f"truncate takes a 2-D (N, D) array, got shape {array.shape}")
    if isinstance(dimensions, bool) or not isinstance(dimensions, (int, np.integer)):
        raise TypeError(f"dimensions must be an integer, got {type(dimensions).__name__}")
    if not 1 <= dimensions <= array.shape[1]:
        raise ValueError(
            f"dimensions is {dimensions}; these embeddings have {array.shape[1]}, ask for 1..{array.shape[1]}"
        )
    out = np.array(array[:, :dimensions], dtype=np.float32)  # (N, d), a copy
    if renormalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)  # (N, 1)
        out /= np.maximum(norms, np.float32(1e-12))
    return out


@dataclass(frozen=True)
class QuantizationRanges:
    """Per-dimension start and step of the int8/uint8 grid: code = floor((x - start) / step)."""

    starts: np.ndarray  # (D,) float32: each dimension's minimum over the calibration embeddings
    steps: np.ndarray  # (D,) float32: (max - min) / 255, or 1 for a constant dimension

    @property
    def dimension(self) -> int:
        return int(self.starts.shape[0])

    def to_json(self) -> dict[str, list[float]]:
        return {"starts": self.starts.tolist(), "steps": self.steps.tolist()}


def ranges_from_embeddings(calibration: np.ndarray) -> QuantizationRanges:
    """Ranges from calibration embeddings (M, D): each dimension's min and (max - min) / 255."""
    array = np.asarray(calibration, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(
            f"calibration embeddings must be a 2-D array of at least 2 rows, got shape {array.shape}; "
            "embed a few dozen representative texts"
        )
    if not np.isfinite(array).all():
        raise ValueError("calibration embeddings contain NaN or infinity")
    low, high = array.min(axis=0), array.max(axis=0)  # (D,), (D,)
    steps = (high - low) / np.float32(255)
    steps = np.where(steps > 0, steps, np.float32(1)).astype(np.float32)
    return QuantizationRanges(low.astype(np.float32), steps)


def packed_width(dimension: int) -> int:
    """Bytes per row of packed sign bits (the last byte is zero-padded when D is not a multiple of 8)."""
    return (dimension + 7) // 8


def quantize(
    vectors: np.ndarray, precision: Precision | str, ranges: QuantizationRanges | None = None
) -> np.ndarray:
    """`vectors` (N, D) float in `precision`: float32 (N, D) | int8/uint8 (N, D) | (u)binary (N, ceil(D/8)).

    int8/uint8 need `ranges` of the same dimension (`calibration_ranges`, `ranges_from_embeddings`).
    """
    precision = Precision(precision)
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"quantize takes a 2-D (N, D) array, got shape {array.shape}")
    if precision is Precision.FLOAT32:
        return np.array(array, dtype=np.float32)
    if precision.packed:
        bits = np.packbits(array > 0, axis=1)  # (N, ceil(D/8)) uint8
        return (bits.astype(np.int16) - 128).astype(np.int8) if precision is Precision.BINARY else bits
    if ranges is None:
        raise ValueError(f"{precision.value} needs calibration ranges: pass calibration_ranges(model)")
    if ranges.dimension != array.shape[1]:
        raise ValueError(
            f"the calibration ranges are for {ranges.dimension} dimensions, the vectors have "
            f"{array.shape[1]}; compute the ranges on vectors truncated the same way"
        )
    codes = np.clip(np.floor((array - ranges.starts) / ranges.steps), 0, 255)  # (N, D) in 0..255
    if precision is Precision.UINT8:
        return codes.astype(np.uint8)
    return (codes - 128).astype(np.int8)


def dequantize(codes: np.ndarray, precision: Precision | str, ranges: QuantizationRanges) -> np.ndarray:
    """int8/uint8 codes (N, D) back to float32 at the middle of their step: start + (code + 0.5) * step."""
    precision = Precision(precision)
    if not precision.needs_ranges:
        raise ValueError(f"dequantize takes int8 or uint8 codes, not {precision.value}")
    values = np.asarray(codes).astype(np.float32) + (128 if precision is Precision.INT8 else 0)
    return (ranges.starts + (values + np.float32(0.5)) * ranges.steps).astype(np.float32)


def unpack_bits(packed: np.ndarray, dimension: int) -> np.ndarray:
    """Inverse of the (u)binary packing: (N, ceil(D/8)) int8/uint8 -> (N, D) float32 of ±1."""
    array = np.asarray(packed)
    if array.dtype == np.int8:
        array = (array.astype(np.int16) + 128).astype(np.uint8)
    bits = np.unpackbits(array.astype(np.uint8), axis=1)[:, :dimension]  # (N, D) of 0/1
    return bits.astype(np.float32) * 2 - 1


class _Embeds(Protocol):
    def embed(
        self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None
    ) -> np.ndarray: ...


def calibration_inputs() -> list[tuple[str, str]]:
    """The packaged calibration set (`data/calibration.jsonl`) as (instruction, text) pairs."""
    rows = [json.loads(line) for line in read_text("calibration.jsonl").splitlines() if line.strip()]
    return [(row["instruction"], row["text"]) for row in rows]


def calibration_ranges(
    model: _Embeds, *, dimensions: int | None = None, inputs: Sequence[str | tuple[str, str]] | None = None
) -> QuantizationRanges:
    """Ranges from `model`'s embeddings of `inputs` (default: the packaged calibration set), truncated
    to `dimensions` first when given (so the ranges fit `quantize(truncate(v, dimensions), ...)`)."""
    vectors = np.asarray(model.embed(list(inputs if inputs is not None else calibration_inputs())))
    if dimensions is not None and dimensions != vectors.shape[1]:
        vectors = truncate(vectors, dimensions)
    return ranges_from_embeddings(vectors)
