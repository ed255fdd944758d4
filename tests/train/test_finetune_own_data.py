"""From a CSV of pairs and a corpus to a tuned model, on a tiny random BERT: mine-negatives (and its
resume), train --eval/--test (best dev step kept), scored and labelled runs, the output loading in
Embedder / server / index, the model card, and the example script."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers.words import WORDS
from instructembed.embedder import Embedder
from instructembed.testing import assert_vectors_close
from instructembed.train import mining
from instructembed.train.config import Shape, TrainConfig
from instructembed.train.loop import train
from instructembed.train.mining import MiningOptions, mine_negatives

ROOT = Path(__file__).resolve().parents[2]
Q, D = "Represent the question: ", "Represent the passage: "


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("own")
    rng = random.Random(0)
    docs = [" ".join(rng.choice(WORDS) for _ in range(6)) + f" doc{i}" for i in range(60)]
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"id": str(i), "text": d}) + "\n" for i, d in enumerate(docs)), encoding="utf-8"
    )
    for name, rows in (("train", range(0, 32)), ("dev", range(32, 46)), ("test", range(46, 60))):
        with (root / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["question", "passage"])
            for i in rows:
                writer.writerow([" ".join(docs[i].split()[:3]) + " ?", docs[i]])
    with (root / "scored.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text1", "text2", "score"])
        for i in range(24):
            a = docs[i].split()
            writer.writerow([docs[i], " ".join(a[: 1 + i % 6]), str(i % 6)])
    with (root / "labelled.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(24):
            writer.writerow([docs[i], WORDS[i % 3]])
    return {"root": root, "model": tiny_bert_dir}


def _mine(own: dict[str, Path], out: Path) -> Path:
    from instructembed.train.cli import _standalone

    r = own["root"]
    result = CliRunner().invoke(
        _standalone(),
        ["data", "mine-negatives", "--model", str(own["model"]), "--pairs", str(r / "train.csv"),
         "--query-field", "question", "--positive-field", "passage", "--corpus", str(r / "corpus.jsonl"),
         "--query-instruction", Q, "--document-instruction", D, "--num-negatives", "2", "--range-min", "1",
         "--out", str(out), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_mined_triplets_exclude_positives_and_keep_the_column_names(
    own: dict[str, Path], tmp_path: Path
) -> None:
    out = _mine(own, tmp_path / "triplets.jsonl")
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 32
    for line in lines:
        assert set(line) >= {"question", "passage", "negative", "positive_score", "negative_scores"}
        assert line["passage"] not in line["negative"] and len(line["negative"]) == 2
        assert line["negative_scores"] == sorted(line["negative_scores"], reverse=True)
    assert (
        not (tmp_path / "triplets.jsonl.partial").exists()
        and not (tmp_path / "triplets.jsonl.mining").exists()
    )


def test_mining_resumes_after_a_crash_with_the_same_output(
    own: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = Embedder.load(own["model"])
    r = own["root"]
    rows = list(csv.DictReader((r / "train.csv").open(encoding="utf-8")))
    pairs = [(x["question"], x["passage"]) for x in rows]
    corpus = [json.loads(x)["text"] for x in (r / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    options = MiningOptions(num_negatives=2, sampling=mining.Sampling.RANDOM, range_max=20)
    whole = mine_negatives(embedder, pairs, corpus, tmp_path / "whole.jsonl", options, query_instruction=Q)
    monkeypatch.setattr(mining, "PAIR_CHUNK", 8)
    monkeypatch.setattr(mining, "CORPUS_CHUNK", 16)

    class Crash(RuntimeError):
        pass

    calls = {"n": 0}
    real = embedder.embed

    def flaky(*args: object, **kw: object) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 6:  # 4 corpus chunks done, then 1 query chunk, then the crash
            raise Crash
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(embedder, "embed", flaky)
    out = tmp_path / "resumed.jsonl"
    with pytest.raises(Crash):
        mine_negatives(embedder, pairs, corpus, out, options, query_instruction=Q)
    assert not out.exists() and (tmp_path / "resumed.jsonl.partial").exists()
    again = mine_negatives(embedder, pairs, corpus, out, options, query_instruction=Q)
    assert again.resumed_pairs == 8
    _assert_same_triplets(out, whole.out)
    with pytest.raises(FileExistsError, match="choose a new --out"):
        mine_negatives(embedder, pairs, corpus, out, options)


def _assert_same_triplets(got: Path, want: Path) -> None:
    """The same rows, texts and negatives; the scores (embedded in other chunks, so other batches)
    within the shared tolerance, not bit for bit."""
    rows = [json.loads(line) for line in got.read_text(encoding="utf-8").splitlines()]
    expected = [json.loads(line) for line in want.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(expected) > 0
    for a, b in zip(rows, expected, strict=True):
        numbers = {
            k
            for k, v in b.items()
            if isinstance(v, float) or (isinstance(v, list) and v and isinstance(v[0], float))
        }
        assert {k: v for k, v in a.items() if k not in numbers} == {
            k: v for k, v in b.items() if k not in numbers
        }
        for key in numbers:
            np.testing.assert_allclose(a[key], b[key], atol=1e-5, rtol=0)  # scores are written to 6 decimals


def _config(own: dict[str, Path], out: Path, **kw: object) -> TrainConfig:
    r = own["root"]
    base: dict[str, object] = dict(
        model=str(own["model"]),
        data=r / "train.csv",
        out=out,
        shape=Shape.PAIRS,
        query_field="question",
        positive_field="passage",
        query_instruction=Q,
        document_instruction=D,
        eval_file=r / "dev.csv",
        eval_corpus=r / "corpus.jsonl",
        test_file=r / "test.csv",
        batch_size=8,
        max_length=32,
        max_steps=4,
        eval_every=2,
        lr=1e-3,
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_train_on_mined_triplets_with_dev_and_test(own: dict[str, Path], tmp_path: Path) -> None:
    triplets = _mine(own, tmp_path / "triplets.jsonl")
    result = train(
        _config(own, tmp_path / "run", data=triplets, shape=Shape.TRIPLETS), command="instructembed train ..."
    )
    assert result.scores is not None and result.model_dir is not None
    log = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    dev_steps = [x["step"] for x in log if "dev" in x]
    assert dev_steps == [0, 2, 4]
    best = max((x for x in log if "dev" in x), key=lambda x: x["dev"]["main"])
    assert result.scores["chosen_step"] == best["step"]
    assert result.scores["dev"]["tuned"]["ndcg_at_10"] == best["dev"]["ndcg_at_10"]
    assert set(result.scores["test"]["base"]) == {"ndcg_at_10", "mrr_at_10", "recall_at_100", "main"}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["scores"] == result.scores and summary["datasets"][0]["shape"] == "triplets"
    card = (result.model_dir / "README.md").read_text(encoding="utf-8")
    assert "base_model:" in card and "| test | ndcg_at_10 |" in card and "instructembed train ..." in card
    assert Q in card and D in card


def test_the_saved_model_is_the_best_dev_step(own: dict[str, Path], tmp_path: Path) -> None:
    """With a learning rate that wrecks the model, the base (step 0) stays the best and is saved."""
    result = train(_config(own, tmp_path / "bad", lr=5.0, max_steps=2, test_file=None, max_grad_norm=1e9))
    assert result.scores is not None and result.model_dir is not None
    if result.scores["chosen_step"] == 0:
        base = Embedder.load(own["model"]).embed(["a text"], instruction=Q)
        assert_vectors_close(Embedder.load(result.model_dir).embed(["a text"], instruction=Q), base)
    last = train(_config(own, tmp_path / "last", lr=5.0, max_steps=2, test_file=None, keep_best=False))
    assert last.scores is not None and last.scores["chosen_step"] == 2


def test_scored_and_labelled_runs(own: dict[str, Path], tmp_path: Path) -> None:
    r = own["root"]
    scored = train(
        _config(own, tmp_path / "sts", data=r / "scored.csv", shape=Shape.SCORED, eval_file=r / "scored.csv",
                eval_corpus=None, test_file=None, query_field=None, positive_field=None)
    )  # fmt: skip
    assert scored.scores is not None and set(scored.scores["dev"]["tuned"]) == {"spearman", "main"}
    labelled = train(
        _config(own, tmp_path / "lab", data=r / "labelled.csv", shape=Shape.LABELLED, eval_file=r / "labelled.csv",
                eval_corpus=None, test_file=None, query_field=None, positive_field=None)
    )  # fmt: skip
    assert labelled.scores is not None and "probe_accuracy" in labelled.scores["dev"]["tuned"]


def test_bad_eval_file_fails_before_step_one(own: dict[str, Path], tmp_path: Path) -> None:
    from instructembed.errors import InputFileError

    bad = tmp_path / "dev.csv"
    bad.write_text("question,answer\nq,a\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"dev.csv:2: no field 'passage'"):
        train(_config(own, tmp_path / "run", eval_file=bad))
    assert not (tmp_path / "run" / "train_log.jsonl").exists()


def test_output_loads_in_embedder_server_and_index(own: dict[str, Path], tmp_path: Path) -> None:
    result = train(_config(own, tmp_path / "run", max_steps=2, eval_file=None, test_file=None))
    assert result.model_dir is not None
    model = Embedder.load(result.model_dir)
    vectors = model.embed(["a question"], instruction=Q)
    pytest.importorskip("faiss")
    from instructembed.index import Index

    index = Index.create(tmp_path / "ix", model=str(result.model_dir), doc_instruction=D, query_instruction=Q)
    index.add([{"id": "a", "text": "garden light"}, {"id": "b", "text": "river stone"}])
    assert len(index.search(["garden light ?"], k=2)[0]) == 2
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from instructembed.server import create_app

    with TestClient(create_app(Embedder.load(result.model_dir))) as client:
        reply = client.post("/v1/embeddings", json={"input": ["a question"], "instruction": Q})
        assert reply.status_code == 200, reply.text
        got = np.array([reply.json()["data"][0]["embedding"]], dtype=np.float32)
    assert_vectors_close(got, vectors)


def test_example_script_runs(own: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "INSTRUCTEMBED_EXAMPLE_MODEL": str(own["model"])}
    r = own["root"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "finetune_own_pairs.py"), str(r / "train.csv"),
         str(r / "corpus.jsonl"), str(r / "dev.csv"), str(tmp_path / "tuned")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ndcg_at_10" in done.stdout
    assert Embedder.load(tmp_path / "tuned" / "model").embed(["x"]).shape[0] == 1
    torch.set_num_threads(torch.get_num_threads())  # (the example sets its own threads in its process)


def test_lora_trains_adapters_only_and_saves_merged_weights(own: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("peft")
    base = Embedder.load(own["model"])
    assert base.model is not None
    before = {k: v.clone() for k, v in base.model.encoder.state_dict().items()}
    result = train(_config(own, tmp_path / "lora", lora_rank=4, max_steps=3, eval_file=None, test_file=None))
    assert result.model_dir is not None
    tuned = Embedder.load(result.model_dir)  # an ordinary model directory: no peft needed to load
    assert tuned.model is not None
    after = tuned.model.encoder.state_dict()
    assert after.keys() == before.keys()  # merged: no lora_A / lora_B left
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".query." in k or ".value." in k for k in changed)  # only adapted matrices move


def test_merging_lora_keeps_the_vectors(own: dict[str, Path]) -> None:
    pytest.importorskip("peft")
    from instructembed.train.lora import apply_lora, is_lora, merge_lora

    embedder = Embedder.load(own["model"])
    assert embedder.model is not None
    apply_lora(embedder.model, rank=4, alpha=8)
    with torch.no_grad():  # non-zero adapters (peft starts B at zero, which would make this trivial)
        for name, p in embedder.model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.5 * torch.randn_like(p))
    embedder.model.eval()
    texts = ["a text", "another, longer text to embed"]
    adapted = embedder.embed(texts, instruction=Q)
    assert is_lora(embedder.model)
    merge_lora(embedder.model)
    assert not is_lora(embedder.model)
    # W + s BA is summed in another order than W x + s B (A x): float32 rounding, so a looser bound
    assert_vectors_close(embedder.embed(texts, instruction=Q), adapted, atol=1e-5, min_cosine=0.99999)


def test_resume_keeps_the_base_scores_and_the_best_so_far(own: dict[str, Path], tmp_path: Path) -> None:
    whole = train(_config(own, tmp_path / "whole", test_file=None))
    cut = train(_config(own, tmp_path / "cut", test_file=None), stop_after=2)
    assert cut.model_dir is None and (tmp_path / "cut" / "base_scores.json").exists()
    resumed = train(_config(own, tmp_path / "cut", test_file=None), resume=True)
    assert whole.scores is not None and resumed.scores is not None
    assert resumed.scores["dev"]["base"] == whole.scores["dev"]["base"]
    assert resumed.scores["chosen_step"] == whole.scores["chosen_step"]
    log = [json.loads(x) for x in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log if "dev" in x] == [0, 2, 4]  # step 0 is not scored again


def test_eval_rerank_chooses_the_step_by_map_over_own_candidates(
    own: dict[str, Path], tmp_path: Path
) -> None:
    from instructembed.train.cli import _standalone

    r = own["root"]
    with (r / "dev.csv").open(encoding="utf-8", newline="") as f:
        pairs = [(row["question"], row["passage"]) for row in csv.DictReader(f)]
    dev = tmp_path / "dev.jsonl"  # each question's candidates: its passage and three other dev passages
    dev.write_text(
        "".join(
            json.dumps(
                {"question": q, "passage": p, "negative": [pairs[(i + k) % len(pairs)][1] for k in (1, 2, 3)]}
            )
            + "\n"
            for i, (q, p) in enumerate(pairs)
        ),
        encoding="utf-8",
    )
    triplets = _mine(own, tmp_path / "triplets.jsonl")
    result = CliRunner().invoke(
        _standalone(),
        ["train", "--model", str(own["model"]), "--data", str(triplets), "--shape", "triplets",
         "--query-field", "question", "--positive-field", "passage",
         "--query-instruction", Q, "--document-instruction", D, "--eval", str(dev), "--test", str(dev),
         "--eval-rerank", "--eval-every", "2", "--max-steps", "2", "--batch-size", "8", "--max-length", "32",
         "--lr", "1e-3", "--out", str(tmp_path / "run"), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "run" / "summary.json").read_text())["scores"]
    assert scores["metric"] == "map_at_1000"
    assert (
        set(scores["dev"]["base"])
        == set(scores["test"]["tuned"])
        == {"map_at_1000", "mrr_at_10", "ndcg_at_10", "main"}
    )
    bad = CliRunner().invoke(
        _standalone(),
        ["train", "--model", str(own["model"]), "--data", str(triplets), "--shape", "triplets",
         "--eval", str(dev), "--eval-rerank", "--eval-corpus", str(r / "corpus.jsonl"), "--out", str(tmp_path / "x")],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert bad.exit_code != 0 and "drop --eval-corpus" in " ".join(bad.output.replace("│", " ").split())
