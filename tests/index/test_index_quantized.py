"""Compressed search structures (`--vectors int8|binary`): exact float rescoring against a loop, and
the CLI option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from index_helpers import DOC, QUERY, corpus
from typer.testing import CliRunner

from instructembed.cli import app
from instructembed.index import Index
from instructembed.index.ann import AnnKind, AnnSettings, ann_search, build_ann, load_ann, rescore


def test_rescore_matches_a_loop(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((50, 6)).astype(np.float32)
    path = tmp_path / "v.f32"
    vectors.tofile(path)
    mapped = np.memmap(path, dtype="<f4", mode="r", shape=(50, 6))
    queries = rng.standard_normal((3, 6)).astype(np.float32)
    candidates = np.array([[4, 9, 1, 30, -1], [0, 49, 7, -1, -1], [2, 2, 5, 8, 13]])
    scores, rows = rescore(mapped, queries, candidates, 3)
    for q in range(3):
        pairs = sorted(
            ((float(vectors[c] @ queries[q]), int(c)) for c in candidates[q] if c >= 0), key=lambda t: -t[0]
        )[:3]
        assert [r for _, r in pairs] == rows[q].tolist()
        np.testing.assert_allclose(scores[q], [s for s, _ in pairs], rtol=1e-5)
    _, few = rescore(mapped, queries, candidates[:, :2], 10)  # k larger than the candidates
    assert few.shape == (3, 2)
    empty_scores, empty_rows = rescore(mapped, queries, np.empty((3, 0), np.int64), 10)
    assert empty_scores.shape == empty_rows.shape == (3, 0)


@pytest.mark.parametrize("kind", [AnnKind.INT8, AnnKind.BINARY])
def test_codes_and_rescoring_find_the_exact_top10(tmp_path: Path, kind: AnnKind) -> None:
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((100, 384)).astype(np.float32)  # 384-d, as all-MiniLM-L6-v2
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, 100, 3000)] + 0.045 * rng.standard_normal((3000, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    corpus_vectors, queries = x[:2900], x[2900:]
    settings = AnnSettings(kind=kind)
    build_ann(corpus_vectors, settings, tmp_path / "ann.faiss")
    index = load_ann(tmp_path / "ann.faiss", 2900, kind)
    _, candidates = ann_search(index, settings, queries, 10 * settings.rescore)
    _, found = rescore(corpus_vectors, queries, candidates, 10)
    truth = np.argsort(-(queries @ corpus_vectors.T), axis=1)[:, :10]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95, recall


def test_cli_build_with_binary_vectors_and_refusals(tiny_bert_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in corpus(30)), encoding="utf-8")
    base = ["index", "build", "-i", str(source), "-m", str(tiny_bert_dir), "--max-seq-length", "32",
            "--instruction", DOC, "--query-instruction", QUERY, "--chunk-overlap", "4", "--no-progress"]  # fmt: skip
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "ix"), "--vectors", "binary"])
    assert result.exit_code == 0, result.output
    with Index.open(tmp_path / "ix") as index:
        assert index.info()["approximate"]["settings"]["kind"] == "binary"
        hits = index.search(["a question"], k=5)
        exact = index.search(["a question"], k=5, exact=True)
        assert [h.id for h in hits[0]] == [h.id for h in exact[0]]  # 30 documents: every one rescored
    bad = runner.invoke(app, [*base, "-o", str(tmp_path / "ix2"), "--vectors", "float16"])
    assert bad.exit_code != 0 and "float32, int8 or binary" in bad.output
    both = runner.invoke(
        app, [*base, "-o", str(tmp_path / "ix3"), "--vectors", "int8", "--approximate", "hnsw"]
    )
    assert both.exit_code != 0 and "choose one" in both.output
    assert not (tmp_path / "ix2").exists() and not (tmp_path / "ix3").exists()


def test_cli_rescore_factor_is_stored_and_validated(tiny_bert_dir: Path, tmp_path: Path) -> None:
    # at 10M synthetic vectors the default 40 x k gives recall@10 0.775 and 250 x k 1.000 (docs/index.md):
    # the factor has to be reachable from the commands, and is what the stored settings say
    runner = CliRunner()
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in corpus(12)), encoding="utf-8")
    base = ["index", "build", "-i", str(source), "-m", str(tiny_bert_dir), "--max-seq-length", "32",
            "--instruction", DOC, "--query-instruction", QUERY, "--chunk-overlap", "4", "--no-progress",
            "--vectors", "binary"]  # fmt: skip
    assert runner.invoke(app, [*base, "-o", str(tmp_path / "default")]).exit_code == 0
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "ix"), "--rescore", "250"])
    assert result.exit_code == 0, result.output
    with Index.open(tmp_path / "default") as index:
        assert index.info()["approximate"]["settings"]["rescore"] == AnnSettings().rescore == 40
    with Index.open(tmp_path / "ix") as index:
        assert index.info()["approximate"]["settings"]["rescore"] == 250
        assert [h.id for h in index.search(["a question"], k=3)[0]] == [
            h.id for h in index.search(["a question"], k=3, exact=True)[0]
        ]
    rebuilt = runner.invoke(
        app, ["index", "rebuild", str(tmp_path / "ix"), "--approximate", "int8", "--rescore", "7"]
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    with Index.open(tmp_path / "ix") as index:
        settings = index.info()["approximate"]["settings"]
        assert (settings["kind"], settings["rescore"]) == ("int8", 7)
    zero = runner.invoke(app, [*base, "-o", str(tmp_path / "ix0"), "--rescore", "0"])
    assert zero.exit_code != 0 and "--rescore" in zero.output
    assert not (tmp_path / "ix0").exists()


def test_read_rows_from_a_memmap_equals_indexing(tmp_path: Path) -> None:
    from instructembed.index.ann import read_rows

    vectors = np.random.default_rng(3).standard_normal((40, 5)).astype(np.float32)
    (tmp_path / "v.f32").write_bytes(b"\0" * 20 + vectors.tobytes())  # an offset, as np.memmap allows
    mapped = np.memmap(tmp_path / "v.f32", dtype="<f4", mode="r", offset=20, shape=(40, 5))
    rows = np.array([0, 3, 17, 39])
    np.testing.assert_array_equal(read_rows(mapped, rows), vectors[rows])
    np.testing.assert_array_equal(read_rows(vectors, rows), vectors[rows])  # a plain array: indexing
    assert read_rows(mapped, np.array([], dtype=np.int64)).shape == (0, 5)
