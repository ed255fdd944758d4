"""ONNX and OpenVINO graphs of the encoder families beyond BERT (XLM-R, ModernBERT, MPNet), with the
same parity checks as BERT's: the export's vectors = torch's for every declared prompt (and none),
the prompts and padding travel in the manifest; decoders and OpenVINO-ModernBERT are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from backend_runtimes import require_runtime

from instructembed import CheckpointError, Embedder
from instructembed.export import export_model, read_manifest
from instructembed.testing import assert_vectors_close
from instructembed.testing_families import FAMILY_RECIPES, FAMILY_TEXTS, build_family_checkpoint

pytestmark = pytest.mark.slow  # a tiny checkpoint per family, each against sentence-transformers or an export

RUNS = [
    ("xlm-roberta", "onnx"),
    ("xlm-roberta", "openvino"),
    ("modernbert", "onnx"),
    ("mpnet", "onnx"),
    ("mpnet", "openvino"),
]


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("family-src")
    return {
        name: build_family_checkpoint(base / name, name)
        for name in ("xlm-roberta", "modernbert", "mpnet", "qwen3")
    }


@pytest.mark.parametrize("name,backend", RUNS)
def test_export_matches_torch_for_every_declared_prompt(
    name: str, backend: str, family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    require_runtime(backend)
    source = family_dirs[name]
    out = export_model(source, tmp_path / f"{name}-{backend}", formats=[backend])
    manifest = read_manifest(out)
    assert manifest.prompts == FAMILY_RECIPES[name].prompts
    assert manifest.include_prompt is FAMILY_RECIPES[name].include_prompt
    exported, torch_model = Embedder.load(out, backend=backend), Embedder.load(source)
    assert exported.info()["prompts"] == torch_model.info()["prompts"]
    for prompt_name in [None, *FAMILY_RECIPES[name].prompts]:
        assert_vectors_close(
            exported.embed(FAMILY_TEXTS, prompt_name=prompt_name),
            torch_model.embed(FAMILY_TEXTS, prompt_name=prompt_name),
            what=f"{name} {backend} prompt_name={prompt_name!r}",
        )


def test_decoders_and_openvino_modernbert_are_refused(family_dirs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="Qwen3 decoder; decoders run on the torch backend only"):
        export_model(family_dirs["qwen3"], tmp_path / "q", formats=["onnx"])
    with pytest.raises(CheckpointError, match=r"ModernBERT on OpenVINO is refused .*NaN"):
        export_model(family_dirs["modernbert"], tmp_path / "m", formats=["openvino"])
