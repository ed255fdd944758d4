"""LlamaIndex: the batch method embeds a batch in one call, sync and async give `Embedder.embed`'s
vectors, and a real `VectorStoreIndex` retrieves with them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from integration_texts import DOCS, QUERIES, expected
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode

from instructembed import Embedder
from instructembed.integrations.engine import DEFAULT_DOCUMENT_INSTRUCTION, DEFAULT_QUERY_INSTRUCTION
from instructembed.integrations.llamaindex import InstructEmbedding
from instructembed.testing import assert_vectors_close

pytestmark = pytest.mark.real_model


class CountingEmbedder:
    """The real model, counting how many times it is asked (to prove batches are not split up)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.calls: list[int] = []

    def embed(self, inputs: list[tuple[str, str]]) -> np.ndarray:
        self.calls.append(len(inputs))
        return self.embedder.embed(inputs)


def test_batches_in_one_call_sync_and_async(minilm: Embedder) -> None:
    counting = CountingEmbedder(minilm)
    model = InstructEmbedding("all-MiniLM-L6-v2", embedder=counting)
    assert (model.text_instruction, model.query_instruction) == (
        DEFAULT_DOCUMENT_INSTRUCTION,
        DEFAULT_QUERY_INSTRUCTION,
    )
    want_docs = expected(minilm, DOCS, DEFAULT_DOCUMENT_INSTRUCTION)
    docs = np.array(model.get_text_embedding_batch(DOCS), dtype=np.float32)
    assert_vectors_close(docs, want_docs)
    assert counting.calls == [len(DOCS)]  # one call for the batch, not one per text

    query = QUERIES[0][0]
    want_query = expected(minilm, [query], DEFAULT_QUERY_INSTRUCTION)[0]
    assert_vectors_close(np.array(model.get_query_embedding(query), dtype=np.float32), want_query)
    assert_vectors_close(np.array(model.get_text_embedding(DOCS[0]), dtype=np.float32), want_docs[0])

    async def run_async() -> tuple[list[list[float]], list[float]]:
        return await model.aget_text_embedding_batch(DOCS), await model.aget_query_embedding(query)

    counting.calls.clear()
    adocs, aquery = asyncio.run(run_async())
    assert_vectors_close(np.array(adocs, dtype=np.float32), want_docs)
    assert_vectors_close(np.array(aquery, dtype=np.float32), want_query)
    assert counting.calls == [len(DOCS), 1]

    counting.calls.clear()
    small = InstructEmbedding("all-MiniLM-L6-v2", embedder=counting, embed_batch_size=2)
    got = np.array(small.get_text_embedding_batch(DOCS), dtype=np.float32)
    assert counting.calls == [2, 2, 1]
    assert_vectors_close(got, want_docs)


def test_vector_store_index_retrieves_with_instructed_vectors(minilm: Embedder) -> None:
    model = InstructEmbedding("all-MiniLM-L6-v2", embedder=minilm)
    nodes = [TextNode(text=text, id_=f"doc-{i}") for i, text in enumerate(DOCS)]
    index = VectorStoreIndex(nodes, embed_model=model)
    want_docs = expected(minilm, DOCS, DEFAULT_DOCUMENT_INSTRUCTION)
    stored = index.vector_store.to_dict()["embedding_dict"]  # what the index keeps per node id
    assert_vectors_close(np.array([stored[f"doc-{i}"] for i in range(len(DOCS))]), want_docs)

    retriever = index.as_retriever(similarity_top_k=1)
    for query, answer in QUERIES:
        hits = retriever.retrieve(query)
        assert hits[0].node.node_id == f"doc-{answer}", (query, hits[0].node.get_content())
        want = float(expected(minilm, [query], DEFAULT_QUERY_INSTRUCTION)[0] @ want_docs[answer])
        assert hits[0].score == pytest.approx(want, abs=1e-5)  # cosine of unit vectors

    async def aretrieve() -> str:
        return (await retriever.aretrieve(QUERIES[0][0]))[0].node.node_id

    assert asyncio.run(aretrieve()) == f"doc-{QUERIES[0][1]}"


def test_loads_by_name(tiny_bert_dir: Path, tiny_model: Embedder) -> None:
    model = InstructEmbedding(str(tiny_bert_dir), text_instruction="Represent the title: ")
    assert_vectors_close(
        np.array(model.get_text_embedding("a title"), dtype=np.float32),
        tiny_model.embed([("Represent the title: ", "a title")])[0],
    )
