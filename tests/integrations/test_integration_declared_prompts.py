"""With no instruction given, every integration embeds with the model's own declared query /
document prompts (here a tiny Qwen3-style checkpoint: "Instruct: ...\\nQuery:" for queries, none for
documents), in process and through a server; an explicit instruction still wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from instructembed import Embedder
from instructembed.testing import assert_vectors_close
from instructembed.testing_families import FAMILY_TEXTS, build_family_checkpoint

DOCS, QUERY = FAMILY_TEXTS[:4], FAMILY_TEXTS[5]


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    return Embedder.load(build_family_checkpoint(tmp_path_factory.mktemp("m") / "qwen3", "qwen3"))


def _want(model: Embedder) -> tuple[np.ndarray, np.ndarray]:
    return model.embed_documents(DOCS), model.embed_query([QUERY])[0]


def test_langchain_uses_the_declared_prompts(qwen3: Embedder) -> None:
    from instructembed.integrations.langchain import InstructEmbeddings

    docs, query = _want(qwen3)
    emb = InstructEmbeddings(model="tiny", embedder=qwen3)
    assert_vectors_close(np.array(emb.embed_documents(DOCS), dtype=np.float32), docs)
    assert_vectors_close(np.array(emb.embed_query(QUERY), dtype=np.float32), query)
    own = InstructEmbeddings(model="tiny", embedder=qwen3, query_instruction="Mine: ")
    assert_vectors_close(np.array(own.embed_query(QUERY)), qwen3.embed([QUERY], instruction="Mine: ")[0])


def test_llamaindex_chroma_and_haystack_use_the_declared_prompts(qwen3: Embedder) -> None:
    docs, query = _want(qwen3)
    llama = pytest.importorskip("instructembed.integrations.llamaindex").InstructEmbedding(embedder=qwen3)
    assert_vectors_close(np.array(llama.get_text_embedding_batch(DOCS)), docs)
    assert_vectors_close(np.array(llama.get_query_embedding(QUERY)), query)
    chroma = pytest.importorskip("instructembed.integrations.chroma").InstructEmbeddingFunction(
        embedder=qwen3
    )
    assert_vectors_close(np.array(chroma(DOCS)), docs)
    assert_vectors_close(np.array(chroma.embed_query([QUERY])[0]), query)
    haystack = pytest.importorskip("instructembed.integrations.haystack")
    from haystack import Document

    out = haystack.InstructDocumentEmbedder(embedder=qwen3).run([Document(content=t) for t in DOCS])
    assert_vectors_close(np.array([d.embedding for d in out["documents"]]), docs)
    text = haystack.InstructTextEmbedder(embedder=qwen3).run(QUERY)["embedding"]
    assert_vectors_close(np.array(text), query)


@pytest.fixture(scope="module")
def served(qwen3: Embedder) -> Iterator[str]:
    from instructembed.server import ServerSettings, create_app
    from instructembed.server.testing import ThreadedServer

    server = ThreadedServer(create_app(qwen3, ServerSettings(max_wait_ms=5)))
    server.start()
    yield server.base_url
    server.stop()


def test_a_server_engine_asks_the_server_for_its_prompts(qwen3: Embedder, served: str) -> None:
    from instructembed.integrations.engine import RemoteEngine

    docs, query = _want(qwen3)
    engine = RemoteEngine(served, api_key=None, model="tiny")
    assert_vectors_close(engine.embed(DOCS, engine.instruction_for("document", None)), docs)
    assert_vectors_close(engine.embed([QUERY], engine.instruction_for("query", None))[0], query)
    assert engine.instruction_for("query", "Mine: ") == "Mine: "


def test_instructor_checkpoints_keep_instructors_pair(tiny_bert_dir: Path) -> None:
    from instructembed.integrations.engine import ROLE_DEFAULTS, LocalEngine

    engine = LocalEngine(Embedder.load(tiny_bert_dir))
    assert engine.instruction_for("query", None) == ROLE_DEFAULTS["query"]
    assert engine.instruction_for("document", None) == ROLE_DEFAULTS["document"]
