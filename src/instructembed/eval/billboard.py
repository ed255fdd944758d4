"""Billboard: how well one embedder judges generated text (captions, summaries, translations).

The INSTRUCTOR paper's text-generation evaluation (its `evaluation/text_evaluation/main.py`): embed
every human reference and every generated text under the task's instruction, score each generated
text by its best cosine over the references of its own source item, and correlate those scores with
the human scores over all rows: Pearson r (main, as in the paper), Spearman and Kendall tau-b.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import kendalltau, pearsonr, spearmanr

from .encoder import CachingEncoder, normalize_rows
from .records import BillboardData

__all__ = ["best_reference_cosine", "billboard_scores", "evaluate_billboard"]


def best_reference_cosine(
    hyp_emb: np.ndarray, ref_emb: Sequence[np.ndarray], groups: Sequence[int]
) -> np.ndarray:
    """(H,) max cosine of hypothesis i (row of `hyp_emb` (H, D)) over `ref_emb[groups[i]]` (R_g, D)."""
    hyps = normalize_rows(hyp_emb)  # (H, D)
    groups_arr = np.asarray(groups, dtype=np.int64)
    if groups_arr.shape != (hyps.shape[0],):
        raise ValueError(f"{hyps.shape[0]} hypotheses but {groups_arr.shape[0]} group ids")
    best = np.empty(hyps.shape[0], dtype=np.float64)
    for g, refs in enumerate(ref_emb):
        rows = np.flatnonzero(groups_arr == g)
        if rows.size:
            best[rows] = (hyps[rows] @ normalize_rows(refs).T).max(axis=1)  # (h_g, R_g) -> (h_g,)
    if groups_arr.size and (groups_arr.min() < 0 or groups_arr.max() >= len(ref_emb)):
        raise ValueError(f"group ids must lie in [0, {len(ref_emb)}), the number of reference sets")
    return best


def billboard_scores(
    hyp_emb: np.ndarray, ref_emb: Sequence[np.ndarray], groups: Sequence[int], human: Sequence[float]
) -> dict[str, float]:
    """Pearson / Spearman / Kendall of each hypothesis' best reference cosine with the human scores."""
    pred = best_reference_cosine(hyp_emb, ref_emb, groups)
    gold = np.asarray(human, dtype=np.float64)
    if len(set(gold.tolist())) < 2 or len(set(pred.tolist())) < 2:
        raise ValueError("human or predicted scores are constant; a correlation is undefined")
    return {
        "pearson": float(pearsonr(gold, pred).statistic),
        "spearman": float(spearmanr(gold, pred).statistic),
        "kendall": float(kendalltau(gold, pred).statistic),
        "mean_best_cosine": float(pred.mean()),
        "hypotheses": float(len(pred)),
    }


def evaluate_billboard(
    encoder: CachingEncoder, data: BillboardData, instruction: str | None
) -> dict[str, float]:
    flat_refs = [r for refs in data.references for r in refs]
    encoder.embed([*flat_refs, *data.hypotheses], instruction)  # one call: one length-sorted pass
    ref_emb = [encoder.embed(refs, instruction) for refs in data.references]
    return billboard_scores(encoder.embed(data.hypotheses, instruction), ref_emb, data.groups, data.human)
