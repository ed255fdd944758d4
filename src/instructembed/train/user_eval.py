"""`train --eval FILE` / `--test FILE`: scores on the user's own held-out data, by its shape.

- pairs / triplets -> retrieval: every distinct query searches the corpus (`--eval-corpus` texts plus
  every positive and negative of the file; a document is relevant when it is one of the query's
  positives, matched by text); nDCG@10 (main), MRR@10, recall@100, as `eval.retrieval` scores MTEB;
- triplets with `rerank` (`train --eval-rerank`) -> reranking: every distinct query ranks only its
  own candidates (its positives and negatives over all its rows; a text that is both counts as a
  positive); MAP (main), MRR@10, nDCG@10, as `eval.reranking` scores MTEB's reranking tasks;
- scored pairs -> Spearman x100 of cosine against the scores (main);
- labelled texts -> a probe: 5-fold cross-validated logistic-regression accuracy x100 on the vectors.

`score` embeds through the `CachingEncoder` it is given: the caller keeps one per model state, so the
dev and test files of one state share a corpus embedding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instructembed.errors import InputFileError
from instructembed.eval.encoder import CachingEncoder, normalize_rows
from instructembed.train.user_data import (
    Dataset,
    DatasetSpec,
    ScoredExample,
    Shape,
    TrainExample,
    labelled_rows,
    read_dataset,
)

log = logging.getLogger(__name__)

MAIN_METRIC = {
    Shape.PAIRS: "ndcg_at_10",
    Shape.TRIPLETS: "ndcg_at_10",
    Shape.MEDI: "ndcg_at_10",
    Shape.SCORED: "spearman",
    Shape.LABELLED: "probe_accuracy",
}


def _group(items: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in items:
        out.setdefault(key, []).append(value)
    return out


@dataclass
class Evaluator:
    """Scores one held-out file; `score(CachingEncoder(encoder))` -> {metric: value, "main": value}."""

    dataset: Dataset
    corpus: tuple[str, ...] = ()
    probe_rows: tuple[tuple[str, ...], np.ndarray] | None = None  # labelled files: (texts, labels)
    rerank: bool = False  # triplets: each query ranks its own candidates (MAP) instead of a corpus

    @property
    def main(self) -> str:
        return "map_at_1000" if self.rerank else MAIN_METRIC[self.dataset.spec.shape]

    def score(self, cached: CachingEncoder) -> dict[str, float]:
        """Scores through `cached` (one per model state: files scored at one state share embeddings)."""
        shape = self.dataset.spec.shape
        if shape is Shape.SCORED:
            out = _spearman(cached, self.dataset.examples)  # type: ignore[arg-type]
        elif shape is Shape.LABELLED:
            out = _probe(cached, self.dataset.spec, self.probe_rows)
        elif self.rerank:
            out = _rerank(cached, self.dataset)
        else:
            out = _retrieval(cached, self.dataset, self.corpus)
        return {**out, "main": out[self.main]}


def _retrieval(encoder: CachingEncoder, data: Dataset, corpus: Sequence[str]) -> dict[str, float]:
    from instructembed.eval.retrieval import ranking_scores, search

    examples: Sequence[TrainExample] = data.examples  # type: ignore[assignment]
    q_instr = examples[0].query.instruction
    d_instr = examples[0].pos.instruction
    relevant = _group([(e.query.text, e.pos.text) for e in examples])
    docs = list(
        dict.fromkeys(
            [
                *corpus,
                *(e.pos.text for e in examples),
                *(n.text for e in examples for n in (getattr(e, "negatives", ()) or (e.neg,))),
            ]
        )
    )
    doc_ids = [str(i) for i in range(len(docs))]
    at = {text: str(i) for i, text in enumerate(docs)}
    qrels = {q: {at[p]: 1 for p in ps} for q, ps in relevant.items()}
    queries = list(qrels)
    q_emb = encoder.embed(queries, q_instr)
    d_emb = encoder.embed(docs, d_instr)
    scores = ranking_scores(qrels, search(q_emb, queries, d_emb, doc_ids, top_k=100), k_values=(10, 100))
    return {k: round(100 * scores[k], 2) for k in ("ndcg_at_10", "mrr_at_10", "recall_at_100")}


def _rerank(encoder: CachingEncoder, data: Dataset) -> dict[str, float]:
    from instructembed.eval.records import RerankingData, RerankingQuery
    from instructembed.eval.reranking import evaluate_reranking

    examples: Sequence[TrainExample] = data.examples  # type: ignore[assignment]
    candidates: dict[str, dict[str, int]] = {}  # query -> {candidate text: 1 positive / 0 negative}
    for e in examples:
        own = candidates.setdefault(e.query.text, {})
        own[e.pos.text] = 1
        for n in e.negatives or (e.neg,):
            own.setdefault(n.text, 0)
    queries = tuple(RerankingQuery(q, tuple(c), tuple(c.values())) for q, c in candidates.items())
    scores = evaluate_reranking(
        encoder, RerankingData(queries), examples[0].query.instruction, examples[0].pos.instruction
    )
    return {k: round(100 * scores[k], 2) for k in ("map_at_1000", "mrr_at_10", "ndcg_at_10")}


def _spearman(encoder: CachingEncoder, examples: Sequence[ScoredExample]) -> dict[str, float]:
    from scipy.stats import spearmanr

    a = normalize_rows(encoder.embed([e.text1.text for e in examples], examples[0].text1.instruction))
    b = normalize_rows(encoder.embed([e.text2.text for e in examples], examples[0].text2.instruction))
    cosine = (a * b).sum(1)
    rho = spearmanr(cosine, [e.score for e in examples]).statistic
    return {"spearman": round(100 * float(rho), 2)}


def _probe(
    encoder: CachingEncoder, spec: DatasetSpec, rows: tuple[tuple[str, ...], np.ndarray] | None
) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if rows is None:  # pragma: no cover - load_evaluator fills it for labelled files
        raise ValueError("a labelled evaluator needs its rows")
    texts, labels = rows
    x = normalize_rows(encoder.embed(list(texts), spec.query_instruction))
    folds = min(5, min(np.unique(labels, return_counts=True)[1]))
    if folds < 2:
        raise InputFileError(f"{spec.path}: the probe needs at least 2 texts of every label")
    cv = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=0)
    accuracy = cross_val_score(LogisticRegression(max_iter=200), x, labels, cv=cv).mean()
    return {"probe_accuracy": round(100 * float(accuracy), 2)}


def load_evaluator(
    spec: DatasetSpec, corpus_file: Path | None, corpus_field: str = "text", rerank: bool = False
) -> Evaluator:
    """Read and validate a held-out file (and its corpus) before training starts."""
    if spec.shape is Shape.LABELLED:
        rows, _ = labelled_rows(spec)
        probe = (tuple(t for t, _, _ in rows), np.array([label for _, label, _ in rows]))
        return Evaluator(Dataset(spec, ()), (), probe)
    if rerank:
        if spec.shape is not Shape.TRIPLETS or corpus_file is not None:
            raise ValueError("reranking scores a triplets file (its negatives are the candidates), no corpus")
        return Evaluator(read_dataset(spec, seed=0), rerank=True)
    data = read_dataset(spec, seed=0)
    corpus: tuple[str, ...] = ()
    if corpus_file is not None:
        if spec.shape not in (Shape.PAIRS, Shape.TRIPLETS, Shape.MEDI):
            raise ValueError(
                "--eval-corpus is for pairs or triplets (retrieval); scored and labelled files need none"
            )
        corpus = tuple(read_corpus(corpus_file, corpus_field))
    return Evaluator(data, corpus)


def read_corpus(path: Path, field: str = "text") -> list[str]:
    """Texts of a corpus file: JSONL / CSV / TSV / parquet field `field`, or one text per line (.txt)."""
    from instructembed.files import input_format, read_rows

    if not path.is_file():
        raise InputFileError(f"{path}: corpus file not found")
    texts = []
    for row in read_rows(path, input_format(path), field, id_field=None, skip_blank=True):
        if row.text.strip():
            texts.append(row.text)
    if not texts:
        raise InputFileError(f"{path}: the corpus holds no texts")
    return texts
