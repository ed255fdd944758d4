"""`--batch-sampler no-duplicates`: no two rows sharing a key in a batch, every row once per epoch,
the same batches for a seed and after a resume; checked against sentence-transformers' loop written
out naively, on random data with many duplicates, and end to end on a tiny random BERT."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers.words import WORDS
from instructembed.embedder import Embedder
from instructembed.inputs import Item
from instructembed.train.config import BatchSampling, Shape, TrainConfig, build_config
from instructembed.train.data import NoDuplicatesBatchSampler, TaskBatchSampler, no_duplicate_batches
from instructembed.train.loop import train
from instructembed.train.user_data import (
    DatasetSpec,
    Fields,
    ScoredExample,
    TrainExample,
    batch_keys,
    read_dataset,
)


def naive_no_duplicates(order: list[int], keys: list[tuple[str, ...]], batch: int) -> list[list[int]]:
    """sentence-transformers' NoDuplicatesBatchSampler.__iter__ (drop_last=False), as it is written:
    rescan the remaining rows from the start for each batch, skip a row sharing a value."""
    remaining = dict.fromkeys(order)
    out: list[list[int]] = []
    while remaining:
        seen: set[str] = set()
        taken: list[int] = []
        for row in remaining:
            if set(keys[row]) & seen:
                continue
            taken.append(row)
            if len(taken) == batch:
                break
            seen.update(keys[row])
        out.append(taken)
        for row in taken:
            del remaining[row]
    return out


def _random_keys(rng: random.Random, n: int, n_keys: int) -> list[tuple[str, ...]]:
    # one or two keys per row from a small pool: many rows share one (a question with several answers)
    return [tuple(f"k{rng.randrange(n_keys)}" for _ in range(rng.choice((1, 2)))) for _ in range(n)]


@pytest.mark.parametrize("case", range(30))
def test_the_cut_is_sentence_transformers_loop(case: int) -> None:
    rng = random.Random(case)
    n, batch = rng.randrange(1, 120), rng.randrange(1, 12)
    keys = _random_keys(rng, n, rng.randrange(1, 40))
    order = list(range(n))
    rng.shuffle(order)
    got, left = no_duplicate_batches(order, keys, batch)
    assert left == []
    assert got == naive_no_duplicates(order, keys, batch)


@pytest.mark.parametrize("case", range(20))
def test_a_cut_for_several_processes_splits_evenly_and_leaves_out_only_what_cannot_be_placed(
    case: int,
) -> None:
    rng = random.Random(100 + case)
    n, world = rng.randrange(10, 100), rng.choice((2, 4))
    batch = world * rng.randrange(1, 5)
    keys = _random_keys(rng, n, rng.randrange(2, 30))
    order = list(range(n))
    rng.shuffle(order)
    got, left = no_duplicate_batches(order, keys, batch, multiple_of=world)
    used = [i for b in got for i in b]
    assert sorted(used + left) == list(range(n))  # each row once: in a batch or left out
    assert all(len(b) % world == 0 and 0 < len(b) <= batch for b in got)
    assert all(len({k for i in b for k in keys[i]}) == sum(len(set(keys[i])) for i in b) for b in got)
    if left:  # left out only because these rows cannot make a batch of `world` rows together
        assert len(no_duplicate_batches(left, keys, batch)[0][0]) < world


def _data(seed: int) -> tuple[list[str], list[tuple[str, ...]]]:
    rng = random.Random(seed)
    tasks = [rng.choice("abc") for _ in range(300)]
    keys = _random_keys(rng, 300, 60)  # ~5 rows per key: duplicates everywhere
    return tasks, keys


def _keys_distinct(batch: np.ndarray, keys: list[tuple[str, ...]]) -> bool:
    flat = [k for i in batch for k in set(keys[int(i)])]
    return len(flat) == len(set(flat))


def test_no_batch_has_a_duplicate_and_every_row_is_used_once_per_epoch() -> None:
    tasks, keys = _data(0)
    sampler = NoDuplicatesBatchSampler(tasks, keys, global_batch=16, seed=7)
    random_plan = TaskBatchSampler(tasks, 16, seed=7).epoch_plan(0)
    assert any(not _keys_distinct(b, keys) for _, b in random_plan)  # the problem this solves
    for epoch in range(3):
        plan = sampler.epoch_plan(epoch)
        assert all({tasks[int(i)] for i in b} == {task} for task, b in plan)  # one task per batch
        assert all(_keys_distinct(b, keys) for _, b in plan)
        used = Counter(int(i) for _, b in plan for i in b)
        assert sorted(used) == list(range(len(tasks))) and set(used.values()) == {1}
        assert all(len(b) <= 16 for _, b in plan)
        assert len(plan) == sampler.epoch_length(epoch)


def test_same_seed_same_batches_other_epoch_or_seed_others() -> None:
    tasks, keys = _data(1)

    def plan(seed: int, epoch: int) -> list[tuple[str, list[int]]]:
        sampler = NoDuplicatesBatchSampler(tasks, keys, 16, seed)
        return [(t, b.tolist()) for t, b in sampler.epoch_plan(epoch)]

    assert plan(3, 0) == plan(3, 0) and plan(3, 2) == plan(3, 2)
    assert plan(3, 0) != plan(3, 1) and plan(3, 0) != plan(4, 0)


def test_the_tail_is_smaller_batches_in_the_same_epoch() -> None:
    """A task of 20 rows where 8 share one key, batch 4: 5 batches would do without that key; with it
    each batch holds at most one of the 8, so the last batches are smaller, all in this epoch."""
    tasks = ["t"] * 20
    keys = [("same",) if i < 8 else (f"own{i}",) for i in range(20)]
    sampler = NoDuplicatesBatchSampler(tasks, keys, global_batch=4, seed=0)
    for epoch in range(4):
        plan = sampler.epoch_plan(epoch)
        sizes = sorted(len(b) for _, b in plan)
        assert sum(sizes) == 20 and len(plan) >= 8 and sizes[0] < 4  # 8 "same" rows: 8 batches at least
        assert all(_keys_distinct(b, keys) for _, b in plan)


def test_position_and_steps_follow_epochs_of_different_lengths() -> None:
    tasks = ["t"] * 20
    keys = [("same",) if i < 8 else (f"own{i}",) for i in range(20)]
    lengths = []
    for seed in range(30):
        s = NoDuplicatesBatchSampler(tasks, keys, global_batch=4, seed=seed)
        lengths = [s.epoch_length(e) for e in range(3)]
        if len(set(lengths)) > 1:
            break
    assert len(set(lengths)) > 1, "no seed gave epochs of different lengths"
    assert s.steps(3) == sum(lengths)
    flat = [(e, i) for e in range(3) for i in range(lengths[e])]
    fresh = NoDuplicatesBatchSampler(tasks, keys, global_batch=4, seed=seed)  # a resumed run: no cache
    assert [fresh.position(step) for step in range(len(flat))] == flat


def test_weights_scale_passes_and_weight_one_is_one_pass() -> None:
    tasks, keys = _data(2)
    plain = NoDuplicatesBatchSampler(tasks, keys, 16, seed=5)
    same = NoDuplicatesBatchSampler(tasks, keys, 16, seed=5, weights={"a": 1.0})
    assert [b.tolist() for _, b in plain.epoch_plan(1)] == [b.tolist() for _, b in same.epoch_plan(1)]
    weighted = NoDuplicatesBatchSampler(tasks, keys, 16, seed=5, weights={"a": 2.0, "b": 0.5})
    count = Counter(t for t, _ in weighted.epoch_plan(0))
    one = Counter(t for t, _ in plain.epoch_plan(0))
    assert count["c"] == one["c"] and count["a"] >= 2 * one["a"] - 2 and count["b"] <= one["b"] // 2 + 1
    assert all(_keys_distinct(b, keys) for _, b in weighted.epoch_plan(0))


def test_keys_query_and_positive_texts_label_for_labelled_rows_none_for_scored(tmp_path: Path) -> None:
    q, p, n = Item("i: ", "question"), Item("d: ", "passage"), Item("d: ", "other")
    assert batch_keys(TrainExample(q, p, n, "t")) == ("question", "passage")
    assert batch_keys(TrainExample(q, p, n, "t", group="intent")) == ("intent",)
    assert batch_keys(ScoredExample(q, p, 1.0, "t")) == ()
    path = tmp_path / "lab.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(12):
            writer.writerow([f"text {WORDS[i]} {i}", ["x", "y", "z"][i % 3]])

    def embed(texts: list[str]) -> np.ndarray:
        v = np.random.default_rng(0).normal(size=(len(texts), 8))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    data = read_dataset(DatasetSpec(path, Shape.LABELLED, Fields()), embed=embed)
    by_text = {f"text {WORDS[i]} {i}": ["x", "y", "z"][i % 3] for i in range(12)}
    assert data.examples and all(
        isinstance(e, TrainExample) and e.group == by_text[e.query.text] for e in data.examples
    )


# --- end to end on a tiny random BERT


@pytest.fixture(scope="module")
def dup_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 (question, passage) pairs over 16 questions: 3 passages each, as TrecQA's answers."""
    root = tmp_path_factory.mktemp("dup")
    rng = random.Random(0)
    path = root / "pairs.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "passage"])
        for qi in range(16):
            question = " ".join(rng.choice(WORDS) for _ in range(3)) + f" q{qi} ?"
            for k in range(3):
                writer.writerow([question, " ".join(rng.choice(WORDS) for _ in range(6)) + f" p{qi}-{k}"])
    return path


def _config(model: Path, data: Path, out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        model=str(model),
        data=data,
        out=out,
        shape=Shape.PAIRS,
        query_field="question",
        positive_field="passage",
        batch_size=8,
        max_length=32,
        epochs=2,
        lr=1e-3,
        checkpoint_every=2,
        progress=False,
        batch_sampler=BatchSampling.NO_DUPLICATES,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    model = Embedder.load(path).model
    assert model is not None
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_lands_on_the_same_batches(tiny_bert_dir: Path, dup_pairs: Path, tmp_path: Path) -> None:
    full = train(_config(tiny_bert_dir, dup_pairs, tmp_path / "full"))
    assert full.model_dir is not None
    n_steps = full.steps
    assert n_steps >= 12  # 2 epochs of >= 6 batches (48 rows, batch 8; more when the tail is smaller)
    killed = train(_config(tiny_bert_dir, dup_pairs, tmp_path / "killed"), stop_after=n_steps // 2 + 1)
    assert killed.model_dir is None
    resumed = train(_config(tiny_bert_dir, dup_pairs, tmp_path / "killed"), resume=True)
    assert resumed.steps == n_steps and resumed.model_dir is not None
    a, b = _weights(full.model_dir), _weights(resumed.model_dir)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6

    def logged(run: str) -> list[tuple[int, int, float]]:
        lines = (tmp_path / run / "train_log.jsonl").read_text().splitlines()
        return [(x["step"], x["epoch"], round(x["loss"], 4)) for x in map(json.loads, lines) if "loss" in x]

    assert logged("killed") == logged("full")  # the same batches in the same order, step by step
    with pytest.raises(ValueError, match="options changed"):
        train(
            _config(tiny_bert_dir, dup_pairs, tmp_path / "killed", batch_sampler=BatchSampling.RANDOM),
            resume=True,
        )


def test_cli_flag_and_environment_twin(tiny_bert_dir: Path, dup_pairs: Path, tmp_path: Path) -> None:
    from instructembed.train.cli import _standalone

    args = ["train", "--model", str(tiny_bert_dir), "--data", str(dup_pairs), "--shape", "pairs",
            "--query-field", "question", "--positive-field", "passage", "--batch-size", "8",
            "--max-length", "32", "--max-steps", "2", "--no-progress"]  # fmt: skip
    flag = CliRunner().invoke(
        _standalone(), [*args, "--batch-sampler", "no-duplicates", "--out", str(tmp_path / "a")]
    )
    assert flag.exit_code == 0, flag.output
    env = CliRunner().invoke(
        _standalone(),
        [*args, "--out", str(tmp_path / "b")],
        env={"INSTRUCTEMBED_TRAIN_BATCH_SAMPLER": "no-duplicates"},
    )
    assert env.exit_code == 0, env.output
    default = CliRunner().invoke(_standalone(), [*args, "--out", str(tmp_path / "c")])
    assert default.exit_code == 0, default.output
    configs = {r: json.loads((tmp_path / r / "summary.json").read_text())["config"] for r in "abc"}
    assert configs["a"]["batch_sampler"] == configs["b"]["batch_sampler"] == "no-duplicates"
    assert configs["c"]["batch_sampler"] == "random"  # the default until a measurement says otherwise
    bad = CliRunner().invoke(
        _standalone(), [*args, "--batch-sampler", "dedupe", "--out", str(tmp_path / "d")]
    )
    assert bad.exit_code != 0


def test_config_file_value_is_read() -> None:
    cfg = build_config({"batch_sampler": "no-duplicates"}, {"model": "m", "data": "d.csv", "out": "o"})
    assert cfg.batch_sampler is BatchSampling.NO_DUPLICATES
    assert TrainConfig(model="m", data=Path("d"), out=Path("o")).batch_sampler is BatchSampling.RANDOM
