"""ONNX backend parity with torch: same vectors, mixed instructions in one batch, same errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")

from instructembed import Embedder
from instructembed.backends.onnx_backend import physical_cores
from instructembed.export import export_onnx
from instructembed.testing import MIXED_INPUTS as MIXED
from instructembed.testing import RUNTIME_ATOL, RUNTIME_MIN_COSINE, assert_vectors_close, cosines


@pytest.fixture(scope="module")
def minilm_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx("all-MiniLM-L6-v2", tmp_path_factory.mktemp("onnx") / "minilm", int8=True)


def test_precision_is_reported(tiny_bert_dir: Path, tiny_export: Path) -> None:
    """(Parity with torch, mixed instructions, T5 and the shared input contract: test_backend_contract.py.)"""
    assert Embedder.load(tiny_export, backend="onnx").info()["precision"] == "fp32"
    assert Embedder.load(tiny_export, backend="onnx", quantize="int8").info()["precision"] == "int8 (dynamic)"
    assert Embedder.load(tiny_bert_dir).info()["precision"] == "fp32"
    assert Embedder.load(tiny_bert_dir, dtype="bfloat16").info()["precision"] == "bf16"


def test_int8_graph_runs_and_stays_close_on_tiny(tiny_export: Path) -> None:
    fp32 = Embedder.load(tiny_export, backend="onnx").embed(MIXED)
    int8 = Embedder.load(tiny_export, backend="onnx", quantize="int8").embed(MIXED)
    assert int8.dtype == np.float32 and int8.shape == fp32.shape
    assert cosines(int8, fp32).min() > 0.9  # random tiny weights; the real bound is tested on MiniLM


def test_cls_pooling_graph_has_no_pool_mask_input(tiny_bert_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "cls"
    shutil.copytree(tiny_bert_dir, source)
    config_path = source / "1_Pooling" / "config.json"
    config = json.loads(config_path.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    config_path.write_text(json.dumps(config))
    out = export_onnx(source, tmp_path / "cls-onnx")
    onnx_model = Embedder.load(out, backend="onnx")
    assert "pool_mask" not in onnx_model.backend.input_names  # type: ignore[attr-defined]
    assert_vectors_close(
        onnx_model.embed(MIXED),
        Embedder.load(source).embed(MIXED),
        atol=RUNTIME_ATOL,
        min_cosine=RUNTIME_MIN_COSINE,
    )


def test_threads_default_to_physical_cores_and_can_be_set(tiny_export: Path) -> None:
    assert Embedder.load(tiny_export, backend="onnx").backend.threads == physical_cores()  # type: ignore[attr-defined]
    assert Embedder.load(tiny_export, backend="onnx", threads=1).backend.threads == 1  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="threads"):
        Embedder.load(tiny_export, backend="onnx", threads=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "onnx", "quantize": "int4"}, "quantize"),
        ({"backend": "onnx", "dtype": "bfloat16"}, "not supported on the onnx backend"),
        ({"backend": "onnx", "device": "cuda"}, "CPU only"),
        ({"backend": "tensorrt"}, "available: torch, onnx, openvino"),
    ],
)
def test_load_argument_errors(tiny_export: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Embedder.load(tiny_export, **kwargs)


def test_quantize_needs_onnx_and_export_needs_onnx_backend(tiny_bert_dir: Path, tiny_export: Path) -> None:
    with pytest.raises(ValueError, match="needs backend='onnx'"):
        Embedder.load(tiny_bert_dir, quantize="int8")
    with pytest.raises(ValueError, match="backend='onnx'"):
        Embedder.load(tiny_export, backend="torch")  # an export is not a torch checkpoint
    # Without backend=, an export loads with the runtime it has a graph for.
    assert Embedder.load(tiny_export).info()["backend"] == "onnx"
    assert Embedder.load(tiny_export, quantize="int8").info()["precision"] == "int8 (dynamic)"


@pytest.mark.real_model
@pytest.mark.slow
def test_minilm_parity_fp32_and_int8(minilm: Embedder, minilm_export: Path) -> None:
    expected = minilm.embed(MIXED)
    fp32 = Embedder.load(minilm_export, backend="onnx").embed(MIXED)
    np.testing.assert_allclose(fp32, expected, atol=1e-4)
    int8 = Embedder.load(minilm_export, backend="onnx", quantize="int8").embed(MIXED)
    cos = cosines(int8, expected)
    real_text = [i for i, item in enumerate(MIXED) if isinstance(item, str) or item[1].strip()]
    assert cos[real_text].min() >= 0.99  # default coverage (FFN down projections in fp32)
    # An empty text pools one token ([SEP]), with nothing to average quantization noise out: ~0.985.
    assert cos.min() >= 0.97
