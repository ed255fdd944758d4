"""Summarization: correlate each machine summary's best cosine to a reference with expert scores.

MTEB's SummEval protocol (`SummarizationEvaluator`): for each source text, score every machine summary
by its maximum cosine to the human reference summaries; Spearman / Pearson with the expert relevance
scores per text; texts whose human or predicted scores are all equal are skipped; the task score is
the mean over texts (`cosine_spearman`, main). This is the corrected evaluator of
`SummEvalSummarization.v2`. The original `SummEval` task averaged (statistic, p-value) pairs by mistake
(mteb issue 1156: `np.mean` over a list of scipy results); MTEB's leaderboard and the INSTRUCTOR paper
publish that number, so it is reported too, as `mteb_v1_cosine_spearman` / `mteb_v1_cosine_pearson`
(the `SummEval` task's main score), never mixed up with the corrected one.

The reference-free variant passes the source article as the only "reference"; its results say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr

from .encoder import CachingEncoder, cosine_matrix
from .records import SummarizationData

__all__ = ["evaluate_summarization", "summarization_scores"]


def summarization_scores(
    reference_emb: Sequence[np.ndarray], summary_emb: Sequence[np.ndarray], gold: Sequence[Sequence[float]]
) -> dict[str, float]:
    """Per group: references (R, D), summaries (S, D), gold (S,). Mean Spearman / Pearson over groups."""
    spearman, pearson, dot_spearman = [], [], []
    spearman_p, pearson_p = [], []
    for refs, sums, scores in zip(reference_emb, summary_emb, gold, strict=True):
        cos = cosine_matrix(sums, refs).max(axis=1)  # (S,) best match per machine summary
        dot = (np.asarray(sums, dtype=np.float64) @ np.asarray(refs, dtype=np.float64).T).max(axis=1)
        if len(set(scores)) == 1 or len(set(dot.tolist())) == 1 or len(set(cos.tolist())) == 1:
            continue
        rho, r = spearmanr(scores, cos), pearsonr(scores, cos)
        spearman.append(float(rho.statistic))
        pearson.append(float(r.statistic))
        spearman_p.append(float(rho.pvalue))
        pearson_p.append(float(r.pvalue))
        dot_spearman.append(float(spearmanr(scores, dot).statistic))
    if not spearman:
        raise ValueError("every summary group has constant scores; nothing to correlate")
    return {
        "cosine_spearman": float(np.mean(spearman)),
        "cosine_pearson": float(np.mean(pearson)),
        "dot_spearman": float(np.mean(dot_spearman)),
        # MTEB's original evaluator: the mean over every (statistic, p-value) pair, i.e. both means halved.
        "mteb_v1_cosine_spearman": float((np.mean(spearman) + np.mean(spearman_p)) / 2),
        "mteb_v1_cosine_pearson": float((np.mean(pearson) + np.mean(pearson_p)) / 2),
        "groups_scored": float(len(spearman)),
    }


def evaluate_summarization(
    encoder: CachingEncoder, data: SummarizationData, instruction: str | None
) -> dict[str, float]:
    encoder.embed([t for g in data.groups for t in (*g.references, *g.summaries)], instruction)  # one batch
    refs = [encoder.embed(g.references, instruction) for g in data.groups]
    sums = [encoder.embed(g.summaries, instruction) for g in data.groups]
    return summarization_scores(refs, sums, [g.scores for g in data.groups])
