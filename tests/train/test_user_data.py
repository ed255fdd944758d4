"""The shapes users have (pairs, triplets, scored, labelled; CSV/TSV/JSONL/parquet), their errors,
the datasets TOML, CoSENT and negative selection against naive loops."""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from instructembed.errors import InputFileError
from instructembed.train.config import Shape
from instructembed.train.data import TaskBatchSampler, read_medi
from instructembed.train.loss import cosent_loss
from instructembed.train.mining import MiningOptions, Sampling, select_negatives
from instructembed.train.sources import read_datasets_toml
from instructembed.train.user_data import DatasetSpec, Fields, TrainExample, read_dataset, read_pairs


def _csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


PAIRS = [[f"question {i}", f"passage {i}"] for i in range(6)] + [["question 0", "passage 0b"]]


def test_pairs_with_column_mapping_and_instructions(tmp_path: Path) -> None:
    path = _csv(tmp_path / "pairs.csv", ["question", "passage"], PAIRS)
    spec = DatasetSpec(
        path,
        Shape.PAIRS,
        Fields(query="question", positive="passage"),
        "Represent the q: ",
        "Represent the p: ",
    )
    data = read_dataset(spec, seed=3)
    assert len(data.examples) == len(PAIRS)
    first = data.examples[0]
    assert isinstance(first, TrainExample)
    assert (first.query.instruction, first.query.text) == ("Represent the q: ", "question 0")
    assert (first.pos.instruction, first.pos.text) == ("Represent the p: ", "passage 0")
    assert first.task == "pairs"
    for e in data.examples:  # an in-batch negative is another row's positive, never this query's own
        assert isinstance(e, TrainExample)
        assert e.neg.text.startswith("passage")
        assert e.neg.text not in {p for q, p in PAIRS if q == e.query.text}
    assert read_pairs(spec) == [(q, p) for q, p in PAIRS]


def test_per_row_instruction_fields_win(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "t.jsonl",
        [
            {"query": f"q{i}", "positive": f"p{i}", "negative": [f"n{i}a", f"n{i}b"], "qi": f"row {i}: "}
            for i in range(4)
        ],
    )
    spec = DatasetSpec(path, Shape.TRIPLETS, Fields(query_instruction="qi"), "unused: ", "doc: ")
    data = read_dataset(spec)
    e = data.examples[2]
    assert isinstance(e, TrainExample)
    assert e.query.instruction == "row 2: " and e.pos.instruction == "doc: "
    assert [n.text for n in e.negatives] == ["n2a", "n2b"]
    # each epoch draws one of the negatives, deterministically; over epochs both are used
    draws = [e.negative_for(epoch, 42, 2).text for epoch in range(20)]
    assert draws == [e.negative_for(epoch, 42, 2).text for epoch in range(20)]
    assert set(draws) == {"n2a", "n2b"}


def test_triplets_in_several_negative_columns_tsv(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "t.tsv",
        ["q", "p", "n1", "n2"],
        [[f"q{i}", f"p{i}", f"x{i}", f"y{i}"] for i in range(3)],
        "\t",
    )
    data = read_dataset(
        DatasetSpec(path, Shape.TRIPLETS, Fields(query="q", positive="p", negatives=("n1", "n2")))
    )
    e = data.examples[1]
    assert isinstance(e, TrainExample)
    assert [n.text for n in e.negatives] == ["x1", "y1"]


def test_parquet_pairs(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"query": [q for q, _ in PAIRS], "positive": [p for _, p in PAIRS]}), path)
    assert len(read_dataset(DatasetSpec(path, Shape.PAIRS)).examples) == len(PAIRS)


@pytest.mark.parametrize(
    ("header", "rows", "fields", "message"),
    [
        (["q", "passage"], [["a", "b"]], Fields(), r"pairs.csv:2: no field 'query' .*--query-field"),
        (
            ["query", "positive"],
            [["a", "b"], ["c", "  "]],
            Fields(),
            r"pairs.csv:3: field 'positive' is empty",
        ),
    ],
)
def test_bad_rows_name_the_file_line_and_the_fix(
    tmp_path: Path, header: list[str], rows: list[list[str]], fields: Fields, message: str
) -> None:
    path = _csv(tmp_path / "pairs.csv", header, rows)
    with pytest.raises(InputFileError, match=message):
        read_dataset(DatasetSpec(path, Shape.PAIRS, fields))


def test_skip_bad_counts_and_keeps_the_good_rows(tmp_path: Path) -> None:
    rows = [*PAIRS, ["", "empty query"]]
    path = _csv(tmp_path / "pairs.csv", ["query", "positive"], rows)
    with pytest.raises(InputFileError, match="pass --skip-bad"):
        read_dataset(DatasetSpec(path, Shape.PAIRS))
    data = read_dataset(DatasetSpec(path, Shape.PAIRS), skip_bad=True)
    assert (len(data.examples), data.n_skipped) == (len(PAIRS), 1)


def test_scored_pairs_and_their_errors(tmp_path: Path) -> None:
    path = _csv(tmp_path / "sts.csv", ["s1", "s2", "gold"], [["a b", "a c", "4.5"], ["a", "z", "0.5"]])
    data = read_dataset(
        DatasetSpec(path, Shape.SCORED, Fields(query="s1", positive="s2", score="gold"), "sim: ")
    )
    assert data.scored and [e.score for e in data.examples] == [4.5, 0.5]  # type: ignore[union-attr]
    bad = _csv(tmp_path / "bad.csv", ["text1", "text2", "score"], [["a", "b", "high"]])
    with pytest.raises(InputFileError, match=r"bad.csv:2: score 'high' .* not a number"):
        read_dataset(DatasetSpec(bad, Shape.SCORED))


def test_labelled_texts_pair_by_nearest_same_label(tmp_path: Path) -> None:
    texts = {"cat one": "animal", "cat two": "animal", "car one": "vehicle", "car two": "vehicle"}
    path = _csv(tmp_path / "lab.csv", ["text", "label"], [[t, lab] for t, lab in texts.items()])
    vectors = {"cat one": [1, 0.1], "cat two": [1, 0.2], "car one": [0.1, 1], "car two": [0.2, 1]}

    def embed(batch: list[str]) -> np.ndarray:
        v = np.array([vectors[t] for t in batch], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    data = read_dataset(DatasetSpec(path, Shape.LABELLED, query_instruction="topic: "), embed=embed)
    assert data.examples
    for e in data.examples:
        assert isinstance(e, TrainExample)
        assert texts[e.pos.text] == texts[e.query.text] != texts[e.neg.text]
        assert e.query.instruction == "topic: "
    one_label = _csv(tmp_path / "one.csv", ["text", "label"], [["a", "x"], ["b", "x"]])
    with pytest.raises(InputFileError, match="at least two labels"):
        read_dataset(DatasetSpec(one_label, Shape.LABELLED), embed=embed)


def test_medi_files_read_exactly_as_before(tmp_path: Path) -> None:
    rows = [
        {"query": ["qi: ", f"q{i}"], "pos": ["pi: ", f"p{i}"], "neg": ["pi: ", f"n{i}"], "task_name": "t"}
        for i in range(3)
    ]
    path = _jsonl(tmp_path / "medi.jsonl", rows)  # type: ignore[arg-type]
    assert read_dataset(DatasetSpec(path)).examples == read_medi(path).examples


def test_datasets_toml_weights_and_errors(tmp_path: Path) -> None:
    _csv(tmp_path / "a.csv", ["query", "positive"], PAIRS)
    _csv(tmp_path / "b.csv", ["q", "p"], PAIRS)
    toml = tmp_path / "data.toml"
    toml.write_text(
        '[[dataset]]\npath = "a.csv"\nshape = "pairs"\nweight = 2.0\nquery_instruction = "Q: "\n'
        '[[dataset]]\npath = "b.csv"\nshape = "pairs"\nname = "bee"\nquery_field = "q"\npositive_field = "p"\n',
        encoding="utf-8",
    )
    specs = read_datasets_toml(toml)
    assert [(s.task, s.weight, s.query_instruction) for s in specs] == [("a", 2.0, "Q: "), ("bee", 1.0, "")]
    assert specs[0].path == tmp_path / "a.csv"
    toml.write_text('[[dataset]]\npath = "a.csv"\nshap = "pairs"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown key.*shap"):
        read_datasets_toml(toml)
    toml.write_text('[[dataset]]\npath = "a.csv"\nshape = "quads"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="shape 'quads' is not one of"):
        read_datasets_toml(toml)


def test_sampler_weights_scale_a_tasks_batches_and_keep_one_task_per_batch() -> None:
    tasks = ["a"] * 40 + ["b"] * 40
    plain = TaskBatchSampler(tasks, 8, seed=1)
    weighted = TaskBatchSampler(tasks, 8, seed=1, weights={"a": 2.0, "b": 0.4})
    assert plain.n_batches == {"a": 5, "b": 5}
    assert weighted.n_batches == {"a": 10, "b": 2}
    plan = weighted.epoch_plan(0)
    assert len(plan) == weighted.batches_per_epoch == 12
    for task, indices in plan:
        assert {tasks[i] for i in indices} == {task}
    same = TaskBatchSampler(tasks, 8, seed=1, weights={"a": 1.0}).epoch_plan(3)  # weight 1 = as before
    assert [(t, i.tolist()) for t, i in same] == [(t, i.tolist()) for t, i in plain.epoch_plan(3)]


def _cosent_naive(a: torch.Tensor, b: torch.Tensor, scores: list[float], t: float) -> float:
    cos = [float(torch.nn.functional.cosine_similarity(a[i], b[i], dim=0)) for i in range(len(scores))]
    total = 1.0
    for i, j in itertools.product(range(len(scores)), repeat=2):
        if scores[i] > scores[j]:
            total += math.exp((cos[j] - cos[i]) / t)
    return math.log(total)


@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_cosent_matches_a_naive_double_loop(temperature: float) -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    scores = [0.0, 1.0, 1.0, 2.5, 4.0, 5.0, 3.0]  # with a tie: tied pairs add nothing
    got = float(cosent_loss(a, b, torch.tensor(scores), temperature))
    assert got == pytest.approx(_cosent_naive(a, b, scores, temperature), rel=1e-5)
    assert float(cosent_loss(a, b, torch.ones(7), temperature)) == pytest.approx(0.0)  # no ordered pair
    # ordering the cosines as the scores lowers the loss
    perfect = torch.tensor(scores)[:, None] * torch.ones(1, 5) + 0.01 * a
    assert float(cosent_loss(perfect, torch.ones(7, 5), torch.tensor(scores), temperature)) < got


def _select_naive(
    scores: np.ndarray, rows: np.ndarray, pos: float, excluded: set[int], o: MiningOptions
) -> list[int]:
    order = sorted(range(len(rows)), key=lambda i: -scores[i])
    kept = [i for i in order if rows[i] >= 0 and rows[i] not in excluded]
    out = []
    for rank, i in enumerate(kept):
        s = scores[i]
        ok = o.range_min <= rank < o.range_max
        ok = ok and (o.max_score is None or s <= o.max_score) and (o.min_score is None or s >= o.min_score)
        ok = ok and (o.absolute_margin is None or s <= pos - o.absolute_margin)
        ok = ok and (o.relative_margin is None or s <= pos * (1 - o.relative_margin))
        if ok:
            out.append(int(rows[i]))
    return out[: o.num_negatives]


def test_select_negatives_matches_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    for trial in range(200):
        k = int(rng.integers(1, 30))
        scores = np.sort(rng.uniform(-0.2, 1.0, k))[::-1].astype(np.float32)
        rows = rng.permutation(100)[:k]
        rows[rng.random(k) < 0.05] = -1
        excluded = {int(r) for r in rows[rng.random(k) < 0.2]}
        lo = int(rng.integers(0, 5))
        options = MiningOptions(
            num_negatives=int(rng.integers(1, 6)),
            range_min=lo,
            range_max=lo + int(rng.integers(1, 25)),
            max_score=float(rng.uniform(0.5, 1.0)) if trial % 2 else None,
            min_score=float(rng.uniform(-0.2, 0.3)) if trial % 3 == 0 else None,
            absolute_margin=float(rng.uniform(0, 0.2)) if trial % 4 == 0 else None,
            relative_margin=float(rng.uniform(0, 0.2)) if trial % 5 == 0 else None,
        )
        pos = float(rng.uniform(0.3, 1.0))
        got = select_negatives(scores, rows, pos, excluded, options, np.random.default_rng(1))
        assert got == _select_naive(scores, rows, pos, excluded, options), trial


def test_random_sampling_is_seeded_and_stays_among_the_eligible() -> None:
    scores = np.linspace(0.9, 0.1, 20).astype(np.float32)
    rows = np.arange(20)
    options = MiningOptions(num_negatives=4, range_max=20, max_score=0.8, sampling=Sampling.RANDOM)
    a = select_negatives(scores, rows, 0.95, set(), options, np.random.default_rng([7, 3]))
    b = select_negatives(scores, rows, 0.95, set(), options, np.random.default_rng([7, 3]))
    assert a == b and len(a) == 4 and all(scores[r] <= 0.8 for r in a)
    top = select_negatives(scores, rows, 0.95, set(), MiningOptions(num_negatives=4, max_score=0.8), None)  # type: ignore[arg-type]
    assert top == [3, 4, 5, 6]  # scores 0.90, 0.86, 0.82 are above 0.8


class _TextVectors:
    """A fixed random vector per distinct text (instructions ignored): an encoder with no ties."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(3)
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None) -> np.ndarray:
        texts = [x if isinstance(x, str) else x[1] for x in inputs]
        return np.stack([self.vectors.setdefault(t, self.rng.standard_normal(16)) for t in texts])


def _map_naive(encoder: _TextVectors, candidates: dict[str, dict[str, int]]) -> float:
    """Mean over queries of average precision over the query's own candidates, ranked by cosine."""
    aps = []
    for query, labels in candidates.items():
        q = encoder.embed([query])[0]
        cos = {t: float(v @ q / np.linalg.norm(v) / np.linalg.norm(q)) for t, v in zip(
            labels, encoder.embed(list(labels)), strict=True)}  # fmt: skip
        ranked = sorted(labels, key=lambda t: -cos[t])
        hits, precisions = 0, []
        for rank, text in enumerate(ranked, start=1):
            if labels[text]:
                hits += 1
                precisions.append(hits / rank)
        aps.append(sum(precisions) / sum(labels.values()))
    return 100 * sum(aps) / len(aps)


def test_rerank_dev_scores_map_over_each_querys_own_candidates(tmp_path: Path) -> None:
    from instructembed.eval.encoder import CachingEncoder
    from instructembed.train.user_eval import load_evaluator

    rows: list[dict[str, object]] = [
        {"q": "q0", "a": "a0", "neg": ["n0", "n1", "a1", "shared"]},  # a1 is q0's other positive
        {"q": "q0", "a": "a1", "neg": ["n0", "n2"]},
        {"q": "q1", "a": "b0", "neg": ["m0", "m1", "m2", "shared"]},
        {"q": "q2", "a": "c0", "neg": ["k0"]},
    ]
    path = _jsonl(tmp_path / "dev.jsonl", rows)
    spec = DatasetSpec(
        path, Shape.TRIPLETS, Fields(query="q", positive="a", negatives=("neg",)), "Q: ", "D: "
    )
    evaluator = load_evaluator(spec, None, rerank=True)
    encoder = _TextVectors()
    got = evaluator.score(CachingEncoder(encoder))
    want = {
        "q0": {"a0": 1, "a1": 1, "n0": 0, "n1": 0, "shared": 0, "n2": 0},
        "q1": {"b0": 1, "m0": 0, "m1": 0, "m2": 0, "shared": 0},
        "q2": {"c0": 1, "k0": 0},
    }
    assert evaluator.main == "map_at_1000" and got["main"] == got["map_at_1000"]
    assert got["map_at_1000"] == pytest.approx(_map_naive(encoder, want), abs=0.01)
    with pytest.raises(ValueError, match="no corpus"):
        load_evaluator(spec, path, rerank=True)
