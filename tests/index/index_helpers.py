"""Helpers for the index tests (a unique module name, so it never clashes with another conftest):
a small corpus with long documents and metadata, a brute-force ranking to compare with, and a
byte-level snapshot of an index directory to compare two indexes with."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructembed import Embedder
from instructembed.chunking import OTHER_CHUNK_MARGIN, ChunkSettings, chunk_documents
from instructembed.inputs import Item

DOC = "Represent the document for retrieval: "
QUERY = "Represent the question for retrieving documents: "
CHUNKING = ChunkSettings(overlap=4)
TOPICS = ["rivers", "mountains", "trains", "bread", "planets", "violins", "glaciers"]


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
            if pool == "head":  # the head's score, or another chunk's minus the margin when higher
                adjusted = [
                    float(scores[c]) - (OTHER_CHUNK_MARGIN if batch.chunks[c].index > 0 else 0.0)
                    for c in mine
                ]
                best = int(mine[int(np.argmax(adjusted))])
                value = max(adjusted)
            else:
                best = int(mine[np.argmax(scores[mine])])
                value = float(scores[mine].max() if pool == "max" else scores[mine].mean())
            ranked.append((str(record["id"]), value, batch.chunks[best].index))
        ranked.sort(key=lambda t: -t[1])
        out.append(ranked[:k])
    return out


def snapshot(path: Path) -> tuple[dict[str, Any], list[tuple[Any, ...]], np.ndarray]:
    """(meta, rows in slot order, committed vectors) of an index, read straight from its files."""
    conn = sqlite3.connect(f"file:{path / 'index.sqlite'}?mode=ro", uri=True)
    try:
        meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        rows = conn.execute(
            'SELECT c.slot, d.id, d.text_sha256, d.metadata, d.n_chunks, c.chunk, c.start, c."end", c.text '
            "FROM chunks c JOIN docs d ON d.key = c.doc ORDER BY c.slot"
        ).fetchall()
    finally:
        conn.close()
    raw = np.fromfile(path / meta["vectors_file"], dtype="<f4").reshape(-1, meta["dimension"])
    return meta, rows, raw[: meta["slots"]]


def assert_same_index(got: Path, expected: Path) -> None:
    """Same ids, same rows at the same slots, nothing lost or duplicated, vectors within 1e-6."""
    meta_a, rows_a, vectors_a = snapshot(got)
    meta_b, rows_b, vectors_b = snapshot(expected)
    assert rows_a == rows_b
    assert (meta_a["slots"], meta_a["dead"]) == (meta_b["slots"], meta_b["dead"]) == (len(rows_b), 0)
    assert len({r[1] for r in rows_a}) == len({r[1] for r in rows_b})
    np.testing.assert_allclose(vectors_a, vectors_b, atol=1e-6, rtol=0)
