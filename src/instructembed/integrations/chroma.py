"""Chroma: `InstructEmbeddingFunction`, an `EmbeddingFunction` (the `[chroma]` extra).

Replaces chromadb's `InstructorEmbeddingFunction`, which embeds documents and queries with one
instruction: here `__call__` (what `add` uses) takes `document_instruction` and `embed_query`
(what `query(query_texts=...)` uses) takes `query_instruction`. Registered with Chroma under the
name "instructembed", so a collection reopened from its stored config rebuilds this function
(import this module first); the model loads on first use.

    import chromadb
    from instructembed.integrations.chroma import InstructEmbeddingFunction
    client = chromadb.PersistentClient("db", settings=chromadb.Settings(anonymized_telemetry=False))
    docs = client.create_collection("docs", embedding_function=InstructEmbeddingFunction("hkunlp/instructor-large"))
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import Any

try:
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
    from chromadb.utils.embedding_functions import register_embedding_function
except ImportError:  # pragma: no cover - exercised by the release check without the extra
    from instructembed.errors import MissingExtraError

    raise MissingExtraError("chroma", "chromadb") from None

from instructembed.integrations.engine import (
    DEFAULT_MODEL,
    LoadOptions,
    LocalEngine,
)

__all__ = ["InstructEmbeddingFunction"]

_CONFIG_KEYS = (
    "model",
    "document_instruction",
    "query_instruction",
    "backend",
    "device",
    "dtype",
    "quantize",
    "revision",
)
#: Settings that change the vectors: a stored collection must keep them (`validate_config_update`).
_FIXED = ("model", "document_instruction", "query_instruction", "revision")


@register_embedding_function
class InstructEmbeddingFunction(EmbeddingFunction[Documents]):
    """Documents with `document_instruction`, queries with `query_instruction`; exactly
    `Embedder.embed`'s vectors. Pass `embedder=` to share a model already loaded."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        document_instruction: str | None = None,
        query_instruction: str | None = None,
        backend: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
        revision: str | None = None,
        embedder: Any = None,
    ) -> None:
        self.model = str(model)
        self.document_instruction = document_instruction
        self.query_instruction = query_instruction
        self.options = LoadOptions(self.model, backend, device, dtype, quantize, revision)
        self._engine = LocalEngine(embedder) if embedder is not None else None
        self._loading = threading.Lock()

    def _get_engine(self) -> LocalEngine:
        with self._loading:  # loaded once, on first use: Chroma builds these from config freely
            if self._engine is None:
                self._engine = LocalEngine(self.options.load())
            return self._engine

    def _embed(self, input: Documents, role: str, given: str | None) -> Any:
        engine = self._get_engine()  # None: the model's declared prompt for `role`, else INSTRUCTOR's
        return engine.embed(_texts(input), engine.instruction_for(role, given))

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._embed(input, "document", self.document_instruction))

    def embed_query(self, input: Documents) -> Embeddings:
        return list(self._embed(input, "query", self.query_instruction))

    @staticmethod
    def name() -> str:
        return "instructembed"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        config = {**asdict(self.options), "document_instruction": self.document_instruction}
        config["query_instruction"] = self.query_instruction
        return {key: config[key] for key in _CONFIG_KEYS}  # JSON: Chroma stores it with the collection

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> InstructEmbeddingFunction:
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"unknown instructembed embedding-function settings {unknown}; upgrade instructembed"
            )
        return InstructEmbeddingFunction(**config)

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        changed = [k for k in _FIXED if k in new_config and new_config[k] != old_config.get(k)]
        if changed:
            raise ValueError(
                f"changing {', '.join(changed)} would change the vectors of a collection already embedded; "
                "create a new collection (and re-add the documents) instead"
            )


def _texts(input: Documents) -> list[str]:
    if isinstance(input, str):
        return [input]
    texts = list(input)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"instructembed embeds text only; input[{bad[0]}] is {type(texts[bad[0]]).__name__}")
    return texts
