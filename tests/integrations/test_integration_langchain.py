"""LangChain: LangChain's own standard suites, the same vectors as `Embedder.embed`, in process and
through a running server (the openai client and the instruction extension)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from integration_texts import DOCS, QUERIES, expected
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from instructembed import Embedder
from instructembed.integrations.engine import DEFAULT_DOCUMENT_INSTRUCTION, DEFAULT_QUERY_INSTRUCTION
from instructembed.integrations.langchain import InstructEmbeddings
from instructembed.testing import assert_vectors_close

pytestmark = pytest.mark.real_model


class TestInstructEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[InstructEmbeddings]:
        return InstructEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "all-MiniLM-L6-v2"}


class TestInstructEmbeddingsIntegration(EmbeddingsIntegrationTests):
    """Against the packaged all-MiniLM-L6-v2, loaded by name as a user would."""

    @property
    def embeddings_class(self) -> type[InstructEmbeddings]:
        return InstructEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "all-MiniLM-L6-v2"}


def test_defaults_are_langchains_instructor_pair() -> None:
    # HuggingFaceInstructEmbeddings' DEFAULT_EMBED_INSTRUCTION / DEFAULT_QUERY_INSTRUCTION
    assert DEFAULT_DOCUMENT_INSTRUCTION == "Represent the document for retrieval: "
    assert DEFAULT_QUERY_INSTRUCTION == "Represent the question for retrieving supporting documents: "
    fields = InstructEmbeddings.model_fields
    assert fields["embed_instruction"].default == DEFAULT_DOCUMENT_INSTRUCTION
    assert fields["query_instruction"].default == DEFAULT_QUERY_INSTRUCTION
    assert fields["model"].default == "hkunlp/instructor-large"


def test_same_vectors_as_embed_in_process(minilm: Embedder) -> None:
    emb = InstructEmbeddings(model_name="all-MiniLM-L6-v2", embedder=minilm, embed_instruction="Doc: ")
    docs = np.array(emb.embed_documents(DOCS), dtype=np.float32)
    assert_vectors_close(docs, expected(minilm, DOCS, "Doc: "))
    query = np.array(emb.embed_query(QUERIES[0][0]), dtype=np.float32)
    assert_vectors_close(query, expected(minilm, [QUERIES[0][0]], DEFAULT_QUERY_INSTRUCTION)[0])
    assert not np.allclose(query, expected(minilm, [QUERIES[0][0]], "Doc: ")[0])  # instructions differ

    async def both() -> tuple[list[list[float]], list[float]]:
        return await emb.aembed_documents(DOCS), await emb.aembed_query(QUERIES[0][0])

    adocs, aquery = asyncio.run(both())
    assert_vectors_close(np.array(adocs, dtype=np.float32), docs)
    assert_vectors_close(np.array(aquery, dtype=np.float32), query)
    assert emb.embed_documents([]) == []


def test_concurrent_async_calls_share_one_model(minilm: Embedder) -> None:
    emb = InstructEmbeddings(embedder=minilm)

    async def many() -> list[list[list[float]]]:
        return await asyncio.gather(*(emb.aembed_documents([d]) for d in DOCS))

    rows = np.array([r[0] for r in asyncio.run(many())], dtype=np.float32)
    assert_vectors_close(rows, expected(minilm, DOCS, DEFAULT_DOCUMENT_INSTRUCTION))


@pytest.fixture(scope="module")
def server(minilm: Embedder) -> Iterator[str]:
    from instructembed.server import ServerSettings, create_app
    from instructembed.server.testing import serve_in_thread

    with serve_in_thread(create_app(minilm, ServerSettings(api_key="s3cret"))) as base_url:
        yield base_url


def test_same_vectors_through_a_server(server: str, minilm: Embedder) -> None:
    emb = InstructEmbeddings(base_url=server, api_key="s3cret", batch_size=2)  # 5 docs: 3 requests
    docs = np.array(emb.embed_documents(DOCS), dtype=np.float32)
    assert_vectors_close(docs, expected(minilm, DOCS, DEFAULT_DOCUMENT_INSTRUCTION))
    queries = [q for q, _ in QUERIES]
    got = np.array([emb.embed_query(q) for q in queries], dtype=np.float32)
    want = expected(minilm, queries, DEFAULT_QUERY_INSTRUCTION)
    assert_vectors_close(got, want)
    assert [int(np.argmax(docs @ q)) for q in got] == [i for _, i in QUERIES]

    async def both() -> tuple[list[list[float]], list[float]]:
        return await emb.aembed_documents(DOCS), await emb.aembed_query(queries[0])

    adocs, aquery = asyncio.run(both())
    assert_vectors_close(np.array(adocs, dtype=np.float32), docs)
    assert_vectors_close(np.array(aquery, dtype=np.float32), want[0])


def test_server_errors_are_clear(server: str) -> None:
    import openai

    with pytest.raises(openai.AuthenticationError):
        InstructEmbeddings(base_url=server, api_key="wrong").embed_query("x")
    with pytest.raises(ValueError, match="the server decides"):
        InstructEmbeddings(base_url=server, device="cuda")
    with pytest.raises(ValueError, match="not both"):
        InstructEmbeddings(base_url=server, embedder=object())
    with pytest.raises(TypeError, match="wrap it in a list"):
        InstructEmbeddings(base_url=server, api_key="s3cret").embed_documents("one string")  # type: ignore[arg-type]
