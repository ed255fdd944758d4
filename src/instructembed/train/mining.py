"""Hard negatives for (query, positive) pairs from the user's corpus, with the base model and FAISS.

    mine_negatives(embedder, pairs, corpus_texts, out, MiningOptions(num_negatives=3, range_max=50))

1. embed the corpus with the document instruction (in chunks appended to `<out>.mining/corpus.f32`;
   a rerun with the same model, instruction and corpus continues where it stopped);
2. embed each query with the query instruction and search the corpus (`index.ann.exact_search`,
   FAISS inner product over the memory-mapped vectors -- the index's own exact search);
3. per (query, positive) pair, `select_negatives` keeps candidates that are not one of this
   query's positives, ranked in [range_min, range_max), scoring at most `max_score`, at least
   `min_score`, and below the positive by `absolute_margin` / `relative_margin`; then takes the
   `num_negatives` best (`sampling="top"`) or a seeded random draw of them (`"random"`);
4. write one JSON line per pair, {"query", "positive", "negative": [...], "positive_score",
   "negative_scores"} (query and positive under the pairs file's own column names), in chunks to `<out>.partial` (a rerun keeps the lines already written)
   and rename it to `out` at the end. `train --shape triplets` reads it.

The option names follow sentence-transformers' `mine_hard_negatives` (range_min, range_max,
max_score, min_score, absolute_margin, relative_margin, num_negatives, sampling_strategy) so they
mean what users expect; ranks count from 0 after this query's positives are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Corpus rows embedded per chunk (appended to the vector file, then the state is updated).
CORPUS_CHUNK = 2048
#: Pairs searched and written per chunk.
PAIR_CHUNK = 512


class Sampling(str, Enum):
    TOP = "top"  # the best-scoring eligible candidates: the hardest negatives
    RANDOM = "random"  # a seeded random draw among the eligible candidates


@dataclass(frozen=True)
class MiningOptions:
    num_negatives: int = 3
    range_min: int = 0
    range_max: int = 100
    max_score: float | None = None
    min_score: float | None = None
    absolute_margin: float | None = None  # negative score <= positive score - margin
    relative_margin: float | None = None  # negative score <= positive score * (1 - margin)
    sampling: Sampling = Sampling.TOP
    seed: int = 42

    def __post_init__(self) -> None:
        if self.num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {self.num_negatives}")
        if not 0 <= self.range_min < self.range_max:
            raise ValueError(
                f"need 0 <= range_min < range_max, got range_min={self.range_min} range_max={self.range_max}"
            )
        if self.relative_margin is not None and not 0 <= self.relative_margin < 1:
            raise ValueError(f"relative_margin must be in [0, 1), got {self.relative_margin}")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "sampling": self.sampling.value}


def select_negatives(
    scores: np.ndarray,
    rows: np.ndarray,
    positive_score: float,
    excluded: set[int],
    options: MiningOptions,
    rng: np.random.Generator,
) -> list[int]:
    """Chosen corpus rows for one pair, best first. `scores`, `rows`: (K,) candidates sorted by score
    descending (rows < 0 are FAISS's padding); `excluded`: rows that are this query's positives."""
    ranked = [
        (float(s), int(r)) for s, r in zip(scores, rows, strict=True) if r >= 0 and int(r) not in excluded
    ]
    window = ranked[options.range_min : options.range_max]
    ceiling = np.inf
    if options.max_score is not None:
        ceiling = min(ceiling, options.max_score)
    if options.absolute_margin is not None:
        ceiling = min(ceiling, positive_score - options.absolute_margin)
    if options.relative_margin is not None:
        ceiling = min(ceiling, positive_score * (1 - options.relative_margin))
    floor = -np.inf if options.min_score is None else options.min_score
    eligible = [r for s, r in window if floor <= s <= ceiling]
    if options.sampling is Sampling.TOP or len(eligible) <= options.num_negatives:
        return eligible[: options.num_negatives]
    picked = sorted(rng.choice(len(eligible), size=options.num_negatives, replace=False).tolist())
    return [eligible[i] for i in picked]


@dataclass(frozen=True)
class MiningReport:
    pairs: int
    written: int  # pairs with at least one negative
    without_negative: int  # pairs left out: no candidate passed the range / margin / score rules
    mean_negatives: float
    resumed_pairs: int
    out: Path


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _corpus_key(embedder: Any, instruction: str, texts: Sequence[str]) -> dict[str, Any]:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return {
        "model": str(embedder.name),
        "document_instruction": instruction,
        "corpus_sha256": digest.hexdigest(),
        "rows": len(texts),
        "dimension": int(embedder.dimension),
    }


def embed_corpus(
    embed: Callable[[list[str]], np.ndarray],
    key: dict[str, Any],
    texts: Sequence[str],
    work: Path,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Unit vectors (N, D) of `texts`, resumable: appended chunk by chunk to `work/corpus.f32`."""
    work.mkdir(parents=True, exist_ok=True)
    vectors, state_path = work / "corpus.f32", work / "corpus.json"
    dim, n = int(key["dimension"]), len(texts)
    done = 0
    if state_path.exists() and vectors.exists():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if {k: state.get(k) for k in key} == key:
            done = min(int(state["done"]), vectors.stat().st_size // (4 * dim))
            log.info("resuming the corpus embedding at row %d of %d", done, n)
        else:
            log.info("%s holds vectors of another model, instruction or corpus; embedding again", work)
    with vectors.open("r+b" if done else "wb") as f:
        f.truncate(done * 4 * dim)  # drop a chunk that was in flight
        f.seek(done * 4 * dim)
        if progress is not None and done:
            progress(done)
        for start in range(done, n, CORPUS_CHUNK):
            chunk = list(texts[start : start + CORPUS_CHUNK])
            f.write(_unit(embed(chunk)).tobytes())
            f.flush()
            os.fsync(f.fileno())
            done = start + len(chunk)
            state_path.write_text(json.dumps({**key, "done": done}) + "\n", encoding="utf-8")
            if progress is not None:
                progress(len(chunk))
    return np.fromfile(vectors, dtype=np.float32).reshape(n, dim) if n else np.zeros((0, dim), np.float32)


def _complete_lines(path: Path) -> int:
    """Lines fully written to `path`; a last line without its newline (a crash) is cut off."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep != len(data):
        with path.open("r+b") as f:
            f.truncate(keep)
    return data[:keep].count(b"\n")


def mine_negatives(
    embedder: Any,
    pairs: Sequence[tuple[str, str]],
    corpus: Sequence[str],
    out: Path,
    options: MiningOptions | None = None,
    *,
    query_instruction: str = "",
    document_instruction: str = "",
    progress: bool = False,
    keep_vectors: bool = False,
    fields: tuple[str, str] = ("query", "positive"),
) -> MiningReport:
    """Write triplets for `pairs` ((query, positive) texts) with negatives from `corpus` to `out`.

    `fields` names the query and positive keys of the output (the pairs file's own column names, so
    one set of `train --query-field/--positive-field` flags reads both it and the dev pairs)."""
    from instructembed.index.ann import exact_search

    options = options or MiningOptions()
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new --out (or delete it to mine again)")
    corpus = list(dict.fromkeys(corpus))  # one row per distinct text
    if len(corpus) < 2:
        raise ValueError("the corpus needs at least two distinct texts to mine negatives from")
    work, partial = out.with_name(out.name + ".mining"), out.with_name(out.name + ".partial")
    meta = {
        "options": options.to_json(),
        "query_instruction": query_instruction,
        "pairs": len(pairs),
        **_corpus_key(embedder, document_instruction, corpus),
    }
    meta_path = work / "mining.json"
    resumed = 0
    if partial.exists():
        before = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else None
        if before != meta:
            raise ValueError(
                f"{partial} was written with other options, model or corpus; rerun with the same ones, "
                f"or delete {partial} and {work} to start over"
            )
        resumed = _complete_lines(partial)
    work.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta) + "\n", encoding="utf-8")
    bar = _bar(progress, len(corpus), "embedding corpus", "text")

    def embed_docs(texts: list[str]) -> np.ndarray:
        return embedder.embed(texts, instruction=document_instruction)

    vectors = embed_corpus(embed_docs, _corpus_key(embedder, document_instruction, corpus), corpus, work, bar)
    row_of = {text: i for i, text in enumerate(corpus)}
    positives_of: dict[str, set[int]] = {}
    for query, positive in pairs:
        if positive in row_of:
            positives_of.setdefault(query, set()).add(row_of[positive])
    k = min(len(corpus), options.range_max + max((len(v) for v in positives_of.values()), default=0))
    written = without = n_negs = 0
    bar = _bar(progress, len(pairs), "mining", "pair")
    if bar is not None and resumed:
        bar(resumed)
    with partial.open("a", encoding="utf-8") as f:
        for start in range(resumed, len(pairs), PAIR_CHUNK):
            chunk = pairs[start : start + PAIR_CHUNK]
            queries = list(dict.fromkeys(q for q, _ in chunk))
            q_vecs = _unit(embedder.embed(queries, instruction=query_instruction))  # (Q, D)
            q_row = {q: i for i, q in enumerate(queries)}
            scores, rows = exact_search(vectors, q_vecs, k)  # (Q, k) each
            missing = list(dict.fromkeys(p for _, p in chunk if p not in row_of))
            extra = (
                dict(
                    zip(
                        missing, _unit(embedder.embed(missing, instruction=document_instruction)), strict=True
                    )
                )
                if missing
                else {}
            )
            lines = []
            for offset, (query, positive) in enumerate(chunk):
                i = q_row[query]
                p_vec = vectors[row_of[positive]] if positive in row_of else extra[positive]
                p_score = float(q_vecs[i] @ p_vec)
                rng = np.random.default_rng([options.seed, start + offset])
                chosen = select_negatives(
                    scores[i], rows[i], p_score, positives_of.get(query, set()), options, rng
                )
                record: dict[str, Any] = {
                    fields[0]: query,
                    fields[1]: positive,
                    "negative": [corpus[r] for r in chosen],
                    "positive_score": round(p_score, 6),
                    "negative_scores": [round(float(q_vecs[i] @ vectors[r]), 6) for r in chosen],
                }
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
            if bar is not None:
                bar(len(chunk))
    # count over the whole file (resumed lines included), then publish it
    kept_lines = []
    for line in partial.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["negative"]:
            written += 1
            n_negs += len(record["negative"])
            kept_lines.append(line + "\n")
        else:
            without += 1
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(kept_lines), encoding="utf-8")
    tmp.replace(out)
    partial.unlink()
    if not keep_vectors:
        shutil.rmtree(work, ignore_errors=True)
    if without:
        log.warning(
            "%d of %d pairs got no negative under the range / score / margin rules and were left out; "
            "widen --range-max or loosen --max-score / --relative-margin / --absolute-margin",
            without,
            len(pairs),
        )
    return MiningReport(len(pairs), written, without, n_negs / max(written, 1), resumed, out)


def _bar(enabled: bool, total: int, desc: str, unit: str) -> Callable[[int], None] | None:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)

    def update(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return update
