"""Task data from a Hugging Face dataset id + revision, in MTEB's column layouts (needs `datasets` and the hub).

Nothing in the tests uses this module; it exists so users with internet can point a `Task` at
`HubSource("mteb/stsbenchmark-sts", revision)` and get the same scoring as local data.
"""

from __future__ import annotations

from typing import Any

from instructembed.errors import MissingExtraError

from .records import (
    ClassificationData,
    ClusteringData,
    PairData,
    RerankingData,
    RerankingQuery,
    RetrievalData,
    STSData,
    SummarizationData,
    SummaryGroup,
    TaskData,
)
from .tasks import Task, TaskType

__all__ = ["load_hub"]


def _load(path: str, revision: str, name: str | None = None, split: str | None = None) -> Any:
    try:
        import datasets
    except ImportError:
        raise MissingExtraError("eval", "datasets") from None
    return datasets.load_dataset(path, name, revision=revision, split=split)


def _flat(column: list[Any]) -> list[Any]:
    """MTEB's v1 pair datasets hold one row of lists; flatten either layout."""
    return [x for v in column for x in v] if column and isinstance(column[0], list) else list(column)


def load_hub(task: Task, split: str) -> TaskData:
    """Load `task.hub` and convert it to the in-memory record of `task.type`."""
    if task.hub is None:
        raise ValueError(f"task {task.name} has no hub source")
    src = task.hub
    if task.type is TaskType.RETRIEVAL:
        corpus = _load(src.path, src.revision, "corpus", "corpus")
        queries = _load(src.path, src.revision, "queries", "queries")
        qrels_rows = _load(src.path, src.revision, src.subset or "default", split)
        qrels: dict[str, dict[str, int]] = {}
        for row in qrels_rows:
            qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
        return RetrievalData(
            {str(r["_id"]): (r.get("title") or "", r["text"]) for r in corpus},
            {str(r["_id"]): r["text"] for r in queries},
            qrels,
        )
    ds = _load(src.path, src.revision, src.subset, split)
    if task.type is TaskType.STS:
        return STSData(tuple(ds["sentence1"]), tuple(ds["sentence2"]), tuple(float(x) for x in ds["score"]))
    if task.type is TaskType.PAIR_CLASSIFICATION:
        cols = ds.column_names
        s1, s2 = ("sentence1", "sentence2") if "sentence1" in cols else ("sent1", "sent2")
        return PairData(
            tuple(_flat(ds[s1])), tuple(_flat(ds[s2])), tuple(int(x) for x in _flat(ds["labels"]))
        )
    if task.type is TaskType.CLASSIFICATION:
        train = _load(src.path, src.revision, src.subset, "train")
        return ClassificationData(
            tuple(train["text"]), tuple(train["label"]), tuple(ds["text"]), tuple(ds["label"])
        )
    if task.type is TaskType.CLUSTERING:
        return ClusteringData(tuple((tuple(r["sentences"]), tuple(r["labels"])) for r in ds))
    if task.type is TaskType.RERANKING:
        out = []
        for r in ds:
            cands = tuple(r["positive"]) + tuple(r["negative"])
            out.append(
                RerankingQuery(r["query"], cands, (1,) * len(r["positive"]) + (0,) * len(r["negative"]))
            )
        return RerankingData(tuple(out))
    return SummarizationData(
        tuple(
            SummaryGroup(tuple(r["human_summaries"]), tuple(r["machine_summaries"]), tuple(r["relevance"]))
            for r in ds
        )
    )
