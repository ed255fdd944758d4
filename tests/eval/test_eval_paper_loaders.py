"""The paper's other evaluations on the real files: counts from each SOURCE.md, SummEval's references and
systems matched, the paper's random draws, and malformed data reported with file:line."""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

from instructembed.errors import InputFileError
from instructembed.eval import loaders, paper_loaders
from instructembed.eval.records import BillboardData, PromptRetrievalData, SummarizationData


@pytest.mark.parametrize(
    ("source", "hyps", "items", "refs_each"),
    [
        ("billboard_mscoco", 2500, 500, 4),
        ("billboard_cnndm", 1800, 100, 10),
        ("billboard_wmt20_zhen", 16000, 2000, 2),
    ],
)
def test_billboard_loaders(shared_data: Path, source: str, hyps: int, items: int, refs_each: int) -> None:
    data = loaders.load_local(source, shared_data)
    assert isinstance(data, BillboardData)
    assert len(data.hypotheses) == len(data.groups) == len(data.human) == hyps
    assert len(data.references) == items and {len(r) for r in data.references} == {refs_each}
    assert Counter(data.groups) == {g: hyps // items for g in range(items)}  # equal systems per item
    assert list(data.groups) == sorted(data.groups)  # file order: grouped by item, as main.py reshapes
    if source == "billboard_wmt20_zhen":
        assert max(data.human) <= 0.0 < -min(data.human)  # MQM: negated penalties, higher is better
    small = data.limited(3)
    assert len(small.references) == 3 and len(small.hypotheses) == 3 * hyps // items
    assert set(small.groups) == {0, 1, 2}


def test_summeval_gets_eleven_human_references_per_article(shared_data: Path) -> None:
    data = loaders.load_local("summeval", shared_data)
    free = loaders.load_local("summeval_reference_free", shared_data)
    assert isinstance(data, SummarizationData) and isinstance(free, SummarizationData)
    assert len(data.groups) == 100
    assert all(len(g.references) == 11 and len(g.summaries) == 16 for g in data.groups)
    # the machine summaries and expert scores are summeval.jsonl's, in its order (= MTEB's)
    assert [g.summaries for g in data.groups] == [g.summaries for g in free.groups]
    assert [g.scores for g in data.groups] == [g.scores for g in free.groups]


def test_thumb_systems_are_summevals_sixteen_plus_pegasus_dynamic_mix(shared_data: Path) -> None:
    summeval = paper_loaders._summeval_rows(shared_data)
    thumb = paper_loaders._thumb_cnndm_rows(shared_data)
    matched = paper_loaders.match_summeval_articles(summeval, thumb)
    assert len(set(matched.values())) == 100
    left_out: Counter[str] = Counter()
    for article, rows in summeval.items():
        machine = [(r["SYS"], r["hyp"]) for r in thumb[matched[article]] if r["SYS"] != "Human-H"]
        assert len(machine) == 17
        used = set(paper_loaders.match_systems([r["summary"] for r in rows], machine).values())
        left_out.update({s for s, _ in machine} - used)
    # the two Pegasus outputs are near-identical on one article; everywhere else dynamic-mix is the extra one
    assert left_out["Pegasus-dynamic-mix"] >= 99 and sum(left_out.values()) == 100


def test_prompt_retrieval_loaders_draw_the_papers_subsets(shared_data: Path) -> None:
    geo = loaders.load_local("geoquery", shared_data)
    assert isinstance(geo, PromptRetrievalData) and geo.mode == "generate" and geo.budget == 3800
    assert len(geo.pool) == 391 and len(geo.tests) == 256
    picked = random.Random(0).sample(range(344), 256)
    assert [t.id for t in geo.tests] == [str(i) for i in picked]  # eval ids are positions 0..343
    assert geo.tests[0].query.startswith("-- ") and geo.tests[0].query.endswith("\nSELECT")
    assert all(t.answer.startswith("SELECT") for t in geo.tests)
    multirc = loaders.load_local("multirc_answerability", shared_data)
    assert isinstance(multirc, PromptRetrievalData) and multirc.mode == "choose" and multirc.budget == 1000
    assert len(multirc.pool) == 3000 and len(multirc.tests) == 256
    assert not {e.id for e in multirc.pool} & {e.id for e in multirc.tests}
    assert {e.key for e in multirc.pool} == {"True", "False"} and multirc.options == ("True", "False")
    assert (
        multirc.tests[0].query.endswith("\nanswer:") and "Based on that information" in multirc.tests[0].query
    )
    assert len(multirc.limited(5).tests) == 5 and len(multirc.limited(5).pool) == 3000


def test_paper_sources_name_file_and_line_on_bad_data(shared_data: Path, tmp_path: Path) -> None:
    shutil.copytree(shared_data / "billboard_mscoco_thumb", tmp_path / "billboard_mscoco_thumb")
    path = tmp_path / "billboard_mscoco_thumb" / "mscoco_THumB-1.0.jsonl"
    path.chmod(0o644)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"seg_id": "974", "hyp": "a caption", "human_score": "high"}\n')
    with pytest.raises(
        InputFileError, match=r"mscoco_THumB-1\.0\.jsonl:2501: human_score 'high' is not a number"
    ):
        loaders.load_local("billboard_mscoco", tmp_path)
    with pytest.raises(InputFileError, match="file not found"):
        loaders.load_local("billboard_wmt20_zhen", tmp_path)
