"""Parsers for the INSTRUCTOR paper's other evaluations: Billboard, SummEval with references, prompt retrieval.

Each follows its folder's SOURCE.md in `../shared/data` ("Parsing pitfalls"): file order is kept (the
paper's code reshapes by it), JSON Lines may hold the bare `NaN` token (Python's json reads it), the
MQM file is space-separated with `seg_id = set_id + 1`. `PAPER_SOURCES` is merged into
`loaders.SOURCES`.

SummEval's human references: `summeval/summeval.jsonl` (MTEB's 16 machine summaries per article, with
the expert relevance) has none; `billboard_cnndm_thumb/` has SummEval's 11 per article (10 references +
the `Human-H` highlight). Articles are matched by their machine summaries: each SummEval article goes
to the THumB article that shares the most of its 16 summaries (lower-cased alphanumeric tokens equal):
at least 3 of them, and more than twice as many as any other article (on the real files: 5 to 16,
and no other article shares any). THumB's 17 machine systems are SummEval's 16 plus
Pegasus-dynamic-mix (`match_systems` shows it; tests check it).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .parsing import bad_line, json_lines, need_file, numbered_lines, to_float
from .records import (
    BillboardData,
    PromptExample,
    PromptRetrievalData,
    SummarizationData,
    SummaryGroup,
    TaskData,
)

__all__ = [
    "PAPER_SOURCES",
    "load_billboard_cnndm",
    "load_billboard_mscoco",
    "load_billboard_wmt20_zhen",
    "load_geoquery",
    "load_multirc_answerability",
    "load_summeval",
    "match_summeval_articles",
    "match_systems",
    "summary_tokens",
]

WMT_SYSTEMS = (
    "DeepMind.381",
    "DiDi_NLP.401",
    "Huoshan_Translate.919",
    "OPPO.1422",
    "Online-B.1605",
    "THUNLP.1498",
    "Tencent_Translation.1249",
    "WeChat_AI.1525",
)
#: The INSTRUCTOR scripts draw their test (and MultiRC pool) subsets with Python's `random`, seed 0.
PAPER_SEED = 0
PAPER_TEST_SIZE = 256
MULTIRC_POOL_SIZE = 3000
GEOQUERY_BUDGET = 3800  # main_geo.py: GPT-2 tokens for the whole prompt
MULTIRC_BUDGET = 1000  # main_answerbility.py
GEOQUERY_HEADER = "-- Using valid SQLite, answer the following questions for the tables provided above.\n"
MULTIRC_LABELS = {"Yes.": "True", "No.": "False"}


def _str(path: Path, line: int, row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        raise bad_line(path, line, f"field {key!r} should be a string, got {value!r}")
    return value


def _refs(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(seg_id, references) per line of a THumB-style references file."""
    out = []
    for n, row in json_lines(path):
        refs = row.get("refs")
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise bad_line(path, n, "expected `refs`: a non-empty list of strings")
        out.append((str(row.get("seg_id")), tuple(refs)))
    return out


def _thumb(path: Path, refs: list[tuple[str, tuple[str, ...]]], score_key: str) -> BillboardData:
    """THumB judgments grouped by item in the references' order (each row's seg_id must follow it)."""
    index = {seg: g for g, (seg, _) in enumerate(refs)}
    hyps, groups, human = [], [], []
    for n, row in json_lines(path):
        seg = str(row.get("seg_id"))
        if seg not in index:
            raise bad_line(path, n, f"seg_id {seg!r} has no references in the references file")
        hyps.append(_str(path, n, row, "hyp"))
        groups.append(index[seg])
        human.append(to_float(path, n, row.get(score_key), score_key))
    return BillboardData(tuple(r for _, r in refs), tuple(hyps), tuple(groups), tuple(human))


def load_billboard_mscoco(data_dir: Path) -> BillboardData:
    """2,500 captions x 4 references (`mscoco_references.json` is JSON Lines despite its name)."""
    folder = data_dir / "billboard_mscoco_thumb"
    return _thumb(folder / "mscoco_THumB-1.0.jsonl", _refs(folder / "mscoco_references.json"), "human_score")


def load_billboard_cnndm(data_dir: Path) -> BillboardData:
    """1,800 summaries (18 systems incl. Human-H) x 10 references; human_score = mean expert score."""
    folder = data_dir / "billboard_cnndm_thumb"
    return _thumb(folder / "cnndm_THumB-1.0.jsonl", _refs(folder / "cnndm_references.jsonl"), "human_score")


def _mqm(path: Path) -> dict[tuple[str, int], float]:
    """(system, 1-based seg_id) -> MQM average score, from the space-separated file."""
    scores: dict[tuple[str, int], float] = {}
    for n, line in numbered_lines(path):
        cols = line.split()
        if n == 1:
            if cols != ["system", "mqm_avg_score", "seg_id"]:
                raise bad_line(path, n, f"unexpected header {cols}")
            continue
        if len(cols) != 3 or not cols[2].isdigit():
            raise bad_line(path, n, "expected `system mqm_avg_score seg_id` separated by spaces")
        scores[(cols[0], int(cols[2]))] = to_float(path, n, cols[1], "mqm_avg_score")
    return scores


def load_billboard_wmt20_zhen(data_dir: Path) -> BillboardData:
    """8 systems x 2,000 segments, grouped by segment; human = MQM (<= 0, higher is better), seg = set_id + 1."""
    folder = data_dir / "billboard_wmt20_zhen"
    refs = _refs(folder / "wmt20-zh-en_references.jsonl")
    mqm = _mqm(folder / "mqm_newstest2020_zhen.avg_seg_scores.tsv")
    per_system: dict[str, list[str]] = {}
    for system in WMT_SYSTEMS:
        path = folder / "generators" / f"wmt20-zh-en_{system}.jsonl"
        texts: list[str] = []
        for n, row in json_lines(path):
            if row.get("set_id") != len(texts) or str(row.get("seg_id")) != refs[len(texts)][0]:
                raise bad_line(path, n, "segments must follow the references file's order (set_id 0, 1, ...)")
            texts.append(_str(path, n, row, "hyp"))
        if len(texts) != len(refs):
            raise bad_line(path, len(texts), f"{len(texts)} segments, the references have {len(refs)}")
        per_system[system] = texts
    hyps, groups, human = [], [], []
    for g in range(len(refs)):
        for system in WMT_SYSTEMS:
            key = (system, g + 1)
            if key not in mqm:
                raise bad_line(
                    folder / "mqm_newstest2020_zhen.avg_seg_scores.tsv", 0, f"no MQM score for {key}"
                )
            hyps.append(per_system[system][g])
            groups.append(g)
            human.append(mqm[key])
    return BillboardData(tuple(r for _, r in refs), tuple(hyps), tuple(groups), tuple(human))


# ---- SummEval with its human references ----------------------------------------------------------


def summary_tokens(text: str) -> tuple[str, ...]:
    """What two copies of one system output share despite THumB's detokenising and truecasing."""
    return tuple(re.findall(r"[a-z0-9]+", text.lower()))


def _summeval_rows(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    path = data_dir / "summeval" / "summeval.jsonl"
    groups: dict[str, list[dict[str, Any]]] = {}
    for n, row in json_lines(path):
        for key in ("article_id", "summary"):
            _str(path, n, row, key)
        row["relevance"] = to_float(path, n, row.get("relevance"), "relevance")
        groups.setdefault(row["article_id"], []).append(row)
    return groups


def _thumb_cnndm_rows(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    path = data_dir / "billboard_cnndm_thumb" / "cnndm_THumB-1.0.jsonl"
    groups: dict[str, list[dict[str, Any]]] = {}
    for n, row in json_lines(path):
        _str(path, n, row, "hyp")
        groups.setdefault(str(row.get("seg_id")), []).append(row)
    return groups


def match_summeval_articles(
    summeval: dict[str, list[dict[str, Any]]], thumb: dict[str, list[dict[str, Any]]]
) -> dict[str, str]:
    """SummEval article_id -> THumB seg_id, by the machine summaries the two share (see the module doc)."""
    where: dict[tuple[str, ...], set[str]] = {}
    for seg, rows in thumb.items():
        for row in rows:
            where.setdefault(summary_tokens(row["hyp"]), set()).add(seg)
    matched: dict[str, str] = {}
    for article, rows in summeval.items():
        votes = Counter(seg for row in rows for seg in where.get(summary_tokens(row["summary"]), ()))
        ranked = votes.most_common(2)
        second = ranked[1][1] if len(ranked) > 1 else 0
        if not ranked or ranked[0][1] < 3 or ranked[0][1] <= 2 * second:
            raise ValueError(
                f"SummEval article {article}: no THumB CNN/DM article shares most of its summaries "
                f"({ranked}); are summeval/ and billboard_cnndm_thumb/ the published files?"
            )
        matched[article] = ranked[0][0]
    if len(set(matched.values())) != len(matched):
        raise ValueError(
            "two SummEval articles matched the same THumB article; the files do not belong together"
        )
    return matched


def match_systems(summaries: Sequence[str], candidates: Sequence[tuple[str, str]]) -> dict[int, str]:
    """Summary index -> system name, one system each, maximising summed token-sequence similarity.

    `candidates` are (system, text). Identical outputs (extractive systems often agree) are
    interchangeable, so such a match is a set of equally good answers, not one.
    """
    import difflib

    import numpy as np
    from scipy.optimize import linear_sum_assignment

    left = [summary_tokens(s) for s in summaries]
    right = [summary_tokens(t) for _, t in candidates]
    sim = np.array([[difflib.SequenceMatcher(None, a, b).ratio() for b in right] for a in left])
    rows, cols = linear_sum_assignment(-sim)
    return {int(r): candidates[int(c)][0] for r, c in zip(rows, cols, strict=True)}


def load_summeval(data_dir: Path) -> SummarizationData:
    """MTEB's SummEval: 16 machine summaries + expert relevance per article, 11 human summaries each."""
    summeval = _summeval_rows(data_dir)
    thumb = _thumb_cnndm_rows(data_dir)
    refs = dict(_refs(data_dir / "billboard_cnndm_thumb" / "cnndm_references.jsonl"))
    matched = match_summeval_articles(summeval, thumb)
    groups = []
    for article, rows in summeval.items():
        seg = matched[article]
        highlight = [r["hyp"] for r in thumb[seg] if r.get("SYS") == "Human-H"]
        if len(highlight) != 1 or seg not in refs:
            raise ValueError(f"THumB article {seg} lacks its references or its single Human-H highlight")
        groups.append(
            SummaryGroup(
                (*refs[seg], highlight[0]),
                tuple(r["summary"] for r in rows),
                tuple(r["relevance"] for r in rows),
            )
        )
    return SummarizationData(tuple(groups))


# ---- prompt retrieval ------------------------------------------------------------------------------


def _json_file(path: Path) -> Any:
    try:
        return json.loads(need_file(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise bad_line(path, exc.lineno, f"not valid JSON ({exc.msg})") from None


def _geo_example(path: Path, i: int, row: Any) -> PromptExample:
    if not isinstance(row, dict) or not all(
        isinstance(row.get(k), str) for k in ("question", "query", "sql_template", "seq_in")
    ):
        raise bad_line(path, 1, f"example {i}: needs string fields question, query, sql_template, seq_in")
    query = row["query"].strip()
    return PromptExample(
        id=str(row.get("id", i)),
        embed_text=row["seq_in"],  # main_geo.py embeds seq_in (question + serialized schema)
        demonstration=f"-- {row['question']}\n{query}\n\n",
        query=f"-- {row['question']}\nSELECT",
        answer=query,
        key=row["sql_template"],
    )


def load_geoquery(data_dir: Path) -> PromptRetrievalData:
    """391 training questions as the pool; the paper's 256 of the 344 eval questions (random.sample, seed 0)."""
    folder = data_dir / "prompt_retrieval_instructor"
    train, evaluation = (_json_file(folder / f"geoquery_{s}.json") for s in ("train", "eval"))
    for name, rows in (("train", train), ("eval", evaluation)):
        if not isinstance(rows, list) or not rows:
            raise bad_line(folder / f"geoquery_{name}.json", 1, "expected a non-empty JSON array of examples")
    picked = random.Random(PAPER_SEED).sample(range(len(evaluation)), min(PAPER_TEST_SIZE, len(evaluation)))
    return PromptRetrievalData(
        pool=tuple(_geo_example(folder / "geoquery_train.json", i, r) for i, r in enumerate(train)),
        tests=tuple(_geo_example(folder / "geoquery_eval.json", i, evaluation[i]) for i in picked),
        mode="generate",
        budget=GEOQUERY_BUDGET,
        header=GEOQUERY_HEADER,
        answer_prefix="SELECT",
    )


def _multirc_example(path: Path, i: int, row: Any) -> PromptExample:
    text, output = (row.get("input"), row.get("output")) if isinstance(row, dict) else (None, None)
    if not isinstance(text, str) or "\nQuestion:" not in text or not isinstance(output, list) or not output:
        raise bad_line(
            path, 1, f"instance {i}: expected input 'Sentence: ...\\nQuestion: ...' and an output list"
        )
    label = MULTIRC_LABELS.get(output[0])
    if label is None:
        raise bad_line(path, 1, f"instance {i}: output {output[0]!r} is neither 'Yes.' nor 'No.'")
    sentence, question = text.split("\nQuestion:", 1)
    sentence = sentence.replace("Sentence:", "").strip()
    question = question.strip()
    prompt = f"{sentence}\n. Based on that information, can we know {question}\nanswer:"
    return PromptExample(
        id=str(row.get("id", i)),
        embed_text=f"{sentence}\n{question}",
        demonstration=f"{prompt}{label}",  # main_answerbility.py's get_instance_length text
        query=prompt,
        answer=label,
        key=label,
    )


def load_multirc_answerability(data_dir: Path) -> PromptRetrievalData:
    """The paper's draw: random.seed(0); 256 test instances, then 3,000 pool instances from the rest."""
    path = data_dir / "prompt_retrieval_instructor" / "multric_answerability.json"
    raw = _json_file(path)
    instances = raw.get("Instances") if isinstance(raw, dict) else None
    if not isinstance(instances, list) or len(instances) < PAPER_TEST_SIZE + MULTIRC_POOL_SIZE:
        raise bad_line(path, 1, "expected a Natural-Instructions task file with at least 3,256 `Instances`")
    rng = random.Random(PAPER_SEED)
    test_ids = rng.sample(range(len(instances)), PAPER_TEST_SIZE)
    rest = list(set(range(len(instances))) - set(test_ids))  # the paper's order (CPython int sets)
    pool_ids = rng.sample(rest, MULTIRC_POOL_SIZE)
    return PromptRetrievalData(
        pool=tuple(_multirc_example(path, i, instances[i]) for i in pool_ids),
        tests=tuple(_multirc_example(path, i, instances[i]) for i in test_ids),
        mode="choose",
        budget=MULTIRC_BUDGET,
        options=tuple(MULTIRC_LABELS.values()),
    )


PAPER_SOURCES: dict[str, tuple[Callable[[Path], TaskData], tuple[str, ...]]] = {
    "billboard_mscoco": (
        load_billboard_mscoco,
        ("billboard_mscoco_thumb/mscoco_THumB-1.0.jsonl", "billboard_mscoco_thumb/mscoco_references.json"),
    ),
    "billboard_cnndm": (
        load_billboard_cnndm,
        ("billboard_cnndm_thumb/cnndm_THumB-1.0.jsonl", "billboard_cnndm_thumb/cnndm_references.jsonl"),
    ),
    "billboard_wmt20_zhen": (
        load_billboard_wmt20_zhen,
        (
            "billboard_wmt20_zhen/wmt20-zh-en_references.jsonl",
            "billboard_wmt20_zhen/mqm_newstest2020_zhen.avg_seg_scores.tsv",
            *(f"billboard_wmt20_zhen/generators/wmt20-zh-en_{s}.jsonl" for s in WMT_SYSTEMS),
        ),
    ),
    "summeval": (
        load_summeval,
        (
            "summeval/summeval.jsonl",
            "billboard_cnndm_thumb/cnndm_THumB-1.0.jsonl",
            "billboard_cnndm_thumb/cnndm_references.jsonl",
        ),
    ),
    "geoquery": (
        load_geoquery,
        ("prompt_retrieval_instructor/geoquery_train.json", "prompt_retrieval_instructor/geoquery_eval.json"),
    ),
    "multirc_answerability": (
        load_multirc_answerability,
        ("prompt_retrieval_instructor/multric_answerability.json",),
    ),
}
