"""The guard `make unit-other-kernels` relies on: with the shape-keyed offset of `helpers.kernels`,
a text alone and inside a batch differ in their bits (as on a CPU whose kernels depend on shape)
while staying within the shared tolerance, and the same computation twice is still bit-identical."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.kernels import shape_jitter
from instructembed import Embedder
from instructembed.backends.torch_backend import TorchBackend
from instructembed.testing import assert_vectors_close

TEXTS = ["a short text", "a somewhat longer text about rivers and the sea", "x"]


def test_shape_jitter_breaks_only_exact_comparisons(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = Embedder.load(tiny_bert_dir)
    batch_plain = plain.embed(TEXTS)
    monkeypatch.setattr(TorchBackend, "run", shape_jitter(TorchBackend.run))
    model = Embedder.load(tiny_bert_dir)
    batch = model.embed(TEXTS)
    alone = np.stack([model.embed([t])[0] for t in TEXTS])
    np.testing.assert_array_equal(model.embed(TEXTS), batch)  # the same computation twice
    assert not np.array_equal(alone, batch)  # another batch composition: other bits
    assert_vectors_close(alone, batch)  # ... within what the project promises
    assert_vectors_close(batch, batch_plain)


def test_assert_vectors_close_says_what_differs() -> None:
    a = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    assert_vectors_close(a, a + 5e-7)
    with pytest.raises(AssertionError, match=r"max \|diff\| 2(\.\d+)?e-06 \(allowed 1e-06\)"):
        assert_vectors_close(a, a + 2e-6)
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_vectors_close(a, a[:1])
    b = a.copy()
    b[1] = [0.0, 0.0, 1.0]
    with pytest.raises(AssertionError, match=r"min cosine 0\.000000000 at row 1"):
        assert_vectors_close(a, b, atol=2.0)
