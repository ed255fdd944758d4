"""LangChain: `InstructEmbeddings`, a `langchain_core.embeddings.Embeddings` (the `[langchain]` extra).

Replaces `HuggingFaceInstructEmbeddings` (same instruction defaults, `model_name=` still accepted):

    from instructembed.integrations.langchain import InstructEmbeddings
    emb = InstructEmbeddings(model="hkunlp/instructor-large")          # in process
    emb = InstructEmbeddings(base_url="http://127.0.0.1:8080", api_key="...")  # a running server
    emb.embed_documents(["..."])   # with embed_instruction
    emb.embed_query("...")         # with query_instruction
"""

from __future__ import annotations

from typing import Any

try:
    from langchain_core.embeddings import Embeddings
    from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator
except ImportError:  # pragma: no cover - exercised by the release check without the extra
    from instructembed.errors import MissingExtraError

    raise MissingExtraError("langchain", "langchain-core") from None

from instructembed.integrations.engine import (
    DEFAULT_MODEL,
    DEFAULT_REMOTE_BATCH,
    LoadOptions,
    LocalEngine,
    RemoteEngine,
    make_engine,
)

__all__ = ["InstructEmbeddings"]


class InstructEmbeddings(BaseModel, Embeddings):
    """INSTRUCTOR-style embeddings for LangChain: documents with `embed_instruction`, queries with
    `query_instruction`; the vectors are exactly `Embedder.embed`'s for those pairs.

    In process: `model` (a packaged name, a local directory or a hub id) with `backend`, `device`,
    `dtype`, `quantize`, `revision`, or an already loaded `embedder`. Over HTTP: `base_url` (and
    `api_key`) of a running `instructembed serve`; requests carry at most `batch_size` texts.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, populate_by_name=True)

    model: str = Field(default=DEFAULT_MODEL, validation_alias=AliasChoices("model", "model_name"))
    # None: the model's declared document / query prompt, else INSTRUCTOR's pair (engine.ROLE_DEFAULTS)
    embed_instruction: str | None = None
    query_instruction: str | None = None
    backend: str | None = None
    device: str | None = None
    dtype: str | None = None
    quantize: str | None = None
    revision: str | None = None
    allow_pickle: bool = False
    base_url: str | None = None
    api_key: SecretStr | None = None
    batch_size: int = Field(default=DEFAULT_REMOTE_BATCH, ge=1, le=2048)
    timeout: float = Field(default=60.0, gt=0)
    #: as langchain-openai's `OpenAIEmbeddings(dimensions=...)`: the first D coordinates, renormalized
    dimensions: int | None = Field(default=None, ge=1)
    embedder: Any = Field(default=None, exclude=True, repr=False)

    _engine: LocalEngine | RemoteEngine = PrivateAttr()

    @model_validator(mode="after")
    def _start(self) -> InstructEmbeddings:
        local_only = (self.backend, self.device, self.dtype, self.quantize, self.revision)
        if self.base_url is not None and any(v is not None for v in local_only):
            raise ValueError(
                "backend / device / dtype / quantize / revision choose how the model runs in this process; "
                "with base_url= the server decides (`instructembed serve --backend ...`): drop them"
            )
        options = LoadOptions(
            self.model,
            self.backend,
            self.device,
            self.dtype,
            self.quantize,
            self.revision,
            self.allow_pickle,
        )
        self._engine = make_engine(
            options,
            embedder=self.embedder,
            base_url=self.base_url,
            api_key=self.api_key.get_secret_value() if self.api_key is not None else None,
            batch_size=self.batch_size,
            timeout=self.timeout,
            dimensions=self.dimensions,
        )
        return self

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._engine.embed(
            texts, self._engine.instruction_for("document", self.embed_instruction)
        ).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self._engine.embed([text], self._engine.instruction_for("query", self.query_instruction))[
            0
        ].tolist()  # type: ignore[no-any-return]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return (
            await self._engine.aembed(texts, self._engine.instruction_for("document", self.embed_instruction))
        ).tolist()  # type: ignore[no-any-return]

    async def aembed_query(self, text: str) -> list[float]:
        return (
            await self._engine.aembed([text], self._engine.instruction_for("query", self.query_instruction))
        )[0].tolist()  # type: ignore[no-any-return]
