"""Haystack: the text and document embedders in real indexing and query pipelines (in-memory store,
embedding retriever), `meta_fields_to_embed`, `to_dict` / `from_dict`, the same vectors as `embed`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore
from integration_texts import DOCS, QUERIES, expected

from instructembed import Embedder
from instructembed.integrations.engine import DEFAULT_DOCUMENT_INSTRUCTION, DEFAULT_QUERY_INSTRUCTION
from instructembed.integrations.haystack import InstructDocumentEmbedder, InstructTextEmbedder
from instructembed.testing import assert_vectors_close

pytestmark = pytest.mark.real_model
TITLES = ["Paris", "Biology", "Programming", "Geography", "Typing"]


def _documents() -> list[Document]:
    return [Document(id=f"doc-{i}", content=t, meta={"title": TITLES[i]}) for i, t in enumerate(DOCS)]


def test_pipelines_index_and_retrieve(minilm: Embedder) -> None:
    store = InMemoryDocumentStore(embedding_similarity_function="cosine")
    indexing = Pipeline()
    indexing.add_component(
        "embedder",
        InstructDocumentEmbedder("all-MiniLM-L6-v2", meta_fields_to_embed=["title"], embedder=minilm),
    )
    indexing.add_component("writer", DocumentWriter(document_store=store))
    indexing.connect("embedder.documents", "writer.documents")
    indexing.run({"embedder": {"documents": _documents()}})

    # The text embedded is the title and the content, joined by "\n", with the document instruction.
    want_docs = expected(
        minilm, [f"{t}\n{d}" for t, d in zip(TITLES, DOCS, strict=True)], DEFAULT_DOCUMENT_INSTRUCTION
    )
    stored = {d.id: d.embedding for d in store.filter_documents()}
    assert_vectors_close(
        np.array([stored[f"doc-{i}"] for i in range(len(DOCS))], dtype=np.float32), want_docs
    )

    query = Pipeline()
    query.add_component("embedder", InstructTextEmbedder("all-MiniLM-L6-v2", embedder=minilm))
    query.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store, top_k=1))
    query.connect("embedder.embedding", "retriever.query_embedding")
    for text, answer in QUERIES:
        result = query.run({"embedder": {"text": text}}, include_outputs_from={"embedder"})
        assert_vectors_close(
            np.array(result["embedder"]["embedding"], dtype=np.float32),
            expected(minilm, [text], DEFAULT_QUERY_INSTRUCTION)[0],
        )
        assert result["retriever"]["documents"][0].id == f"doc-{answer}"


def test_to_dict_from_dict_and_a_serialized_pipeline(tiny_bert_dir: Path, tiny_model: Embedder) -> None:
    docs = InstructDocumentEmbedder(str(tiny_bert_dir), instruction="Doc: ", meta_fields_to_embed=["title"])
    data = docs.to_dict()
    assert data["type"] == "instructembed.integrations.haystack.InstructDocumentEmbedder"
    assert data["init_parameters"]["meta_fields_to_embed"] == ["title"]
    again = InstructDocumentEmbedder.from_dict(data)
    assert again.to_dict() == data

    pipeline = Pipeline()
    pipeline.add_component("embedder", InstructTextEmbedder(str(tiny_bert_dir), instruction="Q: "))
    # From YAML, as users keep pipelines: the component is rebuilt by its type name, once the user
    # puts our module on Haystack's deserialization allowlist.
    restored = Pipeline.loads(pipeline.dumps(), allowed_modules=["instructembed.integrations.haystack"])
    restored.warm_up()
    got = restored.run({"embedder": {"text": "a question"}})["embedder"]["embedding"]
    assert_vectors_close(np.array(got, dtype=np.float32), tiny_model.embed([("Q: ", "a question")])[0])

    out = again.run([Document(content="body", meta={"title": "T"}), Document(content="plain")])["documents"]
    want = tiny_model.embed([("Doc: ", "T\nbody"), ("Doc: ", "plain")])
    assert_vectors_close(np.array([d.embedding for d in out], dtype=np.float32), want)
    with pytest.raises(TypeError, match="InstructDocumentEmbedder"):
        InstructTextEmbedder(str(tiny_bert_dir)).run(text=["not", "a string"])  # type: ignore[arg-type]
