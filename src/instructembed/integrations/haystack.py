"""Haystack: `InstructTextEmbedder` (queries) and `InstructDocumentEmbedder` (documents), the
`[haystack]` extra. They replace the instructor embedders pinned to sentence-transformers < 2.3:

    from haystack import Pipeline
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from instructembed.integrations.haystack import InstructTextEmbedder
    query = Pipeline()
    query.add_component("embedder", InstructTextEmbedder(model="hkunlp/instructor-large"))
    query.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store))
    query.connect("embedder.embedding", "retriever.query_embedding")

A pipeline saved with these components loads back once this module is on Haystack's
deserialization allowlist: `Pipeline.loads(yaml, allowed_modules=["instructembed.integrations.haystack"])`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

try:
    from haystack import Document, component, default_from_dict, default_to_dict
except ImportError:  # pragma: no cover - exercised by the release check without the extra
    from instructembed.errors import MissingExtraError

    raise MissingExtraError("haystack", "haystack-ai") from None

from instructembed.integrations.engine import (
    DEFAULT_MODEL,
    LoadOptions,
    LocalEngine,
)

__all__ = ["InstructDocumentEmbedder", "InstructTextEmbedder"]


class _Loads:
    """Model settings, `warm_up` (loads once) and serialization shared by both components."""

    def __init__(
        self,
        model: str,
        instruction: str | None,
        backend: str | None,
        device: str | None,
        dtype: str | None,
        quantize: str | None,
        revision: str | None,
        embedder: Any,
    ) -> None:
        self.model = str(model)
        self.instruction = instruction
        self.options = LoadOptions(self.model, backend, device, dtype, quantize, revision)
        self._engine = LocalEngine(embedder) if embedder is not None else None

    def warm_up(self) -> None:
        """Load the model (Haystack calls this when a pipeline starts; `run` does it if needed)."""
        self._get_engine()

    def _get_engine(self) -> LocalEngine:
        if self._engine is None:
            self._engine = LocalEngine(self.options.load())
        return self._engine

    def _init_parameters(self) -> dict[str, Any]:
        o = self.options
        return {
            "model": self.model,
            "instruction": self.instruction,
            "backend": o.backend,
            "device": o.device,
            "dtype": o.dtype,
            "quantize": o.quantize,
            "revision": o.revision,
        }


@component
class InstructTextEmbedder(_Loads):
    """Embeds one query string with `instruction` (default: INSTRUCTOR's retrieval question)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        instruction: str | None = None,
        backend: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
        revision: str | None = None,
        embedder: Any = None,
    ) -> None:
        # @component rebuilds the class, so zero-argument super() cannot find it
        _Loads.__init__(self, model, instruction, backend, device, dtype, quantize, revision, embedder)

    @component.output_types(embedding=list[float], meta=dict[str, Any])
    def run(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise TypeError(
                "InstructTextEmbedder embeds one string; for a list of Documents use InstructDocumentEmbedder"
            )
        vector = self._get_engine().embed(
            [text], self._get_engine().instruction_for("query", self.instruction)
        )[0]
        return {"embedding": vector.tolist(), "meta": {"model": self.model}}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, **self._init_parameters())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructTextEmbedder:
        return default_from_dict(cls, data)


@component
class InstructDocumentEmbedder(_Loads):
    """Embeds Documents with `instruction` (default: INSTRUCTOR's retrieval document); the text
    embedded is the `meta_fields_to_embed` values and the content, joined by `embedding_separator`
    (as Haystack's other document embedders do). Returns new Documents with `embedding` set."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        instruction: str | None = None,
        backend: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
        revision: str | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        embedder: Any = None,
    ) -> None:
        # @component rebuilds the class, so zero-argument super() cannot find it
        _Loads.__init__(self, model, instruction, backend, device, dtype, quantize, revision, embedder)
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator

    def text_to_embed(self, document: Document) -> str:
        meta = [
            str(document.meta[key]) for key in self.meta_fields_to_embed if document.meta.get(key) is not None
        ]
        return self.embedding_separator.join([*meta, document.content or ""])

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        if not isinstance(documents, list) or not all(isinstance(d, Document) for d in documents):
            raise TypeError(
                "InstructDocumentEmbedder embeds a list of Documents; for one string use InstructTextEmbedder"
            )
        vectors = self._get_engine().embed(
            [self.text_to_embed(d) for d in documents],
            self._get_engine().instruction_for("document", self.instruction),
        )
        embedded = [replace(d, embedding=v.tolist()) for d, v in zip(documents, vectors, strict=True)]
        return {"documents": embedded, "meta": {"model": self.model}}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            **self._init_parameters(),
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructDocumentEmbedder:
        return default_from_dict(cls, data)
