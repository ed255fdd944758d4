"""Tiny exports shared by the backend tests; each skips when its runtime's extra is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from backend_runtimes import require_runtime


@pytest.fixture(scope="session")
def tiny_export(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT as ONNX fp32 + dynamic int8."""
    require_runtime("onnx")
    from instructembed.export import export_onnx

    return export_onnx(tiny_bert_dir, tmp_path_factory.mktemp("onnx") / "tiny-bert", int8=True)


@pytest.fixture(scope="session")
def tiny_ov(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT as OpenVINO fp32 + static int8 (packaged calibration set)."""
    require_runtime("openvino")
    from instructembed.export import export_model

    return export_model(
        tiny_bert_dir, tmp_path_factory.mktemp("ov") / "tiny-bert", formats=["openvino"], int8=True
    )
