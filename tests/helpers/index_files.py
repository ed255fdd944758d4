"""An index directory read straight from its files, and the comparison of two indexes that a
resumed (or ingested) build must pass against an uninterrupted one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from instructembed.testing import assert_vectors_close


def snapshot(path: Path) -> tuple[dict[str, Any], list[tuple[Any, ...]], np.ndarray]:
    """(meta, rows in slot order, committed vectors) of an index, read straight from its files."""
    conn = sqlite3.connect(f"file:{path / 'index.sqlite'}?mode=ro", uri=True)
    try:
        meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        rows = conn.execute(
            'SELECT c.slot, d.id, d.text_sha256, d.metadata, d.n_chunks, d.truncated, c.chunk, c.start, c."end", '
            "c.text FROM chunks c JOIN docs d ON d.key = c.doc ORDER BY c.slot"
        ).fetchall()
    finally:
        conn.close()
    raw = np.fromfile(path / meta["vectors_file"], dtype="<f4").reshape(-1, meta["dimension"])
    return meta, rows, raw[: meta["slots"]]


def assert_same_index(got: Path, expected: Path) -> None:
    """Same ids, same rows at the same slots, nothing lost or duplicated, vectors within the shared
    tolerance (the two builds embedded in different batches)."""
    meta_a, rows_a, vectors_a = snapshot(got)
    meta_b, rows_b, vectors_b = snapshot(expected)
    assert rows_a == rows_b and len(rows_a) > 0
    assert (meta_a["slots"], meta_a["dead"]) == (meta_b["slots"], meta_b["dead"]) == (len(rows_b), 0)
    assert len({r[1] for r in rows_a}) == len({r[1] for r in rows_b})
    assert_vectors_close(vectors_a, vectors_b)
