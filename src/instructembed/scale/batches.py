"""What one Ray actor does: hold a model, turn a batch of rows into rows with an embedding column.

This module does not import Ray: `EmbedBatches` is a plain callable class that Ray Data instantiates
once per actor (`ds.map_batches(EmbedBatches, fn_constructor_kwargs=..., compute=ActorPoolStrategy(...))`),
so the model loads once per actor and every batch goes through `Embedder.embed_tokenized`, the one
encode path, with its length-sorted token-budget batches. `embed_items` is the shared step the shard
writer of the `embed --engine ray` job uses too.

Chunking is `embed --chunk`'s own: `ChunkSettings` travel to each actor and `chunk_documents` cuts
long documents into token windows there, so a chunk's vector and span equal the single-process ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from instructembed.chunking import ChunkSettings, chunk_documents
from instructembed.errors import InputFileError
from instructembed.inputs import Item

if TYPE_CHECKING:
    from instructembed.embedder import Embedder

log = logging.getLogger(__name__)

#: Columns a chunked output adds beside `id` and `embedding` (the names `embed --chunk` writes):
#: the 0-based input row, the chunk number within it, and the chunk's character span in the text.
CHUNK_COLUMNS = ("doc", "chunk", "start", "end")


@dataclass(frozen=True)
class ModelOptions:
    """How every actor loads the model: the `Embedder.load` arguments, sent to each actor once."""

    model: str
    backend: str | None = None
    dtype: str | None = None
    quantize: str | None = None
    device: str | None = None
    threads: int | None = None  # torch / runtime threads per actor (default: the actor's CPUs)
    max_seq_length: int | None = None
    allow_pickle: bool = False
    token_budget: int = 8192  # padded tokens per forward pass, as `embed`
    max_batch_size: int = 128

    def load(self) -> Embedder:
        from instructembed.embedder import EmbedConfig, Embedder

        return Embedder.load(
            self.model,
            backend=self.backend,
            dtype=self.dtype,
            quantize=self.quantize,
            device=self.device,
            threads=self.threads,
            max_seq_length=self.max_seq_length,
            allow_pickle=self.allow_pickle,
            config=EmbedConfig(token_budget=self.token_budget, max_batch_size=self.max_batch_size),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Columns:
    """Which columns hold what. `instruction` names a per-row instruction column (or None)."""

    text: str = "text"
    id: str | None = "id"
    instruction: str | None = None
    embedding: str = "embedding"


@dataclass(frozen=True)
class Embedded:
    """Vectors for a batch of documents. Unchunked: one row per document, `spans` None.
    Chunked: one row per chunk, `spans` (M, 4) int64 = CHUNK_COLUMNS."""

    vectors: np.ndarray  # (M, D) float32
    spans: np.ndarray | None  # (M, 4) int64: doc, chunk, start, end
    truncated: np.ndarray  # (N,) bool: documents that lost tokens to truncation (counted, never silent)

    @property
    def doc(self) -> np.ndarray:
        """(M,) int64: the document (batch row) each output row belongs to."""
        if self.spans is None:
            return np.arange(len(self.vectors), dtype=np.int64)
        return self.spans[:, 0]


def embed_items(embedder: Embedder, items: Sequence[Item], chunking: ChunkSettings | None = None) -> Embedded:
    """Embed documents through the one encode path; with `chunking`, split long ones first exactly as
    `embed --chunk` does (`chunk_documents`), one output row per chunk."""
    if chunking is None or not chunking.enabled:
        rows = embedder.tokenizer.encode(list(items))
        truncated = np.fromiter((r.truncated for r in rows), dtype=bool, count=len(rows))
        return Embedded(embedder.embed_tokenized(rows), None, truncated)
    chunked = chunk_documents(embedder, items, chunking)
    spans = np.asarray([(c.doc, c.index, c.start, c.end) for c in chunked.chunks], dtype=np.int64).reshape(
        -1, 4
    )  # (M, 4)
    truncated = np.zeros(len(items), dtype=bool)
    truncated[list(chunked.truncated)] = True
    return Embedded(embedder.embed_tokenized(chunked.rows), spans, truncated)


def items_from_columns(
    batch: dict[str, Any], columns: Columns, instruction: str | None, where: str = "the batch"
) -> list[Item]:
    """`Item`s from a column batch (numpy or lists); errors name the missing column and what is there."""
    if columns.text not in batch:
        raise InputFileError(
            f"{where} has no text column '{columns.text}' (columns: {', '.join(sorted(batch))}); "
            "choose one with --field"
        )
    texts = batch[columns.text]
    if columns.instruction is not None:
        if columns.instruction not in batch:
            raise InputFileError(
                f"{where} has no instruction column '{columns.instruction}' "
                f"(columns: {', '.join(sorted(batch))}); choose one with --instruction-field"
            )
        instructions: Sequence[Any] = batch[columns.instruction]
    else:
        instructions = [instruction] * len(texts)
    items = []
    for i, (text, row_instruction) in enumerate(zip(texts, instructions, strict=True)):
        if not isinstance(text, str):
            raise InputFileError(
                f"{where}: row {i} of column '{columns.text}' is {type(text).__name__}, expected a string"
            )
        if row_instruction is not None and not isinstance(row_instruction, str):
            raise InputFileError(
                f"{where}: row {i} of column '{columns.instruction}' is "
                f"{type(row_instruction).__name__}, expected a string"
            )
        items.append(Item(row_instruction, text))
    return items


class EmbedBatches:
    """A Ray Data `map_batches` callable: loads the model once per actor, adds an embedding column.

    Batches are `dict[str, np.ndarray]` (Ray Data's default format). The output keeps every input
    column and adds `columns.embedding` as a (N, D) float32 array; with `chunking`, each output row
    is a chunk: its document's input columns repeated, plus `chunk`, `start`, `end` (the span in the
    document's text).
    """

    def __init__(
        self,
        options: ModelOptions,
        columns: Columns | None = None,
        instruction: str | None = None,
        chunking: ChunkSettings | None = None,
    ) -> None:
        if instruction is not None and columns is not None and columns.instruction is not None:
            raise ValueError("give one instruction for all rows or an instruction column, not both")
        self.options = options
        self.columns = columns or Columns()
        self.instruction = instruction
        self.chunking = chunking
        self.embedder = options.load()
        log.info("actor loaded %s (%s)", options.model, self.embedder.backend.precision)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = items_from_columns(batch, self.columns, self.instruction)
        out = embed_items(self.embedder, items, self.chunking)
        if out.spans is None:
            return {**batch, self.columns.embedding: out.vectors}
        doc = out.doc
        result = {name: np.asarray(values)[doc] for name, values in batch.items()}
        for k, name in enumerate(CHUNK_COLUMNS[1:], start=1):  # `doc` would be a batch position
            result[name] = out.spans[:, k]
        result[self.columns.embedding] = out.vectors
        return result
