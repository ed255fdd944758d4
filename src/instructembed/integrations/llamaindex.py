"""LlamaIndex: `InstructEmbedding`, a `BaseEmbedding` (the `[llamaindex]` extra).

Replaces `llama_index.embeddings.instructor.InstructorEmbedding` (same `query_instruction` /
`text_instruction` names and defaults); batches go to the model whole, not one call per text:

    from llama_index.core import Settings
    from instructembed.integrations.llamaindex import InstructEmbedding
    Settings.embed_model = InstructEmbedding(model_name="hkunlp/instructor-large")
"""

from __future__ import annotations

from typing import Any

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import Field, PrivateAttr
except ImportError:  # pragma: no cover - exercised by the release check without the extra
    from instructembed.errors import MissingExtraError

    raise MissingExtraError("llamaindex", "llama-index-core") from None

from instructembed.integrations.engine import (
    DEFAULT_MODEL,
    LoadOptions,
    LocalEngine,
)

__all__ = ["InstructEmbedding"]


class InstructEmbedding(BaseEmbedding):
    """Queries with `query_instruction`, nodes' text with `text_instruction`; exactly
    `Embedder.embed`'s vectors for those pairs. `embed_batch_size` texts go to the model at once
    (the model then batches them by tokens). Pass `embedder=` to share a model already loaded."""

    model_name: str = Field(default=DEFAULT_MODEL, description="packaged name, local directory or hub id")
    # None: the model's declared query / document prompt, else INSTRUCTOR's pair (engine.ROLE_DEFAULTS)
    query_instruction: str | None = Field(default=None)
    text_instruction: str | None = Field(default=None)
    backend: str | None = Field(default=None, description="torch (default), onnx or openvino")
    device: str | None = None
    dtype: str | None = None
    quantize: str | None = None
    revision: str | None = None
    embed_batch_size: int = Field(default=256, gt=0, le=2048)

    _engine: LocalEngine = PrivateAttr()

    def __init__(self, model_name: str = DEFAULT_MODEL, *, embedder: Any = None, **kwargs: Any) -> None:
        super().__init__(model_name=model_name, **kwargs)
        options = LoadOptions(
            self.model_name, self.backend, self.device, self.dtype, self.quantize, self.revision
        )
        self._engine = LocalEngine(embedder if embedder is not None else options.load())

    @classmethod
    def class_name(cls) -> str:
        return "InstructEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._engine.embed([query], self._engine.instruction_for("query", self.query_instruction))[
            0
        ].tolist()  # type: ignore[no-any-return]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (
            await self._engine.aembed([query], self._engine.instruction_for("query", self.query_instruction))
        )[0].tolist()  # type: ignore[no-any-return]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._engine.embed(
            texts, self._engine.instruction_for("document", self.text_instruction)
        ).tolist()  # type: ignore[no-any-return]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return (
            await self._engine.aembed(texts, self._engine.instruction_for("document", self.text_instruction))
        ).tolist()  # type: ignore[no-any-return]
