"""Pair classification: similarity scores of each pair; best-threshold accuracy / F1 and AP.

Mirrors MTEB's `AbsTaskPairClassification`: metrics for cosine, dot, Manhattan and Euclidean
scores (distances ranked low-is-similar), and `max_<metric>` over them; the main score is `max_ap`.
Threshold search walks the rows sorted by score and never splits tied scores.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

from .encoder import CachingEncoder
from .records import PairData
from .sts import paired_cosine

__all__ = ["best_accuracy", "best_f1", "evaluate_pair_classification", "pair_scores"]


def _sorted_rows(scores: np.ndarray, labels: np.ndarray, high_is_similar: bool) -> list[tuple[float, int]]:
    rows = list(zip(scores.tolist(), labels.tolist(), strict=True))
    return sorted(rows, key=lambda row: row[0], reverse=high_is_similar)


def best_accuracy(
    scores: np.ndarray, labels: np.ndarray, high_is_similar: bool = True
) -> tuple[float, float]:
    """(best accuracy, threshold) over cut points between distinct consecutive sorted scores."""
    labels = np.asarray(labels)
    rows = _sorted_rows(np.asarray(scores, dtype=np.float64), labels, high_is_similar)
    best, threshold = 0.0, -1.0
    positives, negatives_left = 0, int((labels == 0).sum())
    for i in range(len(rows) - 1):
        if rows[i][1] == 1:
            positives += 1
        else:
            negatives_left -= 1
        if rows[i][0] == rows[i + 1][0]:
            continue
        acc = (positives + negatives_left) / len(labels)
        if acc > best:
            best, threshold = acc, (rows[i][0] + rows[i + 1][0]) / 2
    return best, threshold


def best_f1(
    scores: np.ndarray, labels: np.ndarray, high_is_similar: bool = True
) -> tuple[float, float, float, float]:
    """(best F1, its precision, its recall, threshold), predicting positive for the top rows."""
    labels = np.asarray(labels)
    rows = _sorted_rows(np.asarray(scores, dtype=np.float64), labels, high_is_similar)
    best = (0.0, 0.0, 0.0, 0.0)
    correct, total_positive = 0, int(labels.sum())
    for i in range(len(rows) - 1):
        if rows[i][1] == 1:
            correct += 1
        if rows[i][0] == rows[i + 1][0] or correct == 0:
            continue
        precision, recall = correct / (i + 1), correct / total_positive
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best[0]:
            best = (f1, precision, recall, (rows[i][0] + rows[i + 1][0]) / 2)
    return best


def pair_scores(emb1: np.ndarray, emb2: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """MTEB's pair-classification metrics for paired embeddings (N, D) and 0/1 labels (N,)."""
    a, b = np.asarray(emb1, dtype=np.float64), np.asarray(emb2, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(np.unique(labels)) != 2:
        raise ValueError("pair classification needs both positive (1) and negative (0) pairs")
    variants = (
        ("cosine", paired_cosine(a, b), True),
        ("dot", np.einsum("nd,nd->n", a, b), True),
        ("manhattan", np.abs(a - b).sum(axis=1), False),
        ("euclidean", np.linalg.norm(a - b, axis=1), False),
    )
    out: dict[str, float] = {}
    for name, scores, high in variants:
        acc, _ = best_accuracy(scores, labels, high)
        f1, precision, recall, _ = best_f1(scores, labels, high)
        ap = average_precision_score(labels, scores if high else -scores)
        for metric, value in (
            ("accuracy", acc),
            ("f1", f1),
            ("precision", precision),
            ("recall", recall),
            ("ap", ap),
        ):
            out[f"{name}_{metric}"] = float(value)
    for metric in ("accuracy", "f1", "precision", "recall", "ap"):
        out[f"max_{metric}"] = max(out[f"{name}_{metric}"] for name, _, _ in variants)
    return out


def evaluate_pair_classification(
    encoder: CachingEncoder, data: PairData, instruction: str | None
) -> dict[str, float]:
    emb1 = encoder.embed(data.sentences1, instruction)
    emb2 = encoder.embed(data.sentences2, instruction)
    return pair_scores(emb1, emb2, np.asarray(data.labels))
