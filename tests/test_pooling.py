"""Pooling math against obviously-right per-row loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructembed.batching import collate, plan_batches
from instructembed.pooling import (
    PoolingMode,
    l2_normalize,
    last_token,
    masked_max,
    masked_mean,
    masked_mean_sqrt_len,
    pool,
    weighted_mean,
)
from instructembed.tokenize import Encoded


def _random_case(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(5, 9, 4, generator=g)
    mask = torch.zeros(5, 9)
    for b, (start, end) in enumerate([(0, 9), (2, 7), (3, 4), (1, 9), (0, 1)]):
        mask[b, start:end] = 1
    return states, mask


def test_masked_mean_matches_a_loop() -> None:
    states, mask = _random_case()
    got = masked_mean(states, mask)
    for b in range(states.shape[0]):
        rows = [states[b, t] for t in range(states.shape[1]) if mask[b, t] == 1]
        expected = sum(rows) / len(rows)
        torch.testing.assert_close(got[b], expected)


def test_masked_max_matches_a_loop() -> None:
    states, mask = _random_case(1)
    got = masked_max(states, mask)
    for b in range(states.shape[0]):
        rows = torch.stack([states[b, t] for t in range(states.shape[1]) if mask[b, t] == 1])
        torch.testing.assert_close(got[b], rows.max(dim=0).values)


def _padded_case(seed: int, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """States with (real length, prompt tokens excluded) rows padded on `side`: attention and pool masks."""
    g = torch.Generator().manual_seed(seed)
    rows = [(9, 0), (5, 2), (1, 0), (7, 3), (3, 3)]  # the last row: everything is prompt
    states = torch.randn(len(rows), 9, 4, generator=g)
    attention, pooled = torch.zeros(len(rows), 9), torch.zeros(len(rows), 9)
    for b, (length, prompt) in enumerate(rows):
        start = 9 - length if side == "left" else 0
        attention[b, start : start + length] = 1
        pooled[b, start + prompt : start + length] = 1
    return states, attention, pooled


@pytest.mark.parametrize("side", ["left", "right"])
def test_last_token_matches_a_loop(side: str) -> None:
    states, _, mask = _padded_case(4, side)
    got = last_token(states, mask)
    for b in range(states.shape[0]):
        kept = [t for t in range(states.shape[1]) if mask[b, t] == 1]
        expected = states[b, kept[-1]] if kept else torch.zeros(4)
        torch.testing.assert_close(got[b], expected)


@pytest.mark.parametrize("side", ["left", "right"])
def test_mean_sqrt_len_matches_a_loop(side: str) -> None:
    states, _, mask = _padded_case(5, side)
    got = masked_mean_sqrt_len(states, mask)
    for b in range(states.shape[0]):
        kept = [states[b, t] for t in range(states.shape[1]) if mask[b, t] == 1]
        expected = sum(kept) / len(kept) ** 0.5 if kept else torch.zeros(4)
        torch.testing.assert_close(got[b], expected)


@pytest.mark.parametrize("side", ["left", "right"])
def test_weighted_mean_matches_a_loop_and_ignores_padding_side(side: str) -> None:
    states, attention, mask = _padded_case(6, side)
    got = weighted_mean(states, mask, attention)
    for b in range(states.shape[0]):
        real = [t for t in range(states.shape[1]) if attention[b, t] == 1]
        weights = {t: float(i + 1) for i, t in enumerate(real)}  # 1 at the first real token
        kept = [t for t in real if mask[b, t] == 1]
        total = sum(weights[t] for t in kept)
        expected = sum(weights[t] * states[b, t] for t in kept) / total if kept else torch.zeros(4)
        torch.testing.assert_close(got[b], expected)
    torch.testing.assert_close(pool(states, mask, PoolingMode.WEIGHTEDMEAN, attention), got)


def test_every_mode_agrees_on_left_and_right_padding() -> None:
    left, left_att, left_mask = _padded_case(7, "left")
    right, right_att, right_mask = _padded_case(7, "right")
    for b, (length, _) in enumerate([(9, 0), (5, 2), (1, 0), (7, 3), (3, 3)]):
        right[b, :length] = left[b, 9 - length :]  # same real tokens, other side
    for mode in PoolingMode:
        if mode is PoolingMode.CLS:  # position 0: right padding only (refused with a left-padding tokenizer)
            continue
        torch.testing.assert_close(
            pool(left, left_mask, mode, left_att), pool(right, right_mask, mode, right_att), msg=mode.value
        )


def test_pooling_does_not_modify_inputs() -> None:
    states, mask = _random_case(2)
    before_states, before_mask = states.clone(), mask.clone()
    for mode in PoolingMode:
        pool(states, mask, mode, mask)
    assert torch.equal(states, before_states) and torch.equal(mask, before_mask)


def test_cls_is_first_position_and_normalize_gives_unit_rows() -> None:
    states, mask = _random_case(3)
    assert torch.equal(pool(states, mask, PoolingMode.CLS), states[:, 0])
    unit = l2_normalize(states[:, 0])
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(5))
    assert torch.equal(l2_normalize(torch.zeros(2, 3)), torch.zeros(2, 3))


def test_empty_pool_mask_gives_zero_vector_not_nan() -> None:
    states = torch.randn(1, 3, 2)
    assert torch.equal(masked_mean(states, torch.zeros(1, 3)), torch.zeros(1, 2))


def test_collate_builds_per_row_pool_mask() -> None:
    rows = [Encoded([1, 2, 3, 4], [0] * 4, 2, False), Encoded([5, 6], [0] * 2, 0, False)]
    batch = collate(rows, [7, 3], pad_id=0, with_type_ids=True)
    assert batch.input_ids.tolist() == [[1, 2, 3, 4], [5, 6, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch.pool_mask.tolist() == [[0, 0, 1, 1], [1, 1, 0, 0]]
    assert batch.indices.tolist() == [7, 3]
    assert batch.token_type_ids is not None and batch.n_tokens == 6 and batch.padded_tokens == 8


@pytest.mark.parametrize("budget,max_rows", [(1, 1), (10, 3), (64, 100), (1000, 4)])
def test_plan_batches_respects_budget_and_covers_every_row(budget: int, max_rows: int) -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=57).tolist()
    batches = plan_batches(lengths, budget, max_rows)
    assert sorted(i for b in batches for i in b) == list(range(57))
    for b in batches:
        width = max(lengths[i] for i in b)
        assert len(b) <= max_rows
        assert len(b) == 1 or len(b) * width <= budget
        assert lengths[b[0]] == width  # longest first


def test_plan_batches_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_batches([1, 2], 0, 4)


def test_collate_left_padding_puts_pads_first_and_keeps_the_pool_offset() -> None:
    rows = [Encoded([1, 2, 3, 4], [0] * 4, 2, False), Encoded([5, 6], [0] * 2, 1, False)]
    batch = collate(rows, [0, 1], pad_id=9, with_type_ids=False, padding_side="left")
    assert batch.input_ids.tolist() == [[1, 2, 3, 4], [9, 9, 5, 6]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1], [0, 0, 1, 1]]
    assert batch.pool_mask.tolist() == [[0, 0, 1, 1], [0, 0, 0, 1]]
    with pytest.raises(ValueError, match="padding_side"):
        collate(rows, [0, 1], pad_id=9, with_type_ids=False, padding_side="middle")


def test_nan_in_unpooled_positions_never_reaches_the_vector() -> None:
    # a runtime may leave NaN in a padding position whose attention row is all masked
    states, attention, mask = _padded_case(8, "right")
    poisoned = states.clone()
    poisoned[attention == 0] = float("nan")
    for mode in PoolingMode:
        torch.testing.assert_close(
            pool(poisoned, mask, mode, attention), pool(states, mask, mode, attention), msg=mode.value
        )
