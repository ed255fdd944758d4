"""The in-memory shape of each task type's data, as loaders return it and scorers read it.

All are frozen and hold tuples; `limited(n)` returns an evenly spaced subset (keeps the label mix
of sorted files, unlike taking the first n rows) for `--limit` smoke runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BillboardData",
    "ClassificationData",
    "ClusteringData",
    "PairData",
    "PromptExample",
    "PromptRetrievalData",
    "RerankingData",
    "RerankingQuery",
    "RetrievalData",
    "STSData",
    "SummarizationData",
    "SummaryGroup",
    "TaskData",
    "spaced_indices",
]


def spaced_indices(total: int, n: int | None) -> list[int]:
    """`n` evenly spaced indices into range(total) (all of them when n is None or >= total)."""
    if n is None or n >= total:
        return list(range(total))
    if n <= 0:
        raise ValueError(f"limit must be a positive number of items, got {n}")
    return sorted({int(i) for i in np.linspace(0, total - 1, n)})


def _pick(values: tuple, idx: list[int]) -> tuple:  # type: ignore[type-arg]
    return tuple(values[i] for i in idx)


@dataclass(frozen=True)
class STSData:
    sentences1: tuple[str, ...]
    sentences2: tuple[str, ...]
    scores: tuple[float, ...]

    def limited(self, n: int | None) -> STSData:
        idx = spaced_indices(len(self.scores), n)
        return STSData(_pick(self.sentences1, idx), _pick(self.sentences2, idx), _pick(self.scores, idx))


@dataclass(frozen=True)
class PairData:
    sentences1: tuple[str, ...]
    sentences2: tuple[str, ...]
    labels: tuple[int, ...]  # 1 = positive (paraphrase / entailment), 0 = not

    def limited(self, n: int | None) -> PairData:
        idx = spaced_indices(len(self.labels), n)
        return PairData(_pick(self.sentences1, idx), _pick(self.sentences2, idx), _pick(self.labels, idx))


@dataclass(frozen=True)
class ClassificationData:
    train_texts: tuple[str, ...]
    train_labels: tuple[int, ...]
    test_texts: tuple[str, ...]
    test_labels: tuple[int, ...]

    def limited(self, n: int | None) -> ClassificationData:
        """Limits the test side only: MTEB's probe uses 8 training texts per label anyway."""
        idx = spaced_indices(len(self.test_labels), n)
        return ClassificationData(
            self.train_texts, self.train_labels, _pick(self.test_texts, idx), _pick(self.test_labels, idx)
        )


@dataclass(frozen=True)
class ClusteringData:
    """Several independent cluster sets, scored separately and averaged (MTEB's legacy protocol)."""

    sets: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]

    def limited(self, n: int | None) -> ClusteringData:
        out = []
        for texts, labels in self.sets:
            idx = spaced_indices(len(labels), n)
            out.append((_pick(texts, idx), _pick(labels, idx)))
        return ClusteringData(tuple(out))


@dataclass(frozen=True)
class RerankingQuery:
    query: str
    candidates: tuple[str, ...]
    labels: tuple[int, ...]  # 1 = relevant candidate


@dataclass(frozen=True)
class RerankingData:
    queries: tuple[RerankingQuery, ...]

    def limited(self, n: int | None) -> RerankingData:
        return RerankingData(_pick(self.queries, spaced_indices(len(self.queries), n)))


@dataclass(frozen=True)
class RetrievalData:
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}

    def limited(self, n: int | None) -> RetrievalData:
        """`n` queries; the corpus keeps their relevant documents plus 20 * n others (evenly spaced)."""
        if n is None or n >= len(self.queries):
            return self
        qids = _pick(tuple(self.queries), spaced_indices(len(self.queries), n))
        keep = {doc for q in qids for doc in self.qrels.get(q, {})}
        ids = tuple(self.corpus)
        keep.update(_pick(ids, spaced_indices(len(ids), 20 * n)))
        return RetrievalData(
            {d: self.corpus[d] for d in ids if d in keep},
            {q: self.queries[q] for q in qids},
            {q: dict(self.qrels[q]) for q in qids if q in self.qrels},
        )


@dataclass(frozen=True)
class SummaryGroup:
    """One source text: its reference summaries, machine summaries and their expert scores."""

    references: tuple[str, ...]
    summaries: tuple[str, ...]
    scores: tuple[float, ...]


@dataclass(frozen=True)
class SummarizationData:
    groups: tuple[SummaryGroup, ...]

    def limited(self, n: int | None) -> SummarizationData:
        return SummarizationData(_pick(self.groups, spaced_indices(len(self.groups), n)))


@dataclass(frozen=True)
class BillboardData:
    """Generated texts (captions, summaries, translations) with human scores, grouped by source item.

    `references[g]` are the human references of item g; hypothesis i belongs to item `groups[i]` and
    was scored `human[i]` by people (higher is better).
    """

    references: tuple[tuple[str, ...], ...]
    hypotheses: tuple[str, ...]
    groups: tuple[int, ...]
    human: tuple[float, ...]

    def limited(self, n: int | None) -> BillboardData:
        """`n` evenly spaced source items, with all their hypotheses."""
        keep = spaced_indices(len(self.references), n)
        new_id = {g: i for i, g in enumerate(keep)}
        rows = [i for i, g in enumerate(self.groups) if g in new_id]
        return BillboardData(
            _pick(self.references, keep),
            _pick(self.hypotheses, rows),
            tuple(new_id[self.groups[i]] for i in rows),
            _pick(self.human, rows),
        )


@dataclass(frozen=True)
class PromptExample:
    """One example of a prompt-retrieval task, pre-formatted the way the paper's scripts format it.

    `embed_text` is what the embedder sees; `demonstration` is the text put into a prompt when the
    example is chosen (its length counts against the budget); `query` is the prompt's last part when the
    example is the one being answered; `answer` the gold continuation; `key` what the retrieval side is
    judged by (GeoQuery's SQL template, MultiRC's label).
    """

    id: str
    embed_text: str
    demonstration: str
    query: str
    answer: str
    key: str


@dataclass(frozen=True)
class PromptRetrievalData:
    """A pool of demonstrations, the test examples, and how the paper builds and scores the prompt.

    `mode` is `generate` (the LM continues the prompt; scored by ROUGE-L against `answer`) or `choose`
    (the LM picks the most likely of `options`). `budget` is the paper's token budget for the whole
    prompt (`header` + demonstrations + query).
    """

    pool: tuple[PromptExample, ...]
    tests: tuple[PromptExample, ...]
    mode: str
    budget: int
    header: str = ""
    options: tuple[str, ...] = ()
    answer_prefix: str = ""

    def limited(self, n: int | None) -> PromptRetrievalData:
        """`n` evenly spaced test examples; the pool stays whole (it is what retrieval searches)."""
        return PromptRetrievalData(
            self.pool,
            _pick(self.tests, spaced_indices(len(self.tests), n)),
            self.mode,
            self.budget,
            self.header,
            self.options,
            self.answer_prefix,
        )


TaskData = (
    STSData
    | PairData
    | ClassificationData
    | ClusteringData
    | RerankingData
    | RetrievalData
    | SummarizationData
    | BillboardData
    | PromptRetrievalData
)
