"""Chroma: a real PersistentClient collection (add, query, reopen from the stored config); documents
and queries get different instructions and exactly `Embedder.embed`'s vectors."""

from __future__ import annotations

from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.api.client import SharedSystemClient
from integration_texts import DOCS, QUERIES, expected

from instructembed import Embedder
from instructembed.integrations.chroma import InstructEmbeddingFunction
from instructembed.integrations.engine import DEFAULT_DOCUMENT_INSTRUCTION, DEFAULT_QUERY_INSTRUCTION
from instructembed.testing import assert_vectors_close

pytestmark = pytest.mark.real_model


def _client(path: Path) -> chromadb.ClientAPI:
    return chromadb.PersistentClient(str(path), settings=chromadb.Settings(anonymized_telemetry=False))


def test_call_embeds_documents_and_embed_query_embeds_queries(minilm: Embedder) -> None:
    ef = InstructEmbeddingFunction("all-MiniLM-L6-v2", embedder=minilm)
    docs = np.array(ef(DOCS))
    assert_vectors_close(docs, expected(minilm, DOCS, DEFAULT_DOCUMENT_INSTRUCTION))
    query = np.array(ef.embed_query([QUERIES[0][0]]))
    assert_vectors_close(query, expected(minilm, [QUERIES[0][0]], DEFAULT_QUERY_INSTRUCTION))
    assert not np.allclose(query[0], np.array(ef([QUERIES[0][0]]))[0])  # the instructions differ
    assert ef.name() == "instructembed" and not ef.is_legacy()


def test_persistent_collection_add_query_and_reopen_from_config(minilm: Embedder, tmp_path: Path) -> None:
    ef = InstructEmbeddingFunction(
        "all-MiniLM-L6-v2", query_instruction="Represent the question for retrieval: ", embedder=minilm
    )
    client = _client(tmp_path / "db")
    collection = client.create_collection("docs", embedding_function=ef)
    collection.add(ids=[f"doc-{i}" for i in range(len(DOCS))], documents=DOCS)
    stored = collection.get(ids=[f"doc-{i}" for i in range(len(DOCS))], include=["embeddings"])
    want_docs = expected(minilm, DOCS, DEFAULT_DOCUMENT_INSTRUCTION)
    # Chroma stores cosine-space vectors re-normalized (already unit length: float32 rounding only)
    assert_vectors_close(np.array(stored["embeddings"]), want_docs)

    def answers(coll: chromadb.Collection) -> list[str]:
        result = coll.query(query_texts=[q for q, _ in QUERIES], n_results=1)
        return [ids[0] for ids in result["ids"]]

    assert answers(collection) == [f"doc-{i}" for _, i in QUERIES]

    # A new process opens the database: Chroma rebuilds the function from the stored config.
    del collection, client
    SharedSystemClient.clear_system_cache()
    reopened = _client(tmp_path / "db").get_collection("docs")
    rebuilt = reopened.configuration["embedding_function"]  # what `query` embeds with
    assert isinstance(rebuilt, InstructEmbeddingFunction) and rebuilt is not ef
    assert rebuilt.get_config() == ef.get_config()
    assert answers(reopened) == [f"doc-{i}" for _, i in QUERIES]  # loaded all-MiniLM-L6-v2 by name
    assert_vectors_close(
        np.array(rebuilt.embed_query([QUERIES[0][0]])),
        expected(minilm, [QUERIES[0][0]], "Represent the question for retrieval: "),
    )


def test_config_round_trip_and_refused_updates(tiny_bert_dir: Path, tiny_model: Embedder) -> None:
    ef = InstructEmbeddingFunction(str(tiny_bert_dir), document_instruction="Doc: ")
    config = ef.get_config()
    rebuilt = InstructEmbeddingFunction.build_from_config(config)
    assert_vectors_close(np.array(rebuilt(["x y"])), tiny_model.embed([("Doc: ", "x y")]))
    with pytest.raises(ValueError, match="document_instruction"):
        ef.validate_config_update(config, {**config, "document_instruction": "Other: "})
    ef.validate_config_update(config, {**config, "device": "cpu"})  # how it runs may change
    with pytest.raises(ValueError, match="upgrade instructembed"):
        InstructEmbeddingFunction.build_from_config({**config, "pooling": "cls"})
    with pytest.raises(ValueError, match="text only"):
        ef([b"bytes"])  # type: ignore[list-item]
