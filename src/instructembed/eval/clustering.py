"""Clustering: mini-batch k-means with k = number of labels; V-measure (main), averaged over sets.

Mirrors MTEB's legacy protocol (`AbsTaskClusteringLegacy` + `ClusteringEvaluator`): each cluster set
is embedded and clustered on its own with `MiniBatchKMeans(n_clusters=#labels, batch_size=500,
n_init="auto", random_state=42)`; a set with a single label scores 1.0; the task score is the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import v_measure_score

from .encoder import CachingEncoder
from .records import ClusteringData

__all__ = ["BATCH_SIZE", "SEED", "cluster_v_measure", "evaluate_clustering"]

BATCH_SIZE = 500
SEED = 42


def cluster_v_measure(embeddings: np.ndarray, labels: Sequence[int], seed: int = SEED) -> float:
    """V-measure of a k-means clustering (k = distinct labels) of one set's embeddings (N, D)."""
    k = len(set(labels))
    if k <= 1:
        return 1.0
    model = MiniBatchKMeans(
        n_clusters=k, batch_size=BATCH_SIZE, n_init="auto", compute_labels=True, random_state=seed
    )
    model.fit(np.asarray(embeddings))
    return float(v_measure_score(list(labels), model.labels_.tolist()))


def evaluate_clustering(
    encoder: CachingEncoder, data: ClusteringData, instruction: str | None
) -> dict[str, float]:
    encoder.embed([t for texts, _ in data.sets for t in texts], instruction)  # one batch, then cache hits
    scores = [cluster_v_measure(encoder.embed(texts, instruction), labels) for texts, labels in data.sets]
    return {"v_measure": float(np.mean(scores)), "v_measure_std": float(np.std(scores))}
