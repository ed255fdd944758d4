"""What every integration shares: texts + one instruction -> float32 vectors, from an `Embedder`
in this process or from a running `instructembed serve` (through the openai client).

No framework is imported here; each framework module adapts these two engines to its own types.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from instructembed.checkpoint import declared_role_prompt
from instructembed.errors import MissingExtraError

if TYPE_CHECKING:
    from instructembed.embedder import Embedder

#: INSTRUCTOR's retrieval pair, the defaults of LangChain's HuggingFaceInstructEmbeddings and of
#: LlamaIndex's InstructorEmbedding: documents and queries are embedded *differently*.
DEFAULT_DOCUMENT_INSTRUCTION = "Represent the document for retrieval: "
DEFAULT_QUERY_INSTRUCTION = "Represent the question for retrieving supporting documents: "
#: What those integrations load by default.
DEFAULT_MODEL = "hkunlp/instructor-large"
#: Items per request to a server (its default limit per request is 2048).
DEFAULT_REMOTE_BATCH = 256


#: What an integration embeds with when the user gives no instruction and the model declares no
#: prompt for the role: INSTRUCTOR's pair above.
ROLE_DEFAULTS = {"query": DEFAULT_QUERY_INSTRUCTION, "document": DEFAULT_DOCUMENT_INSTRUCTION}


def role_instruction(prompts: dict[str, str], role: str) -> str:
    """The instruction for `role` ("query" / "document") when the user gives none: the model's own
    declared prompt for it (config_sentence_transformers.json), else INSTRUCTOR's default."""
    name = declared_role_prompt(prompts, role)
    return prompts[name] if name is not None else ROLE_DEFAULTS[role]


class Engine(Protocol):
    def embed(self, texts: Sequence[str], instruction: str) -> np.ndarray: ...

    async def aembed(self, texts: Sequence[str], instruction: str) -> np.ndarray: ...

    def instruction_for(self, role: str, given: str | None) -> str: ...


@dataclass(frozen=True)
class LoadOptions:
    """How to load the model in process: `Embedder.load`'s arguments, unset ones left to it."""

    model: str = DEFAULT_MODEL
    backend: str | None = None
    device: str | None = None
    dtype: str | None = None
    quantize: str | None = None
    revision: str | None = None
    allow_pickle: bool = False

    def load(self) -> Embedder:
        from instructembed.embedder import Embedder

        kwargs = {k: v for k, v in asdict(self).items() if k != "model" and v not in (None, False)}
        return Embedder.load(self.model, **kwargs)


class LocalEngine:
    """An `Embedder` in this process; one call embeds at a time (tokenizers are not thread-safe),
    and the async form runs it in a worker thread so the event loop keeps serving."""

    def __init__(self, embedder: Embedder, dimensions: int | None = None) -> None:
        self.embedder = embedder
        self._lock = threading.Lock()
        if dimensions is not None and not 1 <= dimensions <= embedder.dimension:
            raise ValueError(f"dimensions is {dimensions}; this model's embeddings have {embedder.dimension}")
        #: keep the first `dimensions` coordinates, renormalized (`vectors_out.truncate`), as a server would
        self.dimensions = dimensions

    @property
    def dimension(self) -> int:
        return self.dimensions or self.embedder.dimension

    def embed(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        texts = _check_texts(texts)
        with self._lock:  # (N, D) float32, rows in input order; Embedder batches by token budget
            vectors = self.embedder.embed([(instruction, text) for text in texts])
        if self.dimensions is not None and self.dimensions < vectors.shape[1]:
            from instructembed.vectors_out import truncate

            vectors = truncate(vectors, self.dimensions, renormalize=self.embedder.normalized)
        return vectors

    async def aembed(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        return await asyncio.to_thread(self.embed, texts, instruction)

    def instruction_for(self, role: str, given: str | None) -> str:
        """`given`, or the model's declared prompt for `role`, or INSTRUCTOR's default for it."""
        if given is not None:
            return given
        spec = getattr(self.embedder, "spec", None)  # a wrapped or fake embedder may have none
        return role_instruction(dict(getattr(spec, "prompts", None) or {}), role)


class RemoteEngine:
    """A running `instructembed serve`, through the official openai client and the server's
    `instruction` extension of `/v1/embeddings` (float32 over base64: the same bits as in process)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        model: str,
        batch_size: int = DEFAULT_REMOTE_BATCH,
        timeout: float = 60.0,
        max_retries: int = 2,
        dimensions: int | None = None,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise MissingExtraError("langchain", "openai") from None
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        base = base_url.rstrip("/")
        base = base if base.endswith("/v1") else f"{base}/v1"  # accept the server root or its /v1
        options: dict[str, Any] = {
            "base_url": base,
            "api_key": api_key or "unused",  # the server checks a key only when started with one
            "timeout": timeout,
            "max_retries": max_retries,
        }
        self.client = openai.OpenAI(**options)
        self.async_client = openai.AsyncOpenAI(**options)
        self.model = model
        self.batch_size = batch_size
        self.root = base[: -len("/v1")]
        self._prompts: dict[str, str] | None = None
        self.dimensions = dimensions  # sent as OpenAI's `dimensions`: the server truncates

    def instruction_for(self, role: str, given: str | None) -> str:
        """`given`, or the served model's declared prompt for `role` (its GET /info, asked once), or
        INSTRUCTOR's default for it."""
        if given is not None:
            return given
        if self._prompts is None:
            info = self.client.get(f"{self.root}/info", cast_to=object)  # absolute: not under /v1
            prompts = info.get("prompts") if isinstance(info, dict) else None
            self._prompts = {str(k): str(v) for k, v in (prompts or {}).items()}
        return role_instruction(self._prompts, role)

    def _request(self, texts: list[str], instruction: str) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "input": texts,
            "extra_body": {"instruction": instruction},
        }
        if self.dimensions is not None:
            request["dimensions"] = self.dimensions
        return request

    def embed(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        texts = _check_texts(texts)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            response = self.client.embeddings.create(**self._request(chunk, instruction))
            rows += [d.embedding for d in sorted(response.data, key=lambda d: d.index)]
        return _stack(rows)

    async def aembed(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        texts = _check_texts(texts)
        chunks = [texts[s : s + self.batch_size] for s in range(0, len(texts), self.batch_size)]
        responses = await asyncio.gather(
            *(self.async_client.embeddings.create(**self._request(c, instruction)) for c in chunks)
        )
        return _stack([d.embedding for r in responses for d in sorted(r.data, key=lambda d: d.index)])


def make_engine(
    options: LoadOptions,
    *,
    embedder: Embedder | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    batch_size: int = DEFAULT_REMOTE_BATCH,
    timeout: float = 60.0,
    dimensions: int | None = None,
) -> LocalEngine | RemoteEngine:
    """`embedder` (already loaded) or `base_url` (a server) or else load `options.model` here."""
    if embedder is not None and base_url is not None:
        raise ValueError("give either embedder= (in process) or base_url= (a server), not both")
    if base_url is not None:
        return RemoteEngine(
            base_url,
            api_key=api_key,
            model=options.model,
            batch_size=batch_size,
            timeout=timeout,
            dimensions=dimensions,
        )
    return LocalEngine(embedder if embedder is not None else options.load(), dimensions)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got one string; wrap it in a list")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is {type(text).__name__}; every text must be a str")
    return texts


def _stack(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
