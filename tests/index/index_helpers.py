"""Helpers for the index tests (a unique module name, so it never clashes with another conftest):
a small corpus with long documents and metadata and a brute-force ranking to compare with (an index
read from its files is `helpers.index_files`, shared with the scale tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructembed import Embedder
from instructembed.chunking import HEAD_WEIGHT, ChunkSettings, chunk_documents
from instructembed.index import Index
from instructembed.inputs import Item

DOC = "Represent the document for retrieval: "
QUERY = "Represent the question for retrieving documents: "
CHUNKING = ChunkSettings(overlap=4)
TOPICS = ["rivers", "mountains", "trains", "bread", "planets", "violins", "glaciers"]


def make(path: Path, embedder: Embedder, **settings: Any) -> Index:
    """A new index over `embedder` with the tests' instructions, chunking and window (each overridable)."""
    defaults: dict[str, Any] = {"doc_instruction": DOC, "query_instruction": QUERY, "chunking": CHUNKING}
    return Index.create(
        path, model=str(embedder.spec.root), embedder=embedder, max_seq_length=32, **{**defaults, **settings}
    )


def corpus(n: int = 60, seed: int = 0) -> list[dict[str, object]]:
    """Records with ids, texts (every fifth one long enough for several chunks) and metadata."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        words = " ".join(rng.choice(TOPICS, size=6))
        text = f"Document {i} is about {topic} and also {words}."
        if i % 5 == 0:
            text = " ".join(
                f"Part {j} of document {i} on {topic}: {words}, {TOPICS[j % 7]}." for j in range(12)
            )
        meta: dict[str, object] = {"topic": topic, "year": 2000 + i % 4, "even": i % 2 == 0}
        if i % 9 == 0:
            meta["note"] = None
        out.append({"id": f"doc-{i:03d}", "text": text, "metadata": meta})
    return out


def brute_force(
    embedder: Embedder,
    records: Sequence[dict[str, object]],
    queries: np.ndarray,
    k: int,
    pool: str = "head",
    keep: set[str] | None = None,
) -> list[list[tuple[str, float, int]]]:
    """The obviously-right ranking: embed every chunk, score all, group by document in numpy.
    Returns per query [(id, score, best chunk)], best first."""
    items = [Item(DOC, str(r["text"])) for r in records]
    batch = chunk_documents(embedder, items, CHUNKING)
    vectors = embedder.embed_tokenized(batch.rows)  # (C, D)
    doc_of = batch.doc_of_chunk()
    out = []
    for q in queries:
        scores = vectors @ q  # (C,)
        ranked = []
        for d, record in enumerate(records):
            if keep is not None and record["id"] not in keep:
                continue
            mine = np.flatnonzero(doc_of == d)
            best = int(mine[np.argmax(scores[mine])])
            if pool == "head":  # the truncated head's score blended with the best chunk's
                head = next(c for c in mine if batch.chunks[c].index == 0)
                value = HEAD_WEIGHT * float(scores[head]) + (1 - HEAD_WEIGHT) * float(scores[best])
            else:
                value = float(scores[mine].max() if pool == "max" else scores[mine].mean())
            ranked.append((str(record["id"]), value, batch.chunks[best].index))
        ranked.sort(key=lambda t: -t[1])
        out.append(ranked[:k])
    return out
