"""MEDI reading (validation with file and line), one-task batches, the distributed slices, the builder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from instructembed.errors import InputFileError
from instructembed.train.data import TaskBatchSampler, local_slice, parse_line, read_medi


def _line(task: str = "t", key: str = "task_name", i: int = 0) -> str:
    return json.dumps(
        {
            "query": ["Represent the q: ", f"query {i}"],
            "pos": ["Represent the d: ", f"pos {i}"],
            "neg": ["Represent the d: ", f"neg {i}"],
            key: task,
        }
    )


def test_reads_task_name_and_older_task_id(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(_line("a") + "\n\n" + _line("b", key="task_id") + "\n", encoding="utf-8")
    data = read_medi(path)
    assert [e.task for e in data.examples] == ["a", "b"]
    assert data.examples[0].query.instruction == "Represent the q: "
    assert data.task_counts() == {"a": 1, "b": 1}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "JSON object"),
        (json.dumps({"query": ["i", "t"], "pos": ["i", "t"], "task_name": "x"}), '"neg"'),
        (
            json.dumps({"query": ["i"], "pos": ["i", "t"], "neg": ["i", "t"], "task_name": "x"}),
            "instruction, text",
        ),
        (json.dumps({"query": ["i", "t"], "pos": ["i", "t"], "neg": ["i", "t"]}), "task_name"),
        (
            json.dumps({"query": ["i", " "], "pos": ["i", "t"], "neg": ["i", "t"], "task_name": "x"}),
            "empty text",
        ),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(_line() + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=rf"m\.jsonl:2: .*{message}") as info:
        read_medi(path)
    assert "--skip-bad" in str(info.value)
    with pytest.raises(ValueError, match=message):
        parse_line(bad)


def test_skip_bad_counts_and_ablation_empties_instructions(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join([_line(i=0), "oops", _line(i=1), "{}"]) + "\n", encoding="utf-8")
    data = read_medi(path, skip_bad=True, no_instructions=True)
    assert data.n_skipped == 2 and len(data.examples) == 2
    assert all(e.role(r).instruction == "" for e in data.examples for r in ("query", "pos", "neg"))
    assert data.examples[1].pos.text == "pos 1"


def test_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="build-medi"):
        read_medi(tmp_path / "none.jsonl")
    (tmp_path / "e.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="no training examples"):
        read_medi(tmp_path / "e.jsonl")


def test_every_batch_is_one_task_and_plans_are_deterministic() -> None:
    tasks = ["a"] * 10 + ["b"] * 7 + ["c"] * 3 + ["a"] * 5
    sampler = TaskBatchSampler(tasks, global_batch=4, seed=1)
    assert "c" not in sampler.tasks  # fewer examples than a batch
    assert sampler.batches_per_epoch == 15 // 4 + 7 // 4
    plan = sampler.epoch_plan(0)
    assert len(plan) == sampler.batches_per_epoch
    for task, idx in plan:
        assert {tasks[i] for i in idx} == {task} and len(set(idx.tolist())) == 4
    again = TaskBatchSampler(tasks, global_batch=4, seed=1).epoch_plan(0)
    assert all(t1 == t2 and np.array_equal(i1, i2) for (t1, i1), (t2, i2) in zip(plan, again, strict=True))
    other = sampler.epoch_plan(1)
    assert any(not np.array_equal(i1, i2) for (_, i1), (_, i2) in zip(plan, other, strict=True))
    assert sampler.position(sampler.batches_per_epoch + 2) == (1, 2)


def test_ranks_share_the_task_and_split_the_batch() -> None:
    tasks = ["a"] * 16 + ["b"] * 16
    plan = TaskBatchSampler(tasks, global_batch=8, seed=3).epoch_plan(0)
    for task, idx in plan:
        parts = [local_slice(idx, r, 2) for r in range(2)]
        assert np.array_equal(np.concatenate(parts), idx)
        assert {tasks[i] for p in parts for i in p} == {task}
