"""The new scorers against obviously-right loops and small hand cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr, spearmanr

from instructembed.eval.billboard import best_reference_cosine, billboard_scores
from instructembed.eval.prompt_retrieval import (
    centre,
    greedy_within_budget,
    rouge_l,
    select_demonstrations,
)
from instructembed.eval.summarization import summarization_scores


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("seed", [0, 1])
def test_billboard_matches_a_naive_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    refs = [rng.standard_normal((int(rng.integers(1, 5)), 8)) for _ in range(6)]
    groups = [int(g) for g in rng.integers(0, 6, size=30)]
    hyps = rng.standard_normal((30, 8))
    human = rng.standard_normal(30)
    naive = []
    for i, g in enumerate(groups):
        best = -math.inf
        for ref in refs[g]:
            best = max(best, _cos(hyps[i], ref))
        naive.append(best)
    np.testing.assert_allclose(best_reference_cosine(hyps, refs, groups), naive, atol=1e-12)
    scores = billboard_scores(hyps, refs, groups, human)
    assert scores["pearson"] == pytest.approx(pearsonr(human, naive).statistic, abs=1e-12)
    assert scores["spearman"] == pytest.approx(spearmanr(human, naive).statistic, abs=1e-12)
    assert scores["kendall"] == pytest.approx(kendalltau(human, naive).statistic, abs=1e-12)


def test_billboard_hand_case() -> None:
    # item 0 has references e1 and e2, item 1 has e1; cosines: [1, 0.6, 0.8 (best of 0.8 / 0.6), 0]
    refs = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])]
    hyps = np.array([[2.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 3.0]])
    groups = [0, 0, 0, 1]
    np.testing.assert_allclose(best_reference_cosine(hyps, refs, groups), [1.0, 0.8, 0.8, 0.0], atol=1e-12)
    human = [4.0, 3.0, 3.0, 1.0]  # ordered as the cosines: every rank correlation is 1
    scores = billboard_scores(hyps, refs, groups, human)
    assert scores["spearman"] == pytest.approx(1.0) and scores["kendall"] == pytest.approx(1.0)
    assert scores["pearson"] == pytest.approx(pearsonr(human, [1.0, 0.8, 0.8, 0.0]).statistic)
    with pytest.raises(ValueError, match="constant"):
        billboard_scores(hyps, refs, groups, [1.0] * 4)
    with pytest.raises(ValueError, match="group ids"):
        best_reference_cosine(hyps, refs, [0, 0, 0, 2])


def test_mteb_v1_summeval_score_is_the_mean_over_statistic_and_pvalue_pairs() -> None:
    rng = np.random.default_rng(3)
    refs = [rng.standard_normal((3, 6)) for _ in range(5)]
    sums = [rng.standard_normal((7, 6)) for _ in range(5)]
    gold = [rng.integers(1, 6, size=7).astype(float).tolist() for _ in range(5)]
    ours = summarization_scores(refs, sums, gold)
    # MTEB's DeprecatedSummarizationEvaluator: np.mean over a list of scipy result tuples
    buggy_rho, buggy_r, rho = [], [], []
    for r, s, g in zip(refs, sums, gold, strict=True):
        pred = [max(_cos(x, y) for y in r) for x in s]
        buggy_rho.append(spearmanr(g, pred))
        buggy_r.append(pearsonr(g, pred))
        rho.append(spearmanr(g, pred).statistic)
    assert ours["mteb_v1_cosine_spearman"] == pytest.approx(float(np.mean(buggy_rho)), abs=1e-12)
    assert ours["mteb_v1_cosine_pearson"] == pytest.approx(float(np.mean(buggy_r)), abs=1e-12)
    assert ours["cosine_spearman"] == pytest.approx(float(np.mean(rho)), abs=1e-12)


def test_centre_and_greedy_budget_hand_case() -> None:
    pool = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(centre(pool), [[-1.0, -1.0], [1.0, 1.0]])
    assert pool[0, 0] == 1.0  # not modified
    assert greedy_within_budget([2, 0, 1], [5, 3, 4], room=9) == [2, 0]  # 4 + 5 = 9 fits exactly
    assert greedy_within_budget([2, 0, 1], [5, 3, 4], room=8) == [2]  # 4, then 4+5 > 8: stop (no skipping)
    assert greedy_within_budget([1, 2, 0], [5, 3, 4], room=7) == [1, 2]  # 3 + 4 = 7 fits exactly
    assert greedy_within_budget([0], [5], room=4) == []


def test_selection_hand_case() -> None:
    pool = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # cosines to (1, 0.1): ~1, ~0.1, ~0.77
    test = np.array([[1.0, 0.1]])
    (sel,) = select_demonstrations(pool, test, lengths=[10, 10, 10], rooms=[25])
    assert sel.indices == (0, 2)  # the two most similar fit; the third would need 30 tokens
    assert sel.cosines[0] > sel.cosines[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selection_matches_a_naive_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool, tests = rng.standard_normal((40, 5)), rng.standard_normal((6, 5))
    lengths = rng.integers(1, 30, size=40).tolist()
    rooms = rng.integers(0, 200, size=6).tolist()
    got = select_demonstrations(pool, tests, lengths, rooms)
    for t in range(6):
        ranked = sorted(range(40), key=lambda i: (-_cos(tests[t], pool[i]), i))
        chosen, used = [], 0
        for i in ranked:
            if used + lengths[i] > rooms[t]:
                break
            used += lengths[i]
            chosen.append(i)
        assert list(got[t].indices) == chosen


def _naive_lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    if a[0] == b[0]:
        return 1 + _naive_lcs(a[1:], b[1:])
    return max(_naive_lcs(a[1:], b), _naive_lcs(a, b[1:]))


def test_rouge_l_hand_cases_and_naive_lcs() -> None:
    assert rouge_l("True", "True") == 1.0 and rouge_l("False", "True") == 0.0
    # LCS("the cat sat", "the cat on the mat sat") = 3: P = 1, R = 3/6, F = 2/3
    assert rouge_l("The cat sat.", "the cat on the mat sat") == pytest.approx(2 / 3)
    assert rouge_l("", "anything") == 0.0
    rng = np.random.default_rng(0)
    words = ["select", "a", "b", "from", "where", "x"]
    for _ in range(30):
        a = [str(w) for w in rng.choice(words, size=int(rng.integers(1, 7)))]
        b = [str(w) for w in rng.choice(words, size=int(rng.integers(1, 7)))]
        lcs = _naive_lcs(a, b)
        expected = 0.0 if lcs == 0 else 2 * (lcs / len(a)) * (lcs / len(b)) / (lcs / len(a) + lcs / len(b))
        assert rouge_l(" ".join(a), " ".join(b)) == pytest.approx(expected)
