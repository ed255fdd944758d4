"""Token-aware chunking of long documents, with the model's own tokenizer.

A document that fits the model's window is one chunk: the whole text, embedded exactly as `embed`
would. A longer one is cut into windows of at most

    budget = max_seq_length - (special tokens) - (tokens of the stripped instruction)

text tokens, consecutive windows sharing about `overlap` tokens. Cuts fall where a word starts
(whitespace before the token) when one lies in the second half of the window, so chunks do not end
mid-word; a single "word" longer than the window (a URL, a base64 blob) is cut where it must be.
Each chunk keeps its character span in the original text (`text[start:end]`).

Tokenizing instruction + chunk together can differ by a token or two from the separate counts
(merges across the join); every chunk is therefore tokenized as the encoder will see it, and a
document whose chunk still overflows is re-cut with a smaller budget. What still does not fit
after that (pathological tokenizers) is truncated *and counted*, never silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np
from tokenizers import Tokenizer

from instructembed.inputs import Item
from instructembed.tokenize import Encoded, InstructionTokenizer

#: How often a document is re-cut with a smaller budget before its overflow is accepted (and counted).
_REPAIR_ROUNDS = 4


class ChunkPool(str, Enum):
    """How chunk scores (or vectors) become one per document."""

    MAX = "max"
    MEAN = "mean"


class VectorPool(str, Enum):
    """How chunk vectors become one vector per document (`embed --chunk-pool`)."""

    MEAN = "mean"


@dataclass(frozen=True)
class ChunkSettings:
    """How long documents are split. `enabled=False` embeds each document whole (truncated, counted)."""

    enabled: bool = True
    overlap: int = 32  # text tokens shared by consecutive chunks (approximately: cuts snap to words)
    max_tokens: int | None = None  # text tokens per chunk; None = as many as the model's window holds

    def __post_init__(self) -> None:
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or self.overlap < 0:
            raise ValueError(f"chunk overlap must be a non-negative number of tokens, got {self.overlap!r}")
        if self.max_tokens is not None and (isinstance(self.max_tokens, bool) or self.max_tokens < 1):
            raise ValueError(f"chunk max_tokens must be a positive number of tokens, got {self.max_tokens!r}")


@dataclass(frozen=True)
class Chunk:
    """One window of document `doc` (its position in the batch): `text == source[start:end]`."""

    doc: int
    index: int  # chunk number within its document, from 0
    start: int  # character offsets into the original document text
    end: int
    text: str


@dataclass(frozen=True)
class ChunkedBatch:
    """Chunks of a batch of documents, in document order, with their rows ready to embed."""

    chunks: list[Chunk]
    rows: list[Encoded]  # rows[i] is chunks[i] tokenized with its document's instruction
    n_docs: int
    truncated: frozenset[int]  # documents at least one of whose rows lost tokens to truncation

    @property
    def truncated_docs(self) -> int:
        return len(self.truncated)

    def doc_of_chunk(self) -> np.ndarray:
        """(C,) int64: the document each chunk belongs to."""
        return np.fromiter((c.doc for c in self.chunks), dtype=np.int64, count=len(self.chunks))


class TokenizingEmbedder(Protocol):
    """What chunking needs from `Embedder`."""

    tokenizer: InstructionTokenizer

    def tokenize(
        self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None
    ) -> list[Encoded]: ...


class Splitter:
    """Cuts texts into token windows for one tokenizer; budgets are cached per instruction."""

    def __init__(self, tokenizer: InstructionTokenizer, settings: ChunkSettings) -> None:
        self.settings = settings
        self.max_seq_length = tokenizer.max_seq_length
        self.do_lower_case = tokenizer.do_lower_case
        raw = Tokenizer.from_str(tokenizer.hf_tokenizer.backend_tokenizer.to_str())
        raw.no_padding()
        raw.no_truncation()
        self._raw = raw
        self._specials = len(raw.encode("", add_special_tokens=True).ids)
        self._budgets: dict[str | None, int] = {}

    def budget(self, instruction: str | None) -> int:
        """Text tokens one chunk may hold under `instruction`."""
        if instruction not in self._budgets:
            used = self._specials
            if instruction is not None and instruction.strip():
                stripped = instruction.strip()
                stripped = stripped.lower() if self.do_lower_case else stripped
                used += len(self._raw.encode(stripped, add_special_tokens=False).ids)
            budget = self.max_seq_length - used
            if self.settings.max_tokens is not None:
                budget = min(budget, self.settings.max_tokens)
            if budget < 2 * self.settings.overlap + 1 or budget < 8:
                raise ValueError(
                    f"chunks would hold {budget} text tokens (max_seq_length {self.max_seq_length}, "
                    f"{used} taken by special tokens and the instruction) with an overlap of "
                    f"{self.settings.overlap}: shorten the instruction, lower the overlap, or use a model "
                    "with a longer window"
                )
            self._budgets[instruction] = budget
        return self._budgets[instruction]

    def split(self, texts: Sequence[str], budgets: Sequence[int]) -> list[list[tuple[int, int]]]:
        """Character spans (start, end) of the chunks of each text, cut at `budgets[i]` tokens."""
        prepared = [t.lower() if self.do_lower_case and len(t.lower()) == len(t) else t for t in texts]
        encodings = self._raw.encode_batch(list(prepared), add_special_tokens=False)
        return [
            token_windows(enc.offsets, budget, self.settings.overlap)
            for enc, budget in zip(encodings, budgets, strict=True)
        ]


def token_windows(offsets: Sequence[tuple[int, int]], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans of windows of at most `budget` tokens sharing about `overlap` tokens.

    `offsets` are the tokens' (start, end) character offsets. Pure; tested against the rules in the
    module docstring.
    """
    n = len(offsets)
    if n == 0:
        return [(0, 0)]
    # A token starts a word when whitespace (or nothing) precedes it.
    word_start = [True] + [offsets[j][0] > offsets[j - 1][1] for j in range(1, n)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(n, start + budget)
        if end < n:
            # Cut before the last word start in the second half of the window, if there is one.
            for j in range(end, start + max(1, budget // 2) - 1, -1):
                if word_start[j]:
                    end = j
                    break
        spans.append((offsets[start][0], offsets[end - 1][1]))
        if end >= n:
            return spans
        target = max(start + 1, end - overlap)
        # Start the next window at a word start at or a little before `target`, never at or before `start`.
        nxt = target
        for j in range(target, max(start, target - 16), -1):
            if word_start[j]:
                nxt = j
                break
        start = nxt


def chunk_documents(
    embedder: TokenizingEmbedder, items: Sequence[Item], settings: ChunkSettings
) -> ChunkedBatch:
    """Tokenize documents as the encoder sees them; split those over the window when chunking is on.

    A document that fits is one chunk (the whole text) and its row is exactly what `embed` uses, so
    chunked and plain vectors of short documents are identical. Only over-long documents are cut.
    """
    rows = embedder.tokenize([as_input(item) for item in items])
    if not settings.enabled:
        chunks = [Chunk(i, 0, 0, len(item.text), item.text) for i, item in enumerate(items)]
        return ChunkedBatch(chunks, rows, len(items), frozenset(i for i, r in enumerate(rows) if r.truncated))
    splitter = Splitter(embedder.tokenizer, settings)
    per_doc: list[list[Chunk]] = [[Chunk(i, 0, 0, len(item.text), item.text)] for i, item in enumerate(items)]
    per_doc_rows: list[list[Encoded]] = [[row] for row in rows]
    long_docs = [i for i, row in enumerate(rows) if row.truncated]
    budgets = {i: splitter.budget(items[i].instruction) for i in long_docs}
    still_truncated: set[int] = set()
    for _ in range(_REPAIR_ROUNDS):
        if not long_docs:
            break
        spans = splitter.split([items[i].text for i in long_docs], [budgets[i] for i in long_docs])
        pieces = [
            (i, n, start, end)
            for i, doc_spans in zip(long_docs, spans, strict=True)
            for n, (start, end) in enumerate(doc_spans)
        ]
        new_rows = embedder.tokenize(
            [as_input(Item(items[i].instruction, items[i].text[s:e])) for i, _, s, e in pieces]
        )
        overflow: dict[int, int] = {}
        for i in long_docs:
            per_doc[i], per_doc_rows[i] = [], []
        for (i, n, s, e), row in zip(pieces, new_rows, strict=True):
            per_doc[i].append(Chunk(i, n, s, e, items[i].text[s:e]))
            per_doc_rows[i].append(row)
            if row.truncated:
                overflow[i] = max(overflow.get(i, 0), row.n_tokens - len(row.ids))
        long_docs = []
        for i, extra in overflow.items():
            smaller = budgets[i] - extra - 1
            if smaller < max(8, 2 * settings.overlap + 1):
                still_truncated.add(i)  # cannot cut finer; its overflow is counted below
                continue
            budgets[i] = smaller
            long_docs.append(i)
    still_truncated.update(long_docs)
    chunks = [c for doc in per_doc for c in doc]
    flat_rows = [r for doc in per_doc_rows for r in doc]
    return ChunkedBatch(chunks, flat_rows, len(items), frozenset(still_truncated))


def as_input(item: Item) -> str | tuple[str, str]:
    """An `Item` back in the form `Embedder.embed` / `tokenize` take."""
    return item.text if item.instruction is None else (item.instruction, item.text)


def pool_chunks(vectors: np.ndarray, doc_of_chunk: np.ndarray, n_docs: int, *, normalize: bool) -> np.ndarray:
    """One vector per document: the mean of its chunks' vectors, L2-normalised again when `normalize`.

    (C, D) float32, (C,) int -> (n_docs, D) float32. Pure; documents with one chunk keep its vector.
    """
    out = np.zeros((n_docs, vectors.shape[1]), dtype=np.float64)  # (N, D)
    np.add.at(out, doc_of_chunk, vectors.astype(np.float64))
    counts = np.bincount(doc_of_chunk, minlength=n_docs).astype(np.float64)  # (N,)
    if (counts == 0).any():
        raise ValueError("every document needs at least one chunk")
    out /= counts[:, None]
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)
