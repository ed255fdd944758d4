"""Pooling math against obviously-right per-row loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructembed.batching import collate, plan_batches
from instructembed.pooling import PoolingMode, l2_normalize, masked_max, masked_mean, pool
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


def test_pooling_does_not_modify_inputs() -> None:
    states, mask = _random_case(2)
    before_states, before_mask = states.clone(), mask.clone()
    for mode in PoolingMode:
        pool(states, mask, mode)
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
