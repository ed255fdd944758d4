"""An index over a decoder (Qwen3-style: left padding, appended <|endoftext|>, a declared query
prompt) and a multilingual encoder with a 48-token window: with no instructions given it records the
model's declared prompts, chunks long documents into windows that fit with the prompt and end token,
and its search equals a brute-force ranking over `embed_query` vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instructembed import Embedder
from instructembed.chunking import ChunkSettings, chunk_documents
from instructembed.index import Index
from instructembed.inputs import Item
from instructembed.testing_families import FAMILY_RECIPES, FAMILY_TEXTS, build_family_checkpoint

pytestmark = pytest.mark.slow  # a tiny checkpoint per family, each against sentence-transformers or an export

CHUNKING = ChunkSettings(overlap=4)
QUESTIONS = ["what is the capital of France?", FAMILY_TEXTS[2], "wearable person tracking"]


@pytest.mark.parametrize("name", ["qwen3", "xlm-roberta"])
def test_index_defaults_to_declared_prompts_and_chunks_within_the_window(name: str, tmp_path: Path) -> None:
    source = build_family_checkpoint(tmp_path / name, name, max_seq_length=48)
    model = Embedder.load(source)
    prompts = FAMILY_RECIPES[name].prompts
    records = [{"id": f"d{i}", "text": text} for i, text in enumerate(FAMILY_TEXTS) if text.strip()]
    with Index.create(tmp_path / "ix", model=str(source), chunking=CHUNKING, embedder=model) as index:
        index.add(records)
        assert index.fingerprint.query_instruction == prompts["query"]
        doc_prompt = prompts.get("document", prompts.get("passage"))
        assert index.fingerprint.doc_instruction == doc_prompt
        got = index.search(QUESTIONS, k=4, pool="max")  # the brute force below scores by the best chunk
    # brute force: every chunk as the index embeds it, scored against embed_query's vectors
    batch = chunk_documents(model, [Item(doc_prompt, str(r["text"])) for r in records], CHUNKING)
    assert not batch.truncated_docs  # every window fits with the prompt and the end token
    assert any(c.index > 0 for c in batch.chunks)  # the long texts were cut
    vectors, doc_of = model.embed_tokenized(batch.rows), batch.doc_of_chunk()
    for hits, query in zip(got, model.embed_query(QUESTIONS), strict=True):
        scores = vectors @ query
        best = [float(scores[doc_of == d].max()) for d in range(len(records))]
        order = np.argsort(best, kind="stable")[::-1][:4]
        assert [h.id for h in hits] == [str(records[d]["id"]) for d in order]
        np.testing.assert_allclose([h.score for h in hits], [best[d] for d in order], atol=1e-5)
