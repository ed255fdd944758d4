"""Reranking: per query, rank its own candidates by cosine; MAP (main) and MRR@10.

MTEB 2.x runs reranking tasks as retrieval restricted to each query's candidates (`top_ranked`) and
scores them with pytrec_eval: main score `map_at_1000`, plus `mrr_at_10`. Queries without a
relevant candidate are dropped (MTEB's `_filter_queries_without_positives`). Candidate ids are
assigned per distinct text, as in MTEB's reranking datasets, so tie-breaking matches.
"""

from __future__ import annotations

import numpy as np

from .encoder import CachingEncoder, normalize_rows
from .records import RerankingData
from .retrieval import K_VALUES, ranking_scores

__all__ = ["evaluate_reranking", "reranking_run"]


def reranking_run(
    query_emb: np.ndarray,
    candidate_emb: list[np.ndarray],
    candidate_ids: list[list[str]],
    query_ids: list[str],
) -> dict[str, dict[str, float]]:
    """{query id: {candidate id: cosine}} for each query's own candidates."""
    q = normalize_rows(query_emb)
    run: dict[str, dict[str, float]] = {}
    for i, qid in enumerate(query_ids):
        sims = normalize_rows(candidate_emb[i]) @ q[i]  # (C,)
        run[qid] = {doc: float(s) for doc, s in zip(candidate_ids[i], sims, strict=True)}
    return run


def evaluate_reranking(
    encoder: CachingEncoder,
    data: RerankingData,
    query_instruction: str | None,
    doc_instruction: str | None,
) -> dict[str, float]:
    kept = [q for q in data.queries if any(label > 0 for label in q.labels)]
    doc_id: dict[str, str] = {}
    for q in kept:
        for text in q.candidates:
            doc_id.setdefault(text, f"d{len(doc_id)}")
    query_ids = [f"q{i}" for i in range(len(kept))]
    query_emb = encoder.embed([q.query for q in kept], query_instruction)
    encoder.embed(list(doc_id), doc_instruction)  # one batch; the per-query lookups below hit the cache
    cand_emb = [encoder.embed(q.candidates, doc_instruction) for q in kept]
    cand_ids = [[doc_id[t] for t in q.candidates] for q in kept]
    qrels = {
        qid: {doc_id[t]: 1 for t, label in zip(q.candidates, q.labels, strict=True) if label > 0}
        for qid, q in zip(query_ids, kept, strict=True)
    }
    scores = ranking_scores(qrels, reranking_run(query_emb, cand_emb, cand_ids, query_ids), K_VALUES)
    return {
        key: scores[key] for key in ("map_at_1000", "mrr_at_10", "ndcg_at_10", "map_at_10", "recall_at_10")
    }
