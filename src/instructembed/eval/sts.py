"""STS: cosine of the two sentence embeddings vs gold scores; Spearman (main) and Pearson.

MTEB (`AbsTaskSTS`) also reports Manhattan / Euclidean correlations; so do we, with its signs
(negative distances). Gold scores are used as given: min-max normalisation does not change either
correlation.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr

from .encoder import CachingEncoder, normalize_rows
from .records import STSData

__all__ = ["evaluate_sts", "paired_cosine", "sts_scores"]


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of row i of `a` with row i of `b`."""
    return np.einsum("nd,nd->n", normalize_rows(a), normalize_rows(b))


def sts_scores(emb1: np.ndarray, emb2: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """MTEB's STS metrics for paired embeddings (N, D) and gold scores (N,)."""
    a, b = np.asarray(emb1, dtype=np.float64), np.asarray(emb2, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    cos = paired_cosine(a, b)
    manhattan = -np.abs(a - b).sum(axis=1)
    euclidean = -np.linalg.norm(a - b, axis=1)
    out: dict[str, float] = {}
    for name, pred in (("cosine", cos), ("manhattan", manhattan), ("euclidean", euclidean)):
        out[f"{name}_pearson"] = float(pearsonr(gold, pred)[0])
        out[f"{name}_spearman"] = float(spearmanr(gold, pred)[0])
    out["pearson"], out["spearman"] = out["cosine_pearson"], out["cosine_spearman"]
    return out


def evaluate_sts(encoder: CachingEncoder, data: STSData, instruction: str | None) -> dict[str, float]:
    emb1 = encoder.embed(data.sentences1, instruction)
    emb2 = encoder.embed(data.sentences2, instruction)
    return sts_scores(emb1, emb2, np.asarray(data.scores))
