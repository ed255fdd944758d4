"""Every metric against small hand-checkable cases or an obviously right loop."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from instructembed.eval.classification import classification_scores, undersample_indices
from instructembed.eval.clustering import cluster_v_measure
from instructembed.eval.encoder import CachingEncoder
from instructembed.eval.pair_classification import best_accuracy, best_f1, pair_scores
from instructembed.eval.retrieval import document_text, ranking_scores, search
from instructembed.eval.sts import paired_cosine, sts_scores
from instructembed.eval.summarization import summarization_scores


def test_paired_cosine_matches_loop() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    loop = [float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(paired_cosine(a, b), loop)


def test_sts_spearman_is_rank_correlation_of_cosines() -> None:
    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cosines 1, 0.707, 0
    scores = sts_scores(a, b, np.array([5.0, 3.0, 0.0]))
    assert scores["cosine_spearman"] == pytest.approx(1.0)
    assert scores["spearman"] == scores["cosine_spearman"]
    reversed_scores = sts_scores(a, b, np.array([0.0, 3.0, 5.0]))
    assert reversed_scores["cosine_spearman"] == pytest.approx(-1.0)


def _brute_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    cuts = sorted(set(scores.tolist()))
    best = 0.0
    for lo, hi in itertools.pairwise(cuts):
        t = (lo + hi) / 2
        best = max(best, float(np.mean((scores > t) == (labels == 1))))
    return best


def _brute_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    cuts = sorted(set(scores.tolist()))
    best = 0.0
    for lo, hi in itertools.pairwise(cuts):
        pred = scores > (lo + hi) / 2
        tp = int(np.sum(pred & (labels == 1)))
        if tp:
            p, r = tp / pred.sum(), tp / labels.sum()
            best = max(best, 2 * p * r / (p + r))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_threshold_search_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(30), 1)  # many ties on purpose
    labels = (rng.random(30) < 0.4).astype(int)
    labels[:2] = [0, 1]
    assert best_accuracy(scores, labels)[0] == pytest.approx(_brute_accuracy(scores, labels))
    assert best_f1(scores, labels)[0] == pytest.approx(_brute_f1(scores, labels))


def test_pair_scores_hand_case() -> None:
    e1 = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    e2 = np.array([[1.0, 0.1], [1.0, 0.5], [0.0, 1.0], [1.0, 2.0]])  # cosines decreasing
    out = pair_scores(e1, e2, np.array([1, 1, 0, 0]))
    assert out["cosine_ap"] == pytest.approx(1.0)
    assert out["cosine_accuracy"] == pytest.approx(1.0)
    assert out["max_ap"] >= out["cosine_ap"] - 1e-12
    with pytest.raises(ValueError, match="both positive"):
        pair_scores(e1, e2, np.array([1, 1, 1, 1]))


def test_undersampling_takes_samples_per_label_and_accumulates_shuffles() -> None:
    labels = [0] * 10 + [1] * 10 + [2] * 3
    runs = undersample_indices(labels, n_experiments=3, samples_per_label=4, seed=42)
    for chosen in runs:
        counts = {lab: sum(labels[i] == lab for i in chosen) for lab in (0, 1, 2)}
        assert counts == {0: 4, 1: 4, 2: 3}
    # experiment i walks the index list shuffled i + 1 times with RandomState(42), as MTEB does
    idxs = list(range(len(labels)))
    for run in runs:
        np.random.RandomState(42).shuffle(idxs)
        assert run == [i for i in idxs if i in set(run)]
    assert runs[0] != runs[1]


def test_classification_separable_data_is_perfect() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    train_labels = [i % 3 for i in range(60)]
    test_labels = [i % 3 for i in range(30)]
    train = centres[train_labels] + rng.standard_normal((60, 3)) * 0.1
    test = centres[test_labels] + rng.standard_normal((30, 3)) * 0.1
    out = classification_scores(train, train_labels, test, test_labels, n_experiments=2, samples_per_label=5)
    assert out["accuracy"] == 1.0 and out["f1"] == 1.0
    assert "ap" not in out  # only binary tasks get AP


def test_clustering_separable_sets_score_one_and_single_label_is_one() -> None:
    rng = np.random.default_rng(0)
    labels = [i % 4 for i in range(80)]
    emb = (np.eye(4) * 20)[labels] + rng.standard_normal((80, 4))
    assert cluster_v_measure(emb.astype(np.float32), labels) == pytest.approx(1.0)
    assert cluster_v_measure(emb[:3], [7, 7, 7]) == 1.0


def test_ranking_scores_hand_case() -> None:
    qrels = {"q": {"b": 1}}
    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.1}}
    out = ranking_scores(qrels, run, k_values=(1, 3, 10))
    assert out["mrr_at_10"] == pytest.approx(0.5)
    assert out["map_at_10"] == pytest.approx(0.5)
    assert out["ndcg_at_10"] == pytest.approx(round(1 / math.log2(3), 5))
    assert out["recall_at_1"] == 0.0 and out["recall_at_3"] == 1.0
    assert out["precision_at_3"] == pytest.approx(round(1 / 3, 5))


def test_search_is_exact_top_k() -> None:
    rng = np.random.default_rng(1)
    q, d = rng.standard_normal((3, 8)), rng.standard_normal((20, 8))
    run = search(q, ["q0", "q1", "q2"], d, [f"d{i}" for i in range(20)], top_k=5)
    sims = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (d / np.linalg.norm(d, axis=1, keepdims=True)).T
    for i, qid in enumerate(["q0", "q1", "q2"]):
        assert set(run[qid]) == {f"d{j}" for j in np.argsort(-sims[i])[:5]}


def test_document_text_joins_title_like_mteb() -> None:
    assert document_text("Title", "body ") == "Title body"
    assert document_text("", " body ") == "body"


def test_summarization_takes_best_reference_and_skips_constant_groups() -> None:
    refs = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])]
    sums = [np.array([[1.0, 0.05], [1.0, 1.0], [1.0, 3.0]]), np.array([[1.0, 0.0], [1.0, 1.0]])]
    gold = [[3.0, 1.0, 2.0], [2.0, 2.0]]  # second group: constant gold -> skipped
    out = summarization_scores(refs, sums, gold)
    best = [max(1.0, 0.05) / np.hypot(1, 0.05), 1 / np.sqrt(2), 3 / np.hypot(1, 3)]
    assert out["cosine_spearman"] == pytest.approx(spearmanr([3.0, 1.0, 2.0], best).statistic)


def test_caching_encoder_embeds_each_text_once(fake_encoder) -> None:
    cached = CachingEncoder(fake_encoder)
    first = cached.embed(["a b", "c", "a b"], "inst: ")
    again = cached.embed(["c", "a b"], "inst: ")
    bare = cached.embed(["c"], None)
    assert cached.embedded == 3 and fake_encoder.calls == [2, 1]
    np.testing.assert_array_equal(first[0], again[1])
    assert not np.allclose(bare[0], again[0])  # the instruction changes the embedding
    assert cached.embed([], None).shape[0] == 0
