"""From chunk matches to ranked documents, and metadata filters.

A document's score (`pool`) is a blend of its head's (chunk 0: the document truncated to the window)
and its best chunk's, `HEAD_WEIGHT * head + (1 - HEAD_WEIGHT) * best` (`head`, the default; chosen on
SciFact dev, docs/index.md); the best score of its chunks (`max`); or the mean over all its chunks
(`mean`). Chunks are fetched best-first, `kf` at a time, and `kf` grows until the answer is settled:

- max: the first `k` distinct documents among chunks in score order are the top `k`;
- head and mean: a document never fetched has every chunk at or below the last fetched score `t`,
  so its blend (or mean) is too; once `k` fetched documents have an exact score >= `t` (computed
  over all their chunks), no other can beat them.

Rows that belong to no live document (replaced or deleted, until a rebuild compacts them) and rows
outside a filter are skipped as they come. With exact fetching this is exactly the brute-force
ranking (tested against one in numpy).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instructembed.chunking import HEAD_WEIGHT, ChunkPool
from instructembed.index import ann, store
from instructembed.index.errors import IndexStoreError

#: (queries (Q, D), kf) -> (scores (Q, kf), slots (Q, kf)) best first; slot -1 = nothing.
Fetch = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
#: slots -> {slot: document key} for the slots that are live (and pass the filter).
SlotDocs = Callable[[Sequence[int]], dict[int, int]]
#: (query (D,), document keys) -> {key: DocScores} over all their chunks.
MeanScores = Callable[[np.ndarray, Sequence[int]], dict[int, "DocScores"]]


@dataclass(frozen=True)
class Hit:
    """One matching document: its best chunk's span (and text, if the index stores texts)."""

    id: str
    score: float
    chunk: int
    start: int
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)
    text: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "chunk": self.chunk,
            "start": self.start,
            "end": self.end,
            "metadata": self.metadata,
            "text": self.text,
        }


@dataclass(frozen=True)
class DocScores:
    """One document's chunk scores for a query, summarised."""

    mean: float
    head: float  # its chunk 0's
    best_slot: int
    best: float

    def blend(self, weight: float = HEAD_WEIGHT) -> float:
        """`head` pooling: weight * head + (1 - weight) * best."""
        return weight * self.head + (1.0 - weight) * self.best


def doc_scores(chunk_scores: np.ndarray, slots: Sequence[int], chunks: Sequence[int]) -> DocScores:
    """Summarise one document's (n,) chunk scores (its slots and chunk numbers alongside). Pure."""
    best = int(np.argmax(chunk_scores))
    head = [i for i, c in enumerate(chunks) if c == 0]
    return DocScores(
        float(chunk_scores.mean()),
        float(chunk_scores[head[0]] if head else chunk_scores[best]),
        int(slots[best]),
        float(chunk_scores[best]),
    )


@dataclass(frozen=True)
class DocMatch:
    key: int  # document key
    score: float  # head blend, max or mean over its chunks
    slot: int  # its best chunk's slot
    chunk_score: float  # its best chunk's score


def rank_documents(
    queries: np.ndarray,
    k: int,
    fetch: Fetch,
    total: int,
    slot_docs: SlotDocs,
    pool: ChunkPool = ChunkPool.HEAD,
    mean_scores: MeanScores | None = None,
    first_fetch: int | None = None,
) -> list[list[DocMatch]]:
    """Top `k` documents per query. `total` = how many rows `fetch` can return at most."""
    if pool is not ChunkPool.MAX and mean_scores is None:
        raise ValueError(f"{pool.value} pooling needs mean_scores")
    results: list[list[DocMatch] | None] = [None] * len(queries)
    if total == 0 or k == 0:
        return [[] for _ in range(len(queries))]
    pending = list(range(len(queries)))
    kf = min(total, first_fetch or 2 * k + 16)
    while pending:
        scores, slots = fetch(queries[pending], kf)
        docs = slot_docs(sorted({int(s) for s in slots.ravel() if s >= 0}))
        exhausted = kf >= total
        still: list[int] = []
        for row, q in enumerate(pending):
            found = _settle(queries[q], k, scores[row], slots[row], docs, exhausted, pool, mean_scores)
            if found is None:
                still.append(q)
            else:
                results[q] = found
        pending = still
        kf = min(total, kf * 4)
    return [r if r is not None else [] for r in results]


def _settle(
    query: np.ndarray,
    k: int,
    scores: np.ndarray,
    slots: np.ndarray,
    docs: dict[int, int],
    exhausted: bool,
    pool: ChunkPool,
    mean_scores: MeanScores | None,
) -> list[DocMatch] | None:
    """The top `k` for one query from its fetched chunks, or None when more must be fetched."""
    best: dict[int, DocMatch] = {}
    for score, slot in zip(scores.tolist(), slots.tolist(), strict=True):
        key = docs.get(slot) if slot >= 0 else None
        if key is not None and key not in best:
            best[key] = DocMatch(key, score, slot, score)
    if pool is ChunkPool.MAX:
        if len(best) >= k or exhausted:
            return sorted(best.values(), key=lambda m: (-m.score, m.slot))[:k]
        return None
    if mean_scores is None:
        raise ValueError(f"{pool.value} pooling needs mean_scores")
    valid = slots >= 0
    threshold = -math.inf if exhausted or not valid.any() else float(scores[valid].min())
    summaries = mean_scores(query, list(best))
    matches = [
        DocMatch(key, d.blend() if pool is ChunkPool.HEAD else d.mean, d.best_slot, d.best)
        for key, d in summaries.items()
    ]
    settled = sum(1 for m in matches if m.score >= threshold)
    if settled >= k or exhausted:
        return sorted(matches, key=lambda m: (-m.score, m.slot))[:k]
    return None


def subset_fetch(
    subset: np.ndarray, allowed: np.ndarray
) -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    def fetch(q: np.ndarray, kf: int) -> tuple[np.ndarray, np.ndarray]:
        scores, found = ann.exact_search(subset, q, kf)
        return scores, np.where(found >= 0, allowed[np.maximum(found, 0)], -1)

    return fetch


def build_hits(conn: Any, ranked: list[list[DocMatch]]) -> list[list[Hit]]:
    """Hits with ids, spans, metadata and texts, read in the caller's snapshot."""
    described = store.describe_slots(conn, sorted({m.slot for matches in ranked for m in matches}))
    out = []
    for matches in ranked:
        hits = []
        for m in matches:
            ident, metadata, chunk, start, end, text = described[m.slot]
            hits.append(Hit(ident, m.score, chunk, start, end, json.loads(metadata), text))
        out.append(hits)
    return out


# ---- filters ----------------------------------------------------------------------------------


def filter_sql(filter: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """A metadata filter as SQL over `d.metadata`: every key must match (AND).

    A value matches by equality (strings, numbers, booleans, null: same JSON type and value); a list
    value means "any of these". Keys are top-level metadata keys. Raises IndexStoreError on
    anything else, naming the key.
    """
    if not filter:
        return "", []
    if not isinstance(filter, Mapping):
        raise IndexStoreError(
            f"a filter is a JSON object of metadata key -> value, got {type(filter).__name__}"
        )
    clauses: list[str] = []
    params: list[Any] = []
    for key, wanted in filter.items():
        if not isinstance(key, str) or not key or '"' in key or "\\" in key:
            raise IndexStoreError(
                f"filter key {key!r} must be a non-empty string without quotes or backslashes"
            )
        path = f'$."{key}"'
        options = wanted if isinstance(wanted, list) else [wanted]
        if not options:
            raise IndexStoreError(f"filter key {key!r} has an empty list: nothing could match")
        alternatives = []
        for value in options:
            clause, values = _equals(path, value, key)
            alternatives.append(clause)
            params.extend(values)
        clauses.append("(" + " OR ".join(alternatives) + ")")
    return " AND ".join(clauses), params


def _equals(path: str, value: Any, key: str) -> tuple[str, list[Any]]:
    if value is None:
        return "json_type(d.metadata, ?) = 'null'", [path]
    if isinstance(value, bool):
        return "json_type(d.metadata, ?) = ?", [path, "true" if value else "false"]
    if isinstance(value, int):
        return "(json_type(d.metadata, ?) = 'integer' AND json_extract(d.metadata, ?) = ?)", [
            path,
            path,
            value,
        ]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise IndexStoreError(f"filter key {key!r}: {value} is not a JSON number")
        return "(json_type(d.metadata, ?) IN ('integer', 'real') AND json_extract(d.metadata, ?) = ?)", [
            path,
            path,
            value,
        ]
    if isinstance(value, str):
        return "(json_type(d.metadata, ?) = 'text' AND json_extract(d.metadata, ?) = ?)", [path, path, value]
    raise IndexStoreError(
        f"filter key {key!r}: {json.dumps(value)[:60]} cannot be matched; give a string, number, boolean, "
        "null, or a list of those (any of)"
    )
