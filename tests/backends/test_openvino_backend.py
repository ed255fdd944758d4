"""OpenVINO backend: parity with torch, per-row instructions, static int8, export, refusals, extras."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("openvino", reason="the [openvino] extra is not installed")
pytest.importorskip("nncf", reason="the [openvino] extra is not installed")

from instructembed import CheckpointError, Embedder
from instructembed.backends import physical_cores
from instructembed.errors import InputFileError, MissingExtraError
from instructembed.export import MANIFEST, export_model, export_onnx, read_manifest
from instructembed.export.openvino import default_calibration
from instructembed.inputs import Item
from instructembed.testing import MIXED_INPUTS as MIXED
from instructembed.testing import (
    RUNTIME_ATOL,
    RUNTIME_MIN_COSINE,
    assert_vectors_close,
    build_checkpoint,
    cosines,
    embed_in_a_process_without_torch,
)

CALIBRATION = [
    Item("Represent the sentence: ", f"sentence number {i} about topic {i % 7}") for i in range(40)
]


@pytest.fixture(scope="module")
def minilm_ov(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ov") / "minilm"
    return export_model("all-MiniLM-L6-v2", out, formats=["openvino"], int8=True)


def test_int8_and_bf16_run_and_stay_close_on_tiny(tiny_ov: Path) -> None:
    """(Parity with torch, mixed instructions, T5 and the shared input contract: test_backend_contract.py.)"""
    fp32_model = Embedder.load(tiny_ov, backend="openvino")
    assert fp32_model.backend.settings.precision == "f32"  # type: ignore[attr-defined]
    fp32 = fp32_model.embed(MIXED)
    int8_model = Embedder.load(tiny_ov, backend="openvino", quantize="int8")
    assert int8_model.backend.settings.precision == "bf16"  # type: ignore[attr-defined]
    assert int8_model.info()["precision"] in (
        "int8 (static; other ops bf16)",
        "int8 (static; other ops fp32)",
    )
    int8 = int8_model.embed(MIXED)
    assert int8.dtype == np.float32 and int8.shape == fp32.shape
    assert cosines(int8, fp32).min() > 0.9  # random tiny weights; the real bound is tested on MiniLM
    bf16 = Embedder.load(tiny_ov, backend="openvino", dtype="bfloat16").embed(MIXED)
    assert cosines(bf16, fp32).min() > 0.99
    f32_rest = Embedder.load(tiny_ov, backend="openvino", quantize="int8", dtype="float32")
    assert f32_rest.backend.settings.precision == "f32"  # type: ignore[attr-defined]
    assert cosines(f32_rest.embed(MIXED), fp32).min() > 0.9


def test_checkpoint_is_converted_once_into_the_cache(tiny_bert_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = Embedder.load(tiny_bert_dir, backend="openvino", cache_dir=cache)
    (entry,) = cache.iterdir()
    xml = entry / "openvino_model.xml"
    stamp = xml.stat().st_mtime_ns
    second = Embedder.load(tiny_bert_dir, backend="openvino", cache_dir=cache)
    assert xml.stat().st_mtime_ns == stamp  # a cache hit converts nothing
    np.testing.assert_array_equal(first.embed(MIXED), second.embed(MIXED))
    # The same cache entry takes the ONNX graphs too: one directory per fingerprint.
    Embedder.load(tiny_bert_dir, backend="onnx", cache_dir=cache)
    assert set(read_manifest(entry).files) == {"fp32", "openvino-fp32"}


def test_onnx_and_openvino_graphs_share_one_export(tiny_bert_dir: Path, tmp_path: Path) -> None:
    out = export_onnx(tiny_bert_dir, tmp_path / "both")
    export_model(tiny_bert_dir, out, formats=["openvino"])
    files = read_manifest(out).files
    assert files == {"fp32": "model.onnx", "openvino-fp32": "openvino_model.xml"}
    assert_vectors_close(
        Embedder.load(out, backend="openvino").embed(MIXED),
        Embedder.load(out, backend="onnx").embed(MIXED),
        atol=RUNTIME_ATOL,
        min_cosine=RUNTIME_MIN_COSINE,
    )
    with pytest.raises(CheckpointError, match="--openvino --int8"):
        Embedder.load(out, backend="openvino", quantize="int8")


def test_calibration_is_recorded_and_changing_it_needs_overwrite(tiny_bert_dir: Path, tmp_path: Path) -> None:
    out = export_model(tiny_bert_dir, tmp_path / "cal", formats=["openvino"], int8=True)
    assert read_manifest(out).openvino_calibration == "default"
    with pytest.raises(CheckpointError, match="calibration"):
        export_model(tiny_bert_dir, out, formats=["openvino"], int8=True, calibration=CALIBRATION)
    export_model(tiny_bert_dir, out, formats=["openvino"], int8=True, calibration=CALIBRATION, overwrite=True)
    recorded = read_manifest(out).openvino_calibration
    assert recorded.startswith("sha256:")
    # Exporting again with the same texts is a cache hit; the fp32 graph is left alone throughout.
    export_model(tiny_bert_dir, out, formats=["openvino"], int8=True, calibration=CALIBRATION)
    assert read_manifest(out).openvino_calibration == recorded
    Embedder.load(out, backend="openvino", quantize="int8").embed(MIXED)


def test_ir_from_another_export_is_refused(tiny_ov: Path, tmp_path: Path) -> None:
    other = export_model(
        build_checkpoint(tmp_path / "b", "bert", seed=9), tmp_path / "b-ov", formats=["openvino"]
    )
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_ov, mixed)
    for name in ("openvino_model.xml", "openvino_model.bin"):
        shutil.copy2(other / name, mixed / name)
    with pytest.raises(CheckpointError, match="different weights than its manifest"):
        Embedder.load(mixed, backend="openvino")


def test_stale_export_is_refused(tmp_path: Path) -> None:
    source = build_checkpoint(tmp_path / "src", "bert")
    out = export_model(source, tmp_path / "ov", formats=["openvino"])
    build_checkpoint(tmp_path / "other", "bert", seed=5)
    weights = next((tmp_path / "other").rglob("model.safetensors"))
    shutil.copy2(weights, next(source.rglob("model.safetensors")))
    with pytest.raises(CheckpointError, match="different weights than"):
        Embedder.load(out, backend="openvino")


def test_export_loads_and_embeds_without_torch(tiny_ov: Path, tmp_path: Path) -> None:
    expected = Embedder.load(tiny_ov, backend="openvino").embed(MIXED[:3])
    got = embed_in_a_process_without_torch(tiny_ov, "openvino", MIXED[:3], tmp_path)
    assert got.shape == (3, 16)
    assert_vectors_close(got, expected)


@pytest.mark.parametrize("module", ["openvino", "nncf"])
def test_missing_package_names_the_extra(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=r"instructembed\[openvino\]") as info:
        export_model(tiny_bert_dir, tmp_path / "x", formats=["openvino"], int8=True)
    assert info.value.extra == "openvino" and info.value.package == module
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "float16"}, "not supported on the openvino backend"),
        ({"device": "cuda"}, "CPU only"),
        ({"quantize": "int4"}, "quantize"),
        ({"threads": 0}, "threads"),
    ],
)
def test_load_argument_errors(tiny_ov: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Embedder.load(tiny_ov, backend="openvino", **kwargs)


def test_threads_default_to_physical_cores(tiny_ov: Path) -> None:
    assert Embedder.load(tiny_ov, backend="openvino").backend.threads == physical_cores()  # type: ignore[attr-defined]
    assert Embedder.load(tiny_ov, backend="openvino", threads=1).backend.threads == 1  # type: ignore[attr-defined]


def test_default_calibration_set_is_instructed_text() -> None:
    items = default_calibration()
    assert len(items) >= 50
    assert all(item.instruction and item.instruction.startswith("Represent the") for item in items)
    assert max(len(item.text) for item in items) > 300  # some long texts, not only sentences


def test_export_cli_openvino_with_calibration(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from instructembed.export.cli import export_command

    app = typer.Typer()
    app.command("export")(export_command)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    calibration = tmp_path / "cal.jsonl"
    calibration.write_text(
        "\n".join(json.dumps({"instruction": i.instruction, "text": i.text}) for i in CALIBRATION) + "\n"
    )
    out = tmp_path / "cli-ov"
    args = ["export", str(tiny_bert_dir), "--openvino", "--int8", "--calibration", str(calibration)]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "backend='openvino', quantize='int8'" in result.output
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["files"]) == {"openvino-fp32", "openvino-int8"}  # --openvino alone: no ONNX
    assert manifest["openvino_calibration"].startswith("sha256:")

    result = runner.invoke(
        app, ["export", str(tiny_bert_dir), "--calibration", str(calibration), "--out", "x"]
    )
    assert result.exit_code == 2 and "--openvino --int8" in result.output
    few = tmp_path / "few.txt"
    few.write_text("one text\n\ntwo texts\n")
    result = runner.invoke(app, [*args[:-1], str(few), "--out", str(tmp_path / "few-ov")])
    assert result.exit_code == 1 and "2 non-blank texts" in result.output
    assert not (tmp_path / "few-ov").exists()


def test_read_calibration_file_errors(tmp_path: Path) -> None:
    from instructembed.export.cli import read_calibration

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no instruction field"}\n')
    with pytest.raises(InputFileError, match="instruction"):
        read_calibration(bad)
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(f"text {i}" for i in range(20)))
    items = read_calibration(plain)
    assert len(items) == 20 and items[0] == Item(None, "text 0")


@pytest.mark.real_model
@pytest.mark.slow
def test_minilm_parity_fp32_bf16_int8(minilm: Embedder, minilm_ov: Path, shared_data: Path) -> None:
    from instructembed.eval.loaders import load_scifact

    docs = [f"{title}. {text}" for title, text in list(load_scifact(shared_data).corpus.values())[:48]]
    repeated = [("Represent the long document: ", " ".join([w] * n)) for w in ("the", "!") for n in (5, 300)]
    items = [("Represent the scientific document for retrieval: ", d) for d in docs] + [
        m for m in MIXED if isinstance(m, str) or m[1].strip()
    ]
    items += repeated  # unlike any calibration text: static ranges must not clip them badly
    expected = minilm.embed(items)
    assert_vectors_close(
        Embedder.load(minilm_ov, backend="openvino").embed(items),
        expected,
        atol=RUNTIME_ATOL,
        min_cosine=RUNTIME_MIN_COSINE,
    )
    bf16 = Embedder.load(minilm_ov, backend="openvino", dtype="bfloat16").embed(items)
    assert cosines(bf16, expected).min() >= 0.999
    int8 = Embedder.load(minilm_ov, backend="openvino", quantize="int8").embed(items)
    assert cosines(int8, expected).min() >= 0.99


def test_embed_cli_runs_the_openvino_backend(tiny_ov: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from instructembed.cli import app

    source = tmp_path / "in.txt"
    source.write_text("first text\n\nthird text, after a blank line", encoding="utf-8")
    out = tmp_path / "out.npy"
    args = ["embed", "-m", str(tiny_ov), "-i", str(source), "-o", str(out), "--no-progress"]
    instruction = "Represent the sentence: "
    result = CliRunner().invoke(
        app, [*args, "--backend", "openvino", "--quantize", "int8", "--instruction", instruction]
    )
    assert result.exit_code == 0, result.output
    expected = Embedder.load(tiny_ov, backend="openvino", quantize="int8").embed(
        ["first text", "", "third text, after a blank line"], instruction=instruction
    )
    assert_vectors_close(np.load(out), expected)
    # Without --backend, an OpenVINO-only export runs on OpenVINO (not torch, which it cannot).
    result = CliRunner().invoke(app, [*args, "--overwrite", "--instruction", instruction])
    assert result.exit_code == 0, result.output
    fp32 = Embedder.load(tiny_ov).embed(
        ["first text", "", "third text, after a blank line"], instruction=instruction
    )
    assert_vectors_close(np.load(out), fp32)


def test_info_cli_on_an_export_picks_the_runtime_it_has(
    tiny_ov: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from instructembed.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["info", str(tiny_ov), "--quantize", "int8", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["backend"] == "openvino" and info["precision"].startswith("int8 (static")
    both = export_onnx(tiny_bert_dir, tmp_path / "both")
    result = runner.invoke(app, ["info", str(both), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["backend"] == "onnx"
    result = runner.invoke(app, ["info", str(both), "--quantize", "int8"])
    assert result.exit_code != 0 and "has no int8 graph" in result.output
