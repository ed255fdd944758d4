"""Retrieval: exact cosine search of queries over the corpus; nDCG@10 (main), MAP, recall, P, MRR.

Mirrors MTEB's `AbsTaskRetrieval`: a document is `(title + " " + text).strip()` (just the stripped
text when the title is empty); queries without a relevant document are dropped; the top 1000
documents per query are scored with pytrec_eval at k = 1, 3, 5, 10, 20, 100, 1000; MRR@k ranks
ties by document id descending, as pytrec_eval does. Metric names follow MTEB (`ndcg_at_10`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .encoder import CachingEncoder, normalize_rows
from .records import RetrievalData

__all__ = ["K_VALUES", "document_text", "evaluate_retrieval", "ranking_scores", "search"]

K_VALUES: tuple[int, ...] = (1, 3, 5, 10, 20, 100, 1000)

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def document_text(title: str, text: str) -> str:
    """How MTEB joins a corpus entry's title and text."""
    return (title + " " + text).strip() if title else text.strip()


def search(
    query_emb: np.ndarray,
    query_ids: Sequence[str],
    doc_emb: np.ndarray,
    doc_ids: Sequence[str],
    top_k: int = max(K_VALUES),
    chunk: int = 256,
) -> dict[str, dict[str, float]]:
    """Top `top_k` documents per query by exact cosine similarity: {query id: {doc id: score}}."""
    q, d = normalize_rows(query_emb), normalize_rows(doc_emb)  # (Q, D), (N, D)
    k = min(top_k, len(doc_ids))
    run: dict[str, dict[str, float]] = {}
    for start in range(0, len(query_ids), chunk):
        sims = q[start : start + chunk] @ d.T  # (B, N)
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for row, qid in enumerate(query_ids[start : start + chunk]):
            run[qid] = {doc_ids[j]: float(sims[row, j]) for j in top[row]}
    return run


def _mrr(qrels: Qrels, run: Run, k_values: Sequence[int]) -> dict[str, float]:
    totals = dict.fromkeys(k_values, 0.0)
    for qid, docs in run.items():
        ranked = sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)
        relevant = {doc for doc, rel in qrels.get(qid, {}).items() if rel > 0}
        for k in k_values:
            totals[k] += next(
                (1.0 / (r + 1) for r, (doc, _) in enumerate(ranked[:k]) if doc in relevant), 0.0
            )
    return {f"mrr_at_{k}": totals[k] / max(len(run), 1) for k in k_values}


def ranking_scores(qrels: Qrels, run: Run, k_values: Sequence[int] = K_VALUES) -> dict[str, float]:
    """pytrec_eval nDCG / MAP / recall / precision at each k, plus MRR@k, averaged over queries.

    Like MTEB, averages run over the queries pytrec_eval scores (those in both qrels and run).
    """
    import pytrec_eval

    ks = ",".join(str(k) for k in k_values)
    measures = {f"ndcg_cut.{ks}", f"map_cut.{ks}", f"recall.{ks}", f"P.{ks}"}
    evaluator = pytrec_eval.RelevanceEvaluator({q: dict(v) for q, v in qrels.items()}, measures)
    per_query = evaluator.evaluate({q: dict(v) for q, v in run.items()})
    n = max(len(per_query), 1)
    out: dict[str, float] = {}
    for ours, theirs in (
        ("ndcg_at", "ndcg_cut"),
        ("map_at", "map_cut"),
        ("recall_at", "recall"),
        ("precision_at", "P"),
    ):
        for k in k_values:
            out[f"{ours}_{k}"] = round(sum(s[f"{theirs}_{k}"] for s in per_query.values()) / n, 5)
    out.update(_mrr(qrels, run, k_values))
    return out


def evaluate_retrieval(
    encoder: CachingEncoder,
    data: RetrievalData,
    query_instruction: str | None,
    doc_instruction: str | None,
) -> dict[str, float]:
    qrels = {q: rels for q, rels in data.qrels.items() if rels}
    query_ids = [q for q in data.queries if q in qrels]
    doc_ids = list(data.corpus)
    query_emb = encoder.embed([data.queries[q] for q in query_ids], query_instruction)
    doc_emb = encoder.embed([document_text(*data.corpus[d]) for d in doc_ids], doc_instruction)
    return ranking_scores(qrels, search(query_emb, query_ids, doc_emb, doc_ids))
