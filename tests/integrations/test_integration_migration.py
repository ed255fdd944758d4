"""What docs/migrating.md says about sentence-transformers `prompt=`, measured: with its default
Pooling it embeds prompt + text as one plain string; with `include_prompt=False` it gives
INSTRUCTOR's vectors, which are `Embedder.embed`'s for (instruction, text) pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instructembed import Embedder
from instructembed.testing import assert_vectors_close

PROMPT = "Represent the question for retrieving supporting documents: "
TEXTS = ["Who created Python?", "Which tower was finished in Paris in 1889?", "  spaced text  "]


@pytest.mark.parametrize("which", ["minilm", "tiny"])
def test_sentence_transformers_prompts_versus_instructions(
    which: str, minilm: Embedder, tiny_bert_dir: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    path = str(minilm.spec.root) if which == "minilm" else str(tiny_bert_dir)
    ours = minilm if which == "minilm" else Embedder.load(path)
    st = SentenceTransformer(path, device="cpu")
    pairs = ours.embed(TEXTS, instruction=PROMPT)

    default = st.encode(TEXTS, prompt=PROMPT)
    assert_vectors_close(default, ours.embed([PROMPT + t for t in TEXTS]))
    assert np.abs(default - pairs).max() > 1e-2  # not INSTRUCTOR's vectors

    st[1].include_prompt = False
    assert_vectors_close(st.encode(TEXTS, prompt=PROMPT), pairs)
