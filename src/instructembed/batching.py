"""Length-sorted, token-budget batches, each padded only to its own longest row.

The original INSTRUCTOR package padded to the longest row in a batch of fixed size (and was often run
with 512-token padding); here a batch holds as many rows as fit in `token_budget` padded tokens, so
short texts travel in big batches and long ones in small ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

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


def split_by_padding(lengths: Sequence[int], call_overhead_tokens: int) -> list[list[int]]:
    """Split rows into length-homogeneous groups that minimise padded tokens plus a cost per group.

    A group of rows costs `len(group) * longest_row + call_overhead_tokens`: the padded tokens the
    encoder runs, plus what one more model call costs, counted in padded tokens. One group (no split)
    is the answer when splitting saves less padding than the extra calls cost; 0 gives one group per
    distinct length. Groups come longest first, each holding row indices in the order `plan_batches`
    uses (longest first, ties by index).

    Optimal among all ways to split the rows: some optimal split is contiguous in length-sorted order
    and cuts only where the length changes (rows of equal length move to the group with the smaller
    longest row for free), so a dynamic programme over the m distinct lengths finds it in O(m^2).
    """
    if call_overhead_tokens < 0:
        raise ValueError(f"call_overhead_tokens must be >= 0, got {call_overhead_tokens}")
    if not lengths:
        return []
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    values, counts = np.unique(np.asarray(lengths, dtype=np.int64), return_counts=True)
    values, counts = values[::-1], counts[::-1]  # (m,) distinct lengths, longest first
    rows_before = np.concatenate([[0], np.cumsum(counts)])  # (m+1,) rows longer than values[j]
    m = len(values)
    best = np.zeros(m + 1, dtype=np.float64)  # best[j]: cost of the j longest distinct lengths' rows
    cut = np.zeros(m + 1, dtype=np.int64)  # cut[j]: where the last group of best[j] starts
    for j in range(1, m + 1):
        # the last group holds distinct lengths i..j-1, padded to values[i], for every i < j
        costs = best[:j] + (rows_before[j] - rows_before[:j]) * values[:j] + call_overhead_tokens
        i = int(np.argmin(costs))  # the first minimum: the fewest, longest groups among equals
        best[j], cut[j] = costs[i], i
    bounds: list[int] = []
    j = m
    while j:
        bounds.append(int(rows_before[j]))
        j = int(cut[j])
    bounds.append(0)
    bounds.reverse()  # row offsets into `order` where groups start, then the end
    return [order[a:b] for a, b in pairwise(bounds)]


def padded_tokens(lengths: Sequence[int], groups: Sequence[Sequence[int]]) -> int:
    """Tokens the encoder runs for `groups` of rows, each padded to its longest row."""
    return sum(len(g) * max(lengths[i] for i in g) for g in groups if g)
