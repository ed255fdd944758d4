"""What every exported-graph backend promises, run once per runtime (each skips without its extra).

Same vectors as torch with mixed instructions in one batch, the per-row pooling mask reaching the
graph, T5 without token type ids, and `embed` taking the same inputs, raising the same errors and
returning the same type as the torch backend, for the fp32 and the int8 graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from backend_runtimes import require_runtime

from instructembed import EmbedConfig, Embedder
from instructembed.testing import MIXED_INPUTS as MIXED
from instructembed.testing import RUNTIME_ATOL, RUNTIME_MIN_COSINE, assert_vectors_close

GRAPHS = {"onnx": "tiny_export", "openvino": "tiny_ov"}  # the tiny BERT's export, by backend


@pytest.fixture(params=sorted(GRAPHS))
def backend(request: pytest.FixtureRequest) -> str:
    require_runtime(request.param)
    return str(request.param)


@pytest.fixture
def graphs(backend: str, request: pytest.FixtureRequest) -> Path:
    return Path(request.getfixturevalue(GRAPHS[backend]))


def test_fp32_matches_torch_with_mixed_instructions(tiny_bert_dir: Path, graphs: Path, backend: str) -> None:
    torch_model = Embedder.load(tiny_bert_dir)
    model = Embedder.load(graphs, backend=backend)
    expected = torch_model.embed(MIXED)
    got = model.embed(MIXED)
    assert got.dtype == np.float32 and got.shape == expected.shape == (len(MIXED), 16)
    assert_vectors_close(got, expected, atol=RUNTIME_ATOL, min_cosine=RUNTIME_MIN_COSINE)
    assert model.info()["backend"] == backend and model.info()["precision"] == "fp32"
    assert model.dimension == torch_model.dimension and model.normalized == torch_model.normalized


def test_mixed_instructions_in_one_batch_equal_one_by_one(graphs: Path, backend: str) -> None:
    """The per-row pool_mask reaches the graph: batching rows together changes nothing."""
    together = Embedder.load(graphs, backend=backend, config=EmbedConfig(token_budget=1 << 20))
    alone = Embedder.load(graphs, backend=backend, config=EmbedConfig(max_batch_size=1))
    assert_vectors_close(together.embed(MIXED), alone.embed(MIXED))
    # The same text under two instructions is two different vectors in the same batch.
    a, b = together.embed([("Represent the title: ", "same text"), ("Represent the question: ", "same text")])
    assert not np.allclose(a, b, atol=1e-4)


def test_t5_encoder_exports_and_matches(tiny_t5_dir: Path, tmp_path: Path, backend: str) -> None:
    from instructembed.export import export_model

    out = export_model(tiny_t5_dir, tmp_path / f"t5-{backend}", formats=[backend])
    model = Embedder.load(out, backend=backend)
    assert "token_type_ids" not in model.backend.input_names  # type: ignore[attr-defined]
    assert_vectors_close(
        model.embed(MIXED),
        Embedder.load(tiny_t5_dir).embed(MIXED),
        atol=RUNTIME_ATOL,
        min_cosine=RUNTIME_MIN_COSINE,
    )


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_same_inputs_same_errors_same_return_type(
    tiny_bert_dir: Path, graphs: Path, backend: str, quantize: str | None
) -> None:
    torch_model = Embedder.load(tiny_bert_dir)
    model = Embedder.load(graphs, backend=backend, quantize=quantize)
    for each in (torch_model, model):
        empty = each.embed([])
        assert empty.shape == (0, 16) and empty.dtype == np.float32
        with pytest.raises(TypeError, match="wrap it in a list"):
            each.embed("a single string")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="exactly"):
            each.embed([("a", "b", "c")])
        shared = each.embed(["x", "y"], instruction="Represent the title: ")
        pairs = each.embed([("Represent the title: ", "x"), ("Represent the title: ", "y")])
        np.testing.assert_array_equal(shared, pairs)
        assert each.embed(["x"]).dtype == np.float32
    assert model.token_counts(["hello world"]) == torch_model.token_counts(["hello world"])
    assert model.info()["dimension"] == torch_model.info()["dimension"]
    rows = model.tokenize(MIXED)
    np.testing.assert_array_equal(model.embed_tokenized(rows), model.embed(MIXED))
