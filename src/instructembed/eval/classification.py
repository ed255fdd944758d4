"""Classification: a logistic-regression probe on embeddings, MTEB's protocol exactly.

`AbsTaskClassification` (mteb 2.x): 10 experiments; each draws 8 training texts per label by
walking a shuffled index list (the list is re-shuffled *in place* with a fresh
`np.random.RandomState(42)` each experiment, so shuffles accumulate); `LogisticRegression(max_iter=100,
random_state=42)`; accuracy (main), macro / weighted F1, and AP for binary tasks, averaged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score

from .encoder import CachingEncoder
from .records import ClassificationData

__all__ = [
    "N_EXPERIMENTS",
    "SAMPLES_PER_LABEL",
    "SEED",
    "classification_scores",
    "evaluate_classification",
    "undersample_indices",
]

logger = logging.getLogger(__name__)

N_EXPERIMENTS = 10
SAMPLES_PER_LABEL = 8
SEED = 42


def undersample_indices(
    labels: Sequence[int],
    n_experiments: int = N_EXPERIMENTS,
    samples_per_label: int = SAMPLES_PER_LABEL,
    seed: int = SEED,
) -> list[list[int]]:
    """Training indices per experiment: the first `samples_per_label` of each label in a shuffled order."""
    idxs = list(range(len(labels)))
    selections = []
    for _ in range(n_experiments):
        np.random.RandomState(seed).shuffle(idxs)  # in place: experiment i sees i + 1 shuffles
        counts: dict[int, int] = defaultdict(int)
        chosen = []
        for i in idxs:
            if counts[labels[i]] < samples_per_label:
                chosen.append(i)
                counts[labels[i]] += 1
        selections.append(chosen)
    return selections


def _one_experiment(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, seed: int
) -> dict[str, float]:
    model = LogisticRegression(max_iter=100, random_state=seed)
    model.fit(x_train, y_train)
    y_pred = model.predict(x_test)
    scores = {
        "accuracy": float(accuracy_score(y_test, y_pred)),
        "f1": float(f1_score(y_test, y_pred, average="macro")),
        "f1_weighted": float(f1_score(y_test, y_pred, average="weighted")),
    }
    if len(np.unique(y_test)) == 2:  # MTEB scores AP on the hard predictions
        scores["ap"] = float(average_precision_score(y_test, y_pred, average="macro"))
    return scores


def classification_scores(
    train_emb: np.ndarray,
    train_labels: Sequence[int],
    test_emb: np.ndarray,
    test_labels: Sequence[int],
    n_experiments: int = N_EXPERIMENTS,
    samples_per_label: int = SAMPLES_PER_LABEL,
    seed: int = SEED,
) -> dict[str, float]:
    """Mean metrics over the experiments (train_emb holds ALL training rows, in data order)."""
    y_train, y_test = np.asarray(train_labels), np.asarray(test_labels)
    runs = []
    for chosen in undersample_indices(list(train_labels), n_experiments, samples_per_label, seed):
        runs.append(_one_experiment(train_emb[chosen], y_train[chosen], test_emb, y_test, seed))
    return {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}


def evaluate_classification(
    encoder: CachingEncoder, data: ClassificationData, instruction: str | None
) -> dict[str, float]:
    selections = undersample_indices(list(data.train_labels))
    needed = sorted({i for chosen in selections for i in chosen})  # only embed what the probes use
    position = {orig: pos for pos, orig in enumerate(needed)}
    needed_emb = encoder.embed([data.train_texts[i] for i in needed], instruction)
    test_emb = encoder.embed(data.test_texts, instruction)
    y_train, y_test = np.asarray(data.train_labels), np.asarray(data.test_labels)
    runs = []
    for chosen in selections:
        rows = [position[i] for i in chosen]
        runs.append(_one_experiment(needed_emb[rows], y_train[chosen], test_emb, y_test, SEED))
    logger.debug("classification: %d experiments on %d training texts", len(runs), len(needed))
    return {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
