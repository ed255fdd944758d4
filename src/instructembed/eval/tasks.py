"""A task is data: name, type, where its data lives, splits, instruction key and main score.

`LOCAL_TASKS` covers every dataset in `../shared/data` that fits an MTEB task type, plus the INSTRUCTOR
paper's other evaluations (Billboard text-generation evaluation, prompt retrieval). A task is named
after its MTEB task only when the data *and* the split are the same as MTEB's; otherwise it carries a
`-local` suffix and its description says how it differs. Task names are stable: results, the held-out
set of training runs and the docs refer to them.
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
    BILLBOARD = "Billboard"  # the paper's text-generation evaluation (not an MTEB type)
    PROMPT_RETRIEVAL = "PromptRetrieval"  # the paper's in-context demonstration retrieval (not MTEB)


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
    TaskType.BILLBOARD: "pearson",
    TaskType.PROMPT_RETRIEVAL: "rouge_l",  # the paper's metric; needs a language model
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
    entry of the instruction table to use (the MTEB task name when there is one). `main` overrides the
    type's main score; `proxy_score` is reported as the main score when the main one cannot be computed
    (prompt retrieval without a language model), and the result says so.
    """

    name: str
    type: TaskType
    source: str
    splits: tuple[str, ...]
    description: str
    instruction_key: str
    mteb_name: str | None = None
    hub: HubSource | None = None
    main: str | None = None
    proxy_score: str | None = None

    @property
    def main_score(self) -> str:
        return self.main or MAIN_SCORE[self.type]


def _t(
    name: str,
    type_: TaskType,
    source: str,
    description: str,
    *,
    split: str = "test",
    key: str | None = None,
    mteb: str | None = None,
    main: str | None = None,
    proxy: str | None = None,
) -> Task:
    return Task(name, type_, source, (split,), description, key or name, mteb, None, main, proxy)


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
        "SummEval expert relevance vs cosine(machine summary, SOURCE ARTICLE): a reference-free variant "
        "(cosine to the article, not to human summaries).",
        key="SummEval",
    ),
    _t(
        "SummEval",
        TaskType.SUMMARIZATION,
        "summeval",
        "SummEval (= MTEB): 100 articles x 16 machine summaries vs 11 human summaries (THumB's 10 + the "
        "CNN/DM highlight), expert relevance. Main score as MTEB's original evaluator computes it "
        "(mteb issue 1156: p-values averaged in), which is what MTEB and the paper publish.",
        mteb="SummEval",
        main="mteb_v1_cosine_spearman",
    ),
    _t(
        "SummEvalSummarization.v2",
        TaskType.SUMMARIZATION,
        "summeval",
        "SummEval with MTEB's corrected evaluator (mean per-article Spearman), same data as SummEval.",
        key="SummEval",
        mteb="SummEvalSummarization.v2",
    ),
    _t(
        "BillboardMSCOCO",
        TaskType.BILLBOARD,
        "billboard_mscoco",
        "THumB 1.0 MSCOCO: 2,500 captions (500 images x 5 systems), 4 references each; Pearson of the "
        "best reference cosine with the human score (= the paper's data).",
    ),
    _t(
        "BillboardCNNDM",
        TaskType.BILLBOARD,
        "billboard_cnndm",
        "THumB CNN/DM: 1,800 summaries (100 articles x 18 systems), 10 references each, SummEval's expert "
        "scores (= the paper's data).",
    ),
    _t(
        "BillboardWMT20ZhEn",
        TaskType.BILLBOARD,
        "billboard_wmt20_zhen",
        "WMT20 zh-en: 16,000 translations (2,000 segments x the 8 MQM-scored systems), 2 references, "
        "expert MQM (rebuilt from three repositories; the paper's own file is not available).",
    ),
    _t(
        "GeoQuery",
        TaskType.PROMPT_RETRIEVAL,
        "geoquery",
        "GeoQuery text-to-SQL: demonstrations from 391 training questions for the paper's 256 test "
        "questions, 3,800-token budget; ROUGE-L of the LM's SQL (needs --lm). Without an LM: share of "
        "chosen demonstrations with the test question's SQL template.",
        proxy="template_match",
    ),
    _t(
        "MultiRCAnswerability",
        TaskType.PROMPT_RETRIEVAL,
        "multirc_answerability",
        "MultiRC answerability (Natural Instructions task050): the paper's 3,000-example pool and 256 "
        "test examples, 1,000-token budget; ROUGE-L (= accuracy) of the LM's Yes/No (needs --lm). "
        "Without an LM: label agreement of the chosen demonstrations.",
        proxy="label_agreement",
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
