"""Export -> load round trip, fingerprint cache, stale-export refusal, no torch at inference, CLI."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")

from instructembed import CheckpointError, Embedder
from instructembed.errors import MissingExtraError
from instructembed.export import MANIFEST, export_onnx, fingerprint, read_manifest
from instructembed.testing import (
    RUNTIME_ATOL,
    RUNTIME_MIN_COSINE,
    assert_vectors_close,
    build_checkpoint,
    embed_in_a_process_without_torch,
)

ITEMS = [
    ("Represent the Science title: ", "3D ActionSLAM"),
    "plain text",
    ("Represent the question: ", "why?"),
]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private tiny checkpoint (tests below change its weights)."""
    return build_checkpoint(tmp_path_factory.mktemp("src") / "tiny", "bert", seed=3)


@pytest.fixture(scope="module")
def exported(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(source, tmp_path_factory.mktemp("out") / "export", int8=True)


def test_round_trip_manifest_and_vectors(source: Path, exported: Path) -> None:
    manifest = read_manifest(exported)
    assert manifest.fingerprint == fingerprint(source)
    assert manifest.files == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    assert (exported / "tokenizer.json").is_file() and (exported / "config.json").is_file()
    assert manifest.pooling == "mean" and manifest.normalize and manifest.dimension == 16
    loaded = Embedder.load(exported, backend="onnx")
    assert_vectors_close(
        loaded.embed(ITEMS),
        Embedder.load(source).embed(ITEMS),
        atol=RUNTIME_ATOL,
        min_cosine=RUNTIME_MIN_COSINE,
    )
    assert loaded.max_seq_length == 128
    assert Embedder.load(exported, backend="onnx", max_seq_length=16).max_seq_length == 16


def test_export_is_cached_by_fingerprint(source: Path, tmp_path: Path) -> None:
    out = export_onnx(source, tmp_path / "e")
    assert read_manifest(out).files == {"fp32": "model.onnx"}
    stamp = (out / "model.onnx").stat().st_mtime_ns
    assert export_onnx(source, out) == out  # same weights: nothing is redone
    assert (out / "model.onnx").stat().st_mtime_ns == stamp
    export_onnx(source, out, int8=True)  # adds only the missing int8 graph
    assert read_manifest(out).files == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    with pytest.raises(CheckpointError, match="no int8 graph"):
        Embedder.load(export_onnx(source, tmp_path / "fp32-only"), backend="onnx", quantize="int8")


def test_load_checkpoint_exports_once_into_cache_dir(source: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = Embedder.load(source, backend="onnx", quantize="int8", cache_dir=cache)
    (entry,) = list(cache.iterdir())
    assert entry.name == fingerprint(source)[:24]
    stamp = (entry / "model.int8.onnx").stat().st_mtime_ns
    second = Embedder.load(source, backend="onnx", quantize="int8", cache_dir=cache)
    assert (entry / "model.int8.onnx").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(first.embed(ITEMS), second.embed(ITEMS))


def test_stale_export_is_refused(tmp_path: Path) -> None:
    src = build_checkpoint(tmp_path / "model", "bert", seed=5)
    out = export_onnx(src, tmp_path / "export")
    build_checkpoint(tmp_path / "retrained", "bert", seed=6)  # "fine-tuned" weights, same layout
    shutil.copy2(tmp_path / "retrained" / "model.safetensors", src / "model.safetensors")
    with pytest.raises(CheckpointError, match="exported from different weights"):
        Embedder.load(out, backend="onnx")
    with pytest.raises(CheckpointError, match="--overwrite"):
        export_onnx(src, out)
    export_onnx(src, out, overwrite=True)
    assert_vectors_close(
        Embedder.load(out, backend="onnx").embed(ITEMS),
        Embedder.load(src).embed(ITEMS),
        atol=RUNTIME_ATOL,
        min_cosine=RUNTIME_MIN_COSINE,
    )
    # A cache keyed by fingerprint never serves the old export.
    cache = tmp_path / "cache"
    Embedder.load(src, backend="onnx", cache_dir=cache)
    shutil.copy2(tmp_path / "model" / "2_Dense" / "model.safetensors", tmp_path / "dense.bak")
    build_checkpoint(tmp_path / "other", "bert", seed=7)
    shutil.copy2(tmp_path / "other" / "model.safetensors", src / "model.safetensors")
    Embedder.load(src, backend="onnx", cache_dir=cache)
    assert len(list(cache.iterdir())) == 2


def test_model_file_from_another_export_is_refused(exported: Path, tmp_path: Path) -> None:
    other = export_onnx(build_checkpoint(tmp_path / "b", "bert", seed=9), tmp_path / "b-onnx")
    mixed = tmp_path / "mixed"
    shutil.copytree(exported, mixed)
    shutil.copy2(other / "model.onnx", mixed / "model.onnx")
    with pytest.raises(CheckpointError, match="different weights than its manifest"):
        Embedder.load(mixed, backend="onnx")


def test_not_an_export_and_bad_out_dir(source: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an export"):
        export_onnx(source, tmp_path / "busy")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MANIFEST).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        Embedder.load(tmp_path / "broken", backend="onnx")


def test_export_loads_and_embeds_without_torch(exported: Path, tmp_path: Path) -> None:
    """The [onnx] extra alone: `import torch` fails in the child, and nothing may need it."""
    expected = Embedder.load(exported, backend="onnx").embed(ITEMS)
    got = embed_in_a_process_without_torch(exported, "onnx", ITEMS, tmp_path)
    assert got.shape == (3, 16)
    assert_vectors_close(got, expected)


def test_missing_onnxruntime_names_the_extra(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"instructembed\[onnx\]") as info:
        Embedder.load(exported, backend="onnx")
    assert info.value.extra == "onnx" and info.value.package == "onnxruntime"


def test_export_cli(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from instructembed.export.cli import export_command

    app = typer.Typer()
    app.command("export")(export_command)
    app.command("noop")(lambda: None)  # two commands, so "export" is a subcommand as in the real CLI
    runner = CliRunner()
    out = tmp_path / "cli-export"
    result = runner.invoke(app, ["export", str(source), "--onnx", "--int8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "quantize='int8'" in result.output
    assert json.loads((out / MANIFEST).read_text())["files"]["int8"] == "model.int8.onnx"
    # The environment twin, and a clear error for an occupied directory.
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    monkeypatch.setenv("INSTRUCTEMBED_EXPORT_OUT", str(tmp_path / "busy"))
    result = runner.invoke(app, ["export", str(source)])
    assert result.exit_code == 1
    assert "not an export" in result.output


def test_int8_coverage_is_recorded_and_switching_needs_overwrite(source: Path, tmp_path: Path) -> None:
    out = export_onnx(source, tmp_path / "cov", int8=True)
    manifest = read_manifest(out)
    assert manifest.int8_coverage == "no-ffn-down"  # the default
    assert len(manifest.int8_excluded) == 2  # one FFN down projection per layer of the tiny BERT
    assert all(name.endswith("output/dense/MatMul") for name in manifest.int8_excluded)
    with pytest.raises(CheckpointError, match="coverage"):
        export_onnx(source, out, int8=True, int8_coverage="all")
    export_onnx(source, out, int8=True, int8_coverage="all", overwrite=True)
    assert read_manifest(out).int8_coverage == "all" and read_manifest(out).int8_excluded == []
    Embedder.load(out, backend="onnx", quantize="int8").embed(ITEMS)
