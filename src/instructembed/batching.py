"""Length-sorted, token-budget batches, each padded only to its own longest row.

The original INSTRUCTOR package padded to the longest row in a batch of fixed size (and was often run
with 512-token padding); here a batch holds as many rows as fit in `token_budget` padded tokens, so
short texts travel in big batches and long ones in small ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from instructembed.tokenize import Encoded


@dataclass(frozen=True)
class TokenBatch:
    """A padded batch, ready for any backend. Arrays are numpy so torch and ONNX read them alike."""

    indices: np.ndarray  # (B,) positions of these rows in the caller's input
    input_ids: np.ndarray  # (B, T) int64
    attention_mask: np.ndarray  # (B, T) int64: 1 for real tokens -- what the encoder attends over
    pool_mask: np.ndarray  # (B, T) float32: 1 for tokens that pooling averages (text, not instruction)
    token_type_ids: np.ndarray | None  # (B, T) int64, only for models that take them

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())

    @property
    def padded_tokens(self) -> int:
        return int(self.input_ids.size)


def plan_batches(lengths: Sequence[int], token_budget: int, max_batch_size: int) -> list[list[int]]:
    """Group row indices longest-first so that rows * longest_row <= token_budget in every batch.

    A single row longer than the budget still gets a batch of its own.
    """
    if token_budget < 1 or max_batch_size < 1:
        raise ValueError("token_budget and max_batch_size must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0  # padded width of `current`: its first (longest) row's length
    for i in order:
        if current and ((len(current) + 1) * width > token_budget or len(current) >= max_batch_size):
            batches.append(current)
            current = []
        if not current:
            width = lengths[i]
        current.append(i)
    if current:
        batches.append(current)
    return batches


def collate(
    rows: Sequence[Encoded],
    indices: Sequence[int],
    pad_id: int,
    with_type_ids: bool,
    padding_side: str = "right",
) -> TokenBatch:
    """Pad `rows` to their longest (pads after the tokens, or before them for `padding_side="left"`,
    as decoder tokenizers ask) and build the attention and pooling masks."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    width = max(len(r.ids) for r in rows)
    n = len(rows)
    input_ids = np.full((n, width), pad_id, dtype=np.int64)
    attention = np.zeros((n, width), dtype=np.int64)
    pool = np.zeros((n, width), dtype=np.float32)
    type_ids = np.zeros((n, width), dtype=np.int64) if with_type_ids else None
    for b, row in enumerate(rows):
        length = len(row.ids)
        start = width - length if padding_side == "left" else 0  # first real token
        input_ids[b, start : start + length] = row.ids
        attention[b, start : start + length] = 1
        pool[b, start + row.n_masked : start + length] = 1.0
        if type_ids is not None:
            type_ids[b, start : start + length] = row.type_ids
    return TokenBatch(np.asarray(indices, dtype=np.int64), input_ids, attention, pool, type_ids)
