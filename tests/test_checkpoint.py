"""Loading: layouts, named defaults, hub ids offline, pickle refusal, malformed directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from instructembed import CheckpointError, Embedder, ModelNotFoundError, UnsafeWeightsError
from instructembed.checkpoint import Layout, read_spec, resolve_model_dir
from instructembed.testing import RUNTIME_ATOL, RUNTIME_MIN_COSINE, assert_vectors_close, build_checkpoint


def test_packaged_default_resolves_offline() -> None:
    root = resolve_model_dir("all-MiniLM-L6-v2")
    spec = read_spec(root)
    assert spec.layout is Layout.SENTENCE_TRANSFORMERS
    assert (spec.model_type, spec.dimension, spec.max_seq_length, spec.normalize) == ("bert", 384, 256, True)


@pytest.mark.parametrize("arch", ["bert", "t5"])
def test_instructor_layout_fixtures_load(arch: str, request: pytest.FixtureRequest) -> None:
    model = Embedder.load(request.getfixturevalue(f"tiny_{arch}_dir"))
    info = model.info()
    assert info["architecture"] == arch and info["dense"] == "32->16 (identity)" and info["normalize"]
    vectors = model.embed([("Represent the title: ", "hello")])
    assert vectors.shape == (1, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_plain_huggingface_directory_uses_mean_pooling(tiny_bert_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_bert_dir / name, plain / name)
    model = Embedder.load(plain)
    assert model.info()["layout"] == "huggingface"
    assert model.dimension == 32 and not model.normalized and model.max_seq_length == 512


def _released_layout(root: Path) -> Path:
    """hkunlp/instructor-*'s files: encoder pytorch_model.bin, 2_Dense/pytorch_model.bin, no safetensors."""
    build_checkpoint(root, "bert", pickle_weights=True)
    (root / "2_Dense" / "model.safetensors").unlink()
    assert not list(root.rglob("*.safetensors")) and (root / "2_Dense" / "pytorch_model.bin").exists()
    return root


def test_released_instructor_layout_loads_without_a_flag(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from test_embedder import PAIRS, naive_instructor

    released = _released_layout(tmp_path / "released")  # same seed, so the same tensors as tiny_bert_dir
    got = Embedder.load(released).embed(PAIRS)
    assert_vectors_close(got, Embedder.load(tiny_bert_dir).embed(PAIRS))
    assert_vectors_close(
        got, naive_instructor(released, PAIRS), atol=RUNTIME_ATOL, min_cosine=RUNTIME_MIN_COSINE
    )


class _Payload:
    """Unpickles by calling eval: creates `marker`, then stands in for the Dense weight tensor."""

    def __init__(self, marker: Path, shape: tuple[int, int]) -> None:
        self.code = f"(open({str(marker)!r}, 'w').close(), __import__('torch').zeros{shape})[1]"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (eval, (self.code,))


@pytest.mark.parametrize("where", ["2_Dense", "encoder"])
def test_code_in_a_pickle_is_refused_and_never_runs(where: str, tmp_path: Path) -> None:
    import torch

    root = _released_layout(tmp_path / "evil")
    marker = tmp_path / "payload-ran"
    if where == "2_Dense":
        target = root / "2_Dense" / "pytorch_model.bin"
        state = torch.load(target, weights_only=True)
        state["linear.weight"] = _Payload(marker, tuple(state["linear.weight"].shape))
    else:
        target = root / "pytorch_model.bin"
        state = torch.load(target, weights_only=True)
        state["pooler.dense.bias"] = _Payload(marker, (1, 32))  # any entry will do: it runs on load
    torch.save(state, target)
    for load in (lambda: Embedder.load(root), lambda: Embedder.load(root, backend="onnx")):
        with pytest.raises(UnsafeWeightsError) as info:
            load()
        message = str(info.value)
        assert "allow_pickle=True" in message and "global eval" in message and str(target) in message
        assert not marker.exists()
    if where == "2_Dense":  # the opt-in really unpickles fully: the payload runs, as the error warned
        model = Embedder.load(root, allow_pickle=True)
        assert marker.exists() and model.embed(["hello"]).shape == (1, 16)


def test_a_corrupt_bin_is_a_clear_error(tmp_path: Path) -> None:
    root = _released_layout(tmp_path / "corrupt")
    (root / "2_Dense" / "pytorch_model.bin").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="2_Dense"):
        Embedder.load(root)


def test_hub_id_offline_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError) as info:
        Embedder.load("hkunlp/instructor-large")
    message = str(info.value)
    assert "'hkunlp/instructor-large'" in message and "local model directory" in message
    assert "Traceback" not in message and len(message) < 800


def test_missing_local_path_is_reported() -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        Embedder.load("./no/such/model")


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a model directory"):
        Embedder.load(tmp_path)


def test_unknown_module_type_is_refused(tiny_bert_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "odd"
    shutil.copytree(tiny_bert_dir, root)
    modules = json.loads((root / "modules.json").read_text())
    modules.append({"idx": 9, "name": "9", "path": "9_X", "type": "my_package.FancyLayer"})
    (root / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(CheckpointError, match="FancyLayer"):
        Embedder.load(root)


def test_modules_are_read_by_type_not_position(tiny_bert_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "reordered"
    shutil.copytree(tiny_bert_dir, root)
    modules = json.loads((root / "modules.json").read_text())
    (root / "modules.json").write_text(json.dumps(list(reversed(modules))))
    assert_vectors_close(Embedder.load(root).embed(["x y"]), Embedder.load(tiny_bert_dir).embed(["x y"]))


def test_unsupported_pooling_and_bad_json(tiny_bert_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "pool"
    shutil.copytree(tiny_bert_dir, root)
    cfg = json.loads((root / "1_Pooling" / "config.json").read_text())
    cfg["pooling_mode_max_tokens"] = True  # mean + max concatenated: not supported
    (root / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="exactly one"):
        Embedder.load(root)
    (root / "modules.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        Embedder.load(root)


def test_max_seq_length_override(tiny_t5_dir: Path) -> None:
    assert Embedder.load(tiny_t5_dir, max_seq_length=512).max_seq_length == 512
    with pytest.raises(ValueError, match="at least 2"):
        Embedder.load(tiny_t5_dir, max_seq_length=1)
