"""Every loader on the real files (row counts from each SOURCE.md), and malformed data errors with file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from instructembed.errors import InputFileError
from instructembed.eval import loaders
from instructembed.eval.records import (
    ClassificationData,
    ClusteringData,
    PairData,
    RerankingData,
    RetrievalData,
    STSData,
    SummarizationData,
)
from instructembed.eval.tasks import LOCAL_TASKS, TaskType, get_task, resolve_tasks

STS_COUNTS = {
    "stsbenchmark": 1379,
    "sick": 9927,
    "sts12": 2358,
    "sts13": 1500,
    "sts14": 3750,
    "sts15": 3000,
    "sts16": 1186,
}


@pytest.mark.parametrize(("source", "count"), STS_COUNTS.items())
def test_sts_loaders(shared_data: Path, source: str, count: int) -> None:
    data = loaders.load_local(source, shared_data)
    assert isinstance(data, STSData) and len(data.scores) == count
    assert all(0.0 <= s <= 5.0 for s in data.scores)
    assert not any("\t" in s or s.endswith("\r") for s in data.sentences1 + data.sentences2)


@pytest.mark.parametrize(
    ("source", "pairs", "positives"),
    [
        ("twitter_pit2015", 838, 175),
        ("twitter_url_corpus", 9324, 1820),
        ("mrpc", 1725, 1147),
        ("snli", 9824, 3368),
    ],
)
def test_pair_loaders(shared_data: Path, source: str, pairs: int, positives: int) -> None:
    data = loaders.load_local(source, shared_data)
    assert isinstance(data, PairData) and len(data.labels) == pairs
    assert sum(data.labels) == positives


def test_snli_unquotes_csv_fields(shared_data: Path) -> None:
    data = loaders.load_local("snli", shared_data)
    assert not any(s.startswith('"') and s.endswith('"') for s in data.sentences1)  # type: ignore[union-attr]


def test_classification_loaders(shared_data: Path) -> None:
    banking = loaders.load_local("banking77", shared_data)
    assert isinstance(banking, ClassificationData)
    assert (len(banking.train_labels), len(banking.test_labels)) == (10003, 3080)
    assert len(set(banking.test_labels)) == 77 and not any(t.endswith("\r") for t in banking.train_texts)
    ag = loaders.load_local("ag_news_classification", shared_data)
    assert isinstance(ag, ClassificationData) and len(ag.train_labels) == len(ag.test_labels) == 3800
    assert not any("#39;" in t or "quot;" in t for t in ag.test_texts)
    sst = loaders.load_local("sst2", shared_data)
    assert isinstance(sst, ClassificationData) and (len(sst.train_labels), len(sst.test_labels)) == (
        872,
        1821,
    )
    assert not any(t.endswith(" ") for t in sst.test_texts)


def test_clustering_loaders(shared_data: Path) -> None:
    for source, n_sets, total in (("banking77_clustering", 4, 3080), ("ag_news_clustering", 10, 7600)):
        data = loaders.load_local(source, shared_data)
        assert isinstance(data, ClusteringData) and len(data.sets) == n_sets
        assert sum(len(texts) for texts, _ in data.sets) == total


def test_trecqa_scifact_summeval(shared_data: Path) -> None:
    trec = loaders.load_local("trecqa", shared_data)
    assert isinstance(trec, RerankingData) and len(trec.queries) == 95
    assert sum(1 for q in trec.queries if any(q.labels)) == 89
    sci = loaders.load_local("scifact", shared_data)
    assert isinstance(sci, RetrievalData)
    assert (len(sci.corpus), len(sci.queries)) == (5183, 300)
    assert sum(len(r) for r in sci.qrels.values()) == 339
    assert not any(text.startswith(("['", '["')) or "'\\n '" in text for _, text in sci.corpus.values())
    summ = loaders.load_local("summeval_reference_free", shared_data)
    assert isinstance(summ, SummarizationData) and len(summ.groups) == 100
    assert all(len(g.summaries) == 16 and len(g.references) == 1 for g in summ.groups)


def test_numpy_string_array_parser() -> None:
    printed = "['First sentence.'\n \"It's second.\"\n 'A \\\\n literal.']"
    assert loaders.parse_numpy_strings(printed) == ["First sentence.", "It's second.", "A \\n literal."]


def test_malformed_file_names_file_and_line(shared_data: Path, tmp_path: Path) -> None:
    (tmp_path / "stsbenchmark").mkdir()
    good = (
        (shared_data / "stsbenchmark" / "sts-test.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    )
    (tmp_path / "stsbenchmark" / "sts-test.csv").write_text(
        "".join(good[:3]) + "broken line\n", encoding="utf-8"
    )
    with pytest.raises(InputFileError, match=r"sts-test\.csv:4: expected at least 7"):
        loaders.load_local("stsbenchmark", tmp_path)
    shutil.copytree(shared_data / "banking77", tmp_path / "banking77")
    with (tmp_path / "banking77" / "test.csv").open("a", encoding="utf-8") as handle:
        handle.write("some text,not_an_intent\r\n")
    with pytest.raises(InputFileError, match=r"test\.csv:\d+: expected `text,category`"):
        loaders.load_local("banking77", tmp_path)
    with pytest.raises(InputFileError, match="file not found"):
        loaders.load_local("sick", tmp_path)


def test_every_task_has_a_loader_and_registry_helpers() -> None:
    for task in LOCAL_TASKS:
        assert task.source in loaders.SOURCES
    assert {t.type for t in LOCAL_TASKS} == set(TaskType)
    assert get_task("stsbenchmark").name == "STSBenchmark"
    assert [t.name for t in resolve_tasks("Retrieval, sts13")] == ["SciFact", "STS13"]
    with pytest.raises(ValueError, match="unknown task"):
        get_task("NoSuchTask")
