"""`split_by_padding` against a brute force over every way to split the rows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from instructembed.batching import padded_tokens, split_by_padding


def _partitions(items: list[int]) -> Iterator[list[list[int]]]:
    """Every set partition of `items` (Bell(n) of them; n <= 8 here)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in _partitions(rest):
        for k in range(len(smaller)):
            yield [*smaller[:k], [first, *smaller[k]], *smaller[k + 1 :]]
        yield [[first], *smaller]


def _cost(lengths: list[int], groups: list[list[int]], overhead: int) -> int:
    return padded_tokens(lengths, groups) + overhead * len(groups)


@pytest.mark.parametrize("seed", range(40))
def test_split_is_as_cheap_as_the_best_of_every_partition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    lengths = rng.integers(1, 12 if seed % 2 else 60, size=n).tolist()  # even seeds: many ties
    overhead = int(rng.choice([0, 1, 5, 20, 100, 10_000]))
    groups = split_by_padding(lengths, overhead)
    best = min(_cost(lengths, p, overhead) for p in _partitions(list(range(n))))
    assert _cost(lengths, groups, overhead) == best
    assert sorted(i for g in groups for i in g) == list(range(n))  # every row exactly once
    for g in groups:  # each group longest first, ties by index, as plan_batches orders rows
        assert g == sorted(g, key=lambda i: (-lengths[i], i))
    widths = [max(lengths[i] for i in g) for g in groups]
    assert widths == sorted(widths, reverse=True)  # groups longest first


def test_split_extremes() -> None:
    lengths = [5, 9, 5, 30, 9]
    assert split_by_padding([], 10) == []
    assert split_by_padding(lengths, 10_000) == [[3, 1, 4, 0, 2]]  # a call costs more than any padding
    assert split_by_padding(lengths, 0) == [[3], [1, 4], [0, 2]]  # free calls: one per distinct length
    assert split_by_padding([7, 7, 7], 0) == [[0, 1, 2]]  # equal rows are never split
    with pytest.raises(ValueError, match=">= 0"):
        split_by_padding(lengths, -1)


def test_split_does_not_modify_its_input_and_scales() -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(7, 512, size=5000).tolist()
    copy = list(lengths)
    groups = split_by_padding(lengths, 128)
    assert lengths == copy
    assert sorted(i for g in groups for i in g) == list(range(5000))
    assert padded_tokens(lengths, groups) < padded_tokens(lengths, [list(range(5000))])
