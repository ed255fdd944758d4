"""A task is data: name, type, where its data lives, splits, instruction key and main score.

`LOCAL_TASKS` covers every dataset in `../shared/data` that fits an MTEB task type. A task is named
after its MTEB task only when the data *and* the split are the same as MTEB's; otherwise it carries a
`-local` suffix and its description says how it differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "LOCAL_TASKS",
    "HubSource",
    "Role",
    "Task",
    "TaskType",
    "get_task",
    "resolve_tasks",
]


class TaskType(str, Enum):
    """MTEB's task types; the values are the section names of the instruction table."""

    STS = "STS"
    CLASSIFICATION = "Classification"
    CLUSTERING = "Clustering"
    PAIR_CLASSIFICATION = "PairClassification"
    RERANKING = "Reranking"
    RETRIEVAL = "Retrieval"
    SUMMARIZATION = "Summarization"


class Role(str, Enum):
    """Which side of an asymmetric task a text is on (the instruction table says `query` / `corpus`)."""

    QUERY = "query"
    DOCUMENT = "corpus"


#: MTEB's main score per type (the key in the per-split score dict).
MAIN_SCORE: dict[TaskType, str] = {
    TaskType.STS: "cosine_spearman",
    TaskType.CLASSIFICATION: "accuracy",
    TaskType.CLUSTERING: "v_measure",
    TaskType.PAIR_CLASSIFICATION: "max_ap",
    TaskType.RERANKING: "map_at_1000",
    TaskType.RETRIEVAL: "ndcg_at_10",
    TaskType.SUMMARIZATION: "cosine_spearman",
}


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face dataset in MTEB's column layout, loaded through `datasets` (needs the hub)."""

    path: str
    revision: str
    subset: str | None = None


@dataclass(frozen=True)
class Task:
    """One evaluation task.

    `source` names a local parser in `loaders.py` (ignored when `hub` is set); `instruction_key` is the
    entry of the instruction table to use (the MTEB task name when there is one).
    """

    name: str
    type: TaskType
    source: str
    splits: tuple[str, ...]
    description: str
    instruction_key: str
    mteb_name: str | None = None
    hub: HubSource | None = None

    @property
    def main_score(self) -> str:
        return MAIN_SCORE[self.type]


def _t(
    name: str,
    type_: TaskType,
    source: str,
    description: str,
    *,
    split: str = "test",
    key: str | None = None,
    mteb: str | None = None,
) -> Task:
    return Task(name, type_, source, (split,), description, key or name, mteb)


_STS = TaskType.STS
_PC = TaskType.PAIR_CLASSIFICATION
_CLS = TaskType.CLASSIFICATION
_CLU = TaskType.CLUSTERING

LOCAL_TASKS: tuple[Task, ...] = (
    _t(
        "STSBenchmark", _STS, "stsbenchmark", "STS Benchmark test, 1,379 pairs (= MTEB).", mteb="STSBenchmark"
    ),
    _t(
        "SICK-R",
        _STS,
        "sick",
        "SICK relatedness, all 9,927 pairs (train+trial+test), as MTEB's SICK-R test.",
        mteb="SICK-R",
    ),
    _t(
        "STS12-noMSRvid",
        _STS,
        "sts12",
        "SemEval STS 2012 test without the MSRvid genre (2,358 of MTEB's 3,108 pairs): not comparable.",
        key="STS12",
        mteb="STS12",
    ),
    _t("STS13", _STS, "sts13", "SemEval STS 2013 test, 1,500 pairs (= MTEB).", mteb="STS13"),
    _t("STS14", _STS, "sts14", "SemEval STS 2014 test, 3,750 pairs (= MTEB).", mteb="STS14"),
    _t("STS15", _STS, "sts15", "SemEval STS 2015 test, 3,000 scored pairs (= MTEB).", mteb="STS15"),
    _t("STS16", _STS, "sts16", "SemEval STS 2016 test, 1,186 scored pairs (= MTEB).", mteb="STS16"),
    _t(
        "TwitterSemEval2015-local",
        _PC,
        "twitter_pit2015",
        "PIT-2015 official test (838 pairs after dropping debatable ones); MTEB's test has 16,777 pairs.",
        key="TwitterSemEval2015",
        mteb="TwitterSemEval2015",
    ),
    _t(
        "TwitterURLCorpus-local",
        _PC,
        "twitter_url_corpus",
        "Twitter URL corpus raw test (9,324 pairs, paper's rule); MTEB's test has 51,534 pairs.",
        key="TwitterURLCorpus",
        mteb="TwitterURLCorpus",
    ),
    _t("MRPC-local", _PC, "mrpc", "MRPC test, 1,725 pairs, paraphrase = 1. Not an MTEB task."),
    _t(
        "SNLI-local",
        _PC,
        "snli",
        "SNLI test, 9,824 pairs, entailment = 1 vs neutral/contradiction = 0. Not an MTEB task.",
    ),
    _t(
        "Banking77Classification",
        _CLS,
        "banking77",
        "BANKING77 (train probe, test 3,080), MTEB's protocol.",
        mteb="Banking77Classification",
    ),
    _t(
        "AGNewsClassification-local",
        _CLS,
        "ag_news_classification",
        "AG News test (7,600) split 50/50 stratified (seed 42) into probe-train / test. Not an MTEB task.",
    ),
    _t(
        "SST2Classification-local",
        _CLS,
        "sst2",
        "SST-2: probe trained on the 872 dev sentences, tested on the 1,821 test sentences. Not an MTEB task.",
    ),
    _t(
        "Banking77Clustering-local",
        _CLU,
        "banking77_clustering",
        "BANKING77 test (3,080 texts, 77 intents) in 4 fixed random sets of 770. Not an MTEB task.",
    ),
    _t(
        "AGNewsClustering-local",
        _CLU,
        "ag_news_clustering",
        "AG News test (7,600 articles, 4 topics) in 10 fixed random sets of 760. Not an MTEB task.",
    ),
    _t(
        "RedditClustering-local",
        _CLU,
        "reddit_clustering",
        "TWEAC Reddit test titles (MTEB's source) in 25 fixed-seed sets of 10-50 subreddits, 100-512 titles "
        "each, drawn once MTEB's way (ids committed, `eval/clustering_sets.py`); not MTEB's own sets.",
        key="RedditClustering",
    ),
    _t(
        "StackExchangeClustering-local",
        _CLU,
        "stackexchange_clustering",
        "TWEAC StackExchange test titles (MTEB's source; 167 English sites with 100+ titles) in 25 "
        "fixed-seed sets of 10-50 sites, 100-1,000 titles each (ids committed); not MTEB's own sets.",
        key="StackExchangeClustering",
    ),
    _t(
        "TrecQA-local",
        TaskType.RERANKING,
        "trecqa",
        "TrecQA (Wang et al.) test as a reranking stand-in: questions grouped by text, questions without a "
        "positive dropped (MTEB's rule). Not an MTEB task.",
    ),
    _t(
        "SciFact",
        TaskType.RETRIEVAL,
        "scifact",
        "SciFact (BEIR) test: 300 claims over 5,183 abstracts, 339 qrels (= MTEB).",
        mteb="SciFact",
    ),
    _t(
        "SummEvalReferenceFree-local",
        TaskType.SUMMARIZATION,
        "summeval_reference_free",
        "SummEval expert relevance vs cosine(machine summary, SOURCE ARTICLE): a reference-free variant. "
        "The local copy has no human reference summaries, so MTEB's SummEval protocol cannot run on it.",
        key="SummEval",
    ),
)

_BY_NAME = {task.name.lower(): task for task in LOCAL_TASKS}


def get_task(name: str) -> Task:
    """The local task called `name` (case-insensitive); raises ValueError listing the known names."""
    task = _BY_NAME.get(name.strip().lower())
    if task is None:
        known = ", ".join(t.name for t in LOCAL_TASKS)
        raise ValueError(f"unknown task {name!r}; known tasks: {known} (or 'all', or a type such as 'STS')")
    return task


def resolve_tasks(spec: str) -> list[Task]:
    """Tasks from a comma-separated list of names; `all` and task-type names (e.g. `STS`) expand."""
    tasks: list[Task] = []
    types = {t.value.lower(): t for t in TaskType}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part.lower() == "all":
            tasks.extend(LOCAL_TASKS)
        elif part.lower() in types:
            tasks.extend(t for t in LOCAL_TASKS if t.type is types[part.lower()])
        else:
            tasks.append(get_task(part))
    if not tasks:
        raise ValueError(f"no tasks selected by {spec!r}; give task names separated by commas, or 'all'")
    return list(dict.fromkeys(tasks))
