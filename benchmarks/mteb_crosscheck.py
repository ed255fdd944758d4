"""The referee: our evaluator vs mteb's own task classes on the same local data, same model, same instructions.

For every local task, the mteb task class of the same type (STSBenchmark, TwitterSemEval2015,
Banking77Classification, TwentyNewsgroupsClustering (legacy protocol), AskUbuntuDupQuestions,
SciFact, SummEvalSummarization.v2) is given our parsed data in mteb's dataset layout and scored
by mteb through `instructembed.eval.mteb_adapter`; both main scores are printed side by side.

    .venv/bin/python benchmarks/mteb_crosscheck.py --model all-MiniLM-L6-v2 --instructions instructor-large

Needs the optional `mteb` package (`pip install mteb`). Each text is embedded once and shared by
both sides (a caching encoder in front of the model), so the difference is scoring only.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructembed.eval.encoder import CachingEncoder, Encoder
from instructembed.eval.instructions import load_instructions
from instructembed.eval.mteb_adapter import mteb_encoder
from instructembed.eval.records import (
    ClassificationData,
    ClusteringData,
    PairData,
    RerankingData,
    RetrievalData,
    STSData,
    SummarizationData,
    TaskData,
)
from instructembed.eval.runner import load_task_data, score_task
from instructembed.eval.tasks import LOCAL_TASKS, Task, TaskType, resolve_tasks

ROOT = Path(__file__).resolve().parents[1]

MTEB_CLASS = {
    TaskType.STS: "STSBenchmark",
    TaskType.PAIR_CLASSIFICATION: "TwitterSemEval2015",
    TaskType.CLASSIFICATION: "Banking77Classification",
    TaskType.CLUSTERING: "TwentyNewsgroupsClustering",
    TaskType.RERANKING: "AskUbuntuDupQuestions",
    TaskType.RETRIEVAL: "SciFact",
    TaskType.SUMMARIZATION: "SummEvalSummarization.v2",
}


class SharedCache:
    """An Encoder that remembers every (instruction, text) it has embedded (across both evaluators)."""

    def __init__(self, encoder: Encoder) -> None:
        self._inner = CachingEncoder(encoder)

    def embed(self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None) -> np.ndarray:
        items = [(instruction, x) if isinstance(x, str) else (x[0], x[1]) for x in inputs]
        by_instruction: dict[str | None, list[str]] = {}
        for inst, text in items:
            by_instruction.setdefault(inst, []).append(text)
        rows: dict[tuple[str | None, str], np.ndarray] = {}
        for inst, texts in by_instruction.items():
            for text, row in zip(texts, self._inner.embed(texts, inst), strict=True):
                rows[(inst, text)] = row
        return np.stack([rows[item] for item in items]) if items else np.zeros((0, 0), dtype=np.float32)


def _splits(**splits: dict[str, list[Any]]) -> Any:
    """A DatasetDict with one Dataset per split, each from its columns."""
    from datasets import Dataset, DatasetDict

    return DatasetDict({name: Dataset.from_dict(columns) for name, columns in splits.items()})


def _retrieval(
    corpus: dict[str, list[str]],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    top_ranked: dict[str, list[str]] | None,
) -> dict[str, Any]:
    """The layout mteb's retrieval and reranking task classes read (one subset, one test split)."""
    from datasets import Dataset

    split = {
        "corpus": Dataset.from_dict(corpus),
        "queries": Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
        "relevant_docs": qrels,
        "top_ranked": top_ranked,
    }
    return {"default": {"test": split}}


def _reranking(data: RerankingData) -> dict[str, Any]:
    """Candidates become a corpus of unique texts; each query's candidates its top-ranked list."""
    doc_id: dict[str, str] = {}
    queries, qrels, top = {}, {}, {}
    for i, q in enumerate(data.queries):
        qid = f"q{i}"
        for text in q.candidates:
            doc_id.setdefault(text, f"d{len(doc_id)}")
        queries[qid] = q.query
        qrels[qid] = {doc_id[t]: 1 for t, lab in zip(q.candidates, q.labels, strict=True) if lab > 0}
        top[qid] = [doc_id[t] for t in q.candidates]
    corpus = {"id": list(doc_id.values()), "text": list(doc_id), "title": ["" for _ in doc_id]}
    return _retrieval(corpus, queries, qrels, top)


def mteb_dataset(task: Task, data: TaskData) -> Any:
    """Our parsed data in the layout mteb's task class reads."""
    if isinstance(data, STSData):
        return _splits(
            test={
                "sentence1": list(data.sentences1),
                "sentence2": list(data.sentences2),
                "score": list(data.scores),
            }
        )
    if isinstance(data, PairData):
        return _splits(
            test={
                "sentence1": list(data.sentences1),
                "sentence2": list(data.sentences2),
                "labels": list(data.labels),
            }
        )
    if isinstance(data, ClassificationData):
        return _splits(
            train={"text": list(data.train_texts), "label": list(data.train_labels)},
            test={"text": list(data.test_texts), "label": list(data.test_labels)},
        )
    if isinstance(data, ClusteringData):
        return _splits(
            test={"sentences": [list(t) for t, _ in data.sets], "labels": [list(lab) for _, lab in data.sets]}
        )
    if isinstance(data, SummarizationData):
        groups = data.groups
        return _splits(
            test={
                "text": ["" for _ in groups],
                "human_summaries": [list(g.references) for g in groups],
                "machine_summaries": [list(g.summaries) for g in groups],
                "relevance": [list(g.scores) for g in groups],
            }
        )
    if isinstance(data, RetrievalData):
        corpus = {
            "id": list(data.corpus),
            "title": [t for t, _ in data.corpus.values()],
            "text": [x for _, x in data.corpus.values()],
        }
        return _retrieval(corpus, dict(data.queries), {q: dict(r) for q, r in data.qrels.items()}, None)
    if isinstance(data, RerankingData):
        return _reranking(data)
    raise TypeError(f"no mteb layout for {type(data).__name__}")


def mteb_score(task: Task, data: TaskData, encoder: Encoder, instr: dict[str, str | None]) -> float:
    import mteb

    mteb_task = mteb.get_task(MTEB_CLASS[task.type])
    mteb_task.dataset = mteb_dataset(task, data)
    mteb_task.data_loaded = True
    model = mteb_encoder(
        encoder, fixed={"query": instr.get("query"), "corpus": instr.get("corpus", instr.get("query"))}
    )
    scores = mteb_task.evaluate(model, split="test", encode_kwargs={"batch_size": 64})
    return float(scores["default"][task.main_score])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--instructions", default="instructor-large")
    parser.add_argument("--tasks", default="all")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from instructembed.embedder import Embedder

    shared = SharedCache(Embedder.load(args.model))
    table = load_instructions(args.instructions)
    tasks = LOCAL_TASKS if args.tasks == "all" else tuple(resolve_tasks(args.tasks))
    # mteb has no Billboard / prompt-retrieval class, and SummEval's main score is the legacy evaluator's
    tasks = tuple(t for t in tasks if t.type in MTEB_CLASS and t.main is None)
    print(f"model {args.model}, instructions {args.instructions}, limit {args.limit}")
    print("| task | type | metric | instructembed | mteb | diff |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    worst = 0.0
    for task in tasks:
        start = time.perf_counter()
        data, _ = load_task_data(task, args.data_dir, task.splits[0])
        data = data.limited(args.limit)
        instr = table.for_task(task)
        ours = 100 * score_task(CachingEncoder(shared), task, data, instr)[task.main_score]
        theirs = 100 * mteb_score(task, data, shared, instr)
        worst = max(worst, abs(ours - theirs))
        print(
            f"| {task.name} | {task.type.value} | {task.main_score} | {ours:.2f} | {theirs:.2f} | "
            f"{ours - theirs:+.3f} |  <!-- {time.perf_counter() - start:.0f}s -->",
            flush=True,
        )
    print(f"largest |difference|: {worst:.3f} points (target <= 0.1)")


if __name__ == "__main__":
    main()
