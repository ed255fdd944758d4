"""Token-aware chunking of long documents, with the model's own tokenizer.

A document that fits the model's window is one chunk: the whole text, embedded exactly as `embed`
would. A longer one (the default scheme, chosen on SciFact dev: docs/index.md) becomes

- chunk 0, the *head*: the document truncated to the window, its row exactly `embed`'s, so an index
  ranks at least what truncation ranks (search blends a document's head score with its best
  chunk's: index/search.py);
- windows over the rest of the text: the first starts `overlap` tokens before the head ends, each
  holds at most `budget` text tokens, consecutive windows sharing about `overlap` tokens. With
  `context="first-sentence"` each is embedded with the document's first sentence (at most 32
  tokens) in front (its budget shrinks by as much); on SciFact dev that helped max pooling and hurt
  the default blend, so it is off by default.

    budget = max_seq_length - (special tokens) - (tokens of the stripped instruction)

With `head=False` the windows start at the text's start (the scheme before the head existed).
Cuts fall where a word starts (whitespace before the token) when one lies in the second half of the
window, so chunks do not end mid-word; a single "word" longer than the window (a URL, a base64 blob)
is cut where it must be. Each chunk keeps its character span in the original text
(`text[start:end]`, without any context that was prepended to embed it).

Tokenizing instruction + chunk together can differ by a token or two from the separate counts
(merges across the join); every chunk is therefore tokenized as the encoder will see it, and a
document whose chunk still overflows is re-cut with a smaller budget. What still does not fit
after that (pathological tokenizers) is truncated *and counted*, never silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from enum import Enum
from typing import Any, Protocol

import numpy as np
from tokenizers import Tokenizer

from instructembed.inputs import Item
from instructembed.tokenize import Encoded, InstructionTokenizer

#: How often a document is re-cut with a smaller budget before its overflow is accepted (and counted).
_REPAIR_ROUNDS = 4


class ChunkPool(str, Enum):
    """How chunk scores become one per document (search)."""

    HEAD = "head"  # HEAD_WEIGHT * the head's score + (1 - HEAD_WEIGHT) * the best chunk's
    MAX = "max"  # the best chunk's
    MEAN = "mean"  # the mean over all chunks


#: The head's share of a document's score under ChunkPool.HEAD (1 = truncation, 0 = max pooling).
#: Chosen on SciFact dev: docs/index.md, Long documents.
HEAD_WEIGHT = 0.5


class VectorPool(str, Enum):
    """How chunk vectors become one vector per document (`embed --chunk-pool`)."""

    MEAN = "mean"


class ChunkContext(str, Enum):
    """What is prepended to every window after the head when it is embedded."""

    NONE = "none"
    FIRST_SENTENCE = "first-sentence"  # the document's first sentence, at most CONTEXT_TOKENS tokens


#: The most tokens a window's context takes (never more than a quarter of the window).
CONTEXT_TOKENS = 32


class LegacyChunkingError(ValueError):
    """Settings recorded before the head and context existed (windows from the start, max over them)."""


@dataclass(frozen=True)
class ChunkSettings:
    """How long documents are split. `enabled=False` embeds each document whole (truncated, counted)."""

    enabled: bool = True
    overlap: int = 32  # text tokens shared by consecutive chunks (approximately: cuts snap to words)
    max_tokens: int | None = None  # text tokens per chunk; None = as many as the model's window holds
    head: bool = True  # chunk 0 of a long document = the document truncated to the window (`embed`'s row)
    context: str = ChunkContext.NONE.value  # what is prepended to the windows after the head

    def __post_init__(self) -> None:
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or self.overlap < 0:
            raise ValueError(f"chunk overlap must be a non-negative number of tokens, got {self.overlap!r}")
        if self.max_tokens is not None and (isinstance(self.max_tokens, bool) or self.max_tokens < 1):
            raise ValueError(f"chunk max_tokens must be a positive number of tokens, got {self.max_tokens!r}")
        if not isinstance(self.head, bool):
            raise ValueError(f"chunk head must be true or false, got {self.head!r}")
        allowed = [c.value for c in ChunkContext]
        if self.context not in allowed:
            raise ValueError(f"chunk context must be one of {', '.join(allowed)}; got {self.context!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChunkSettings:
        """Settings as recorded (an index's or a Ray job's fingerprint).

        Settings recorded before `head` and `context` existed describe the old scheme (windows from
        the start, no head): chunked, they raise LegacyChunkingError (those vectors are not what
        this version makes); unchunked, the vectors are the same and the settings read as today's.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown chunk settings {', '.join(unknown)}")
        if not {"head", "context"} <= set(data) and data.get("enabled", True):
            raise LegacyChunkingError(
                "its documents were chunked by the old scheme (windows from the start of the text, "
                "without the truncated head), which ranked below plain truncation on SciFact; this "
                "version cannot search or extend those vectors"
            )
        return cls(**dict(data))


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
        self._budgets: dict[str | None, tuple[int, int]] = {}

    def window(self, instruction: str | None) -> int:
        """Text tokens the model's window holds under `instruction` (what the truncated head keeps)."""
        self.budget(instruction)
        return self._budgets[instruction][1]

    def budget(self, instruction: str | None) -> int:
        """Text tokens one chunk may hold under `instruction`."""
        if instruction not in self._budgets:
            used = self._specials
            if instruction is not None and instruction.strip():
                stripped = instruction.strip()
                stripped = stripped.lower() if self.do_lower_case else stripped
                used += len(self._raw.encode(stripped, add_special_tokens=False).ids)
            window = budget = self.max_seq_length - used
            if self.settings.max_tokens is not None:
                budget = min(budget, self.settings.max_tokens)
            if budget < 2 * self.settings.overlap + 1 or budget < 8:
                raise ValueError(
                    f"chunks would hold {budget} text tokens (max_seq_length {self.max_seq_length}, "
                    f"{used} taken by special tokens and the instruction) with an overlap of "
                    f"{self.settings.overlap}: shorten the instruction, lower the overlap, or use a model "
                    "with a longer window"
                )
            self._budgets[instruction] = (budget, window)
        return self._budgets[instruction][0]

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Each text's tokens as (start, end) character offsets (no special tokens)."""
        prepared = [t.lower() if self.do_lower_case and len(t.lower()) == len(t) else t for t in texts]
        return [list(enc.offsets) for enc in self._raw.encode_batch(list(prepared), add_special_tokens=False)]

    def split(
        self, texts: Sequence[str], budgets: Sequence[int], firsts: Sequence[int] | None = None
    ) -> list[list[tuple[int, int]]]:
        """Character spans (start, end) of the chunks of each text, cut at `budgets[i]` tokens,
        the first window starting at token `firsts[i]` (default 0)."""
        starts = firsts if firsts is not None else [0] * len(texts)
        return [
            token_windows(offsets, budget, self.settings.overlap, first)
            for offsets, budget, first in zip(self.offsets(texts), budgets, starts, strict=True)
        ]


def _word_starts(offsets: Sequence[tuple[int, int]]) -> list[bool]:
    # A token starts a word when whitespace (or nothing) precedes it.
    return [True] + [offsets[j][0] > offsets[j - 1][1] for j in range(1, len(offsets))]


def token_windows(
    offsets: Sequence[tuple[int, int]], budget: int, overlap: int, first: int = 0
) -> list[tuple[int, int]]:
    """Character spans of windows of at most `budget` tokens sharing about `overlap` tokens.

    `offsets` are the tokens' (start, end) character offsets; the first window starts at token
    `first` (at the word start at or a little before it). Pure; tested against the rules in the
    module docstring.
    """
    n = len(offsets)
    if n == 0:
        return [(0, 0)]
    word_start = _word_starts(offsets)
    spans: list[tuple[int, int]] = []
    start = _snap(word_start, min(max(first, 0), n - 1), -1)
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
        start = _snap(word_start, max(start + 1, end - overlap), start)


def _snap(word_start: Sequence[bool], target: int, floor: int) -> int:
    """The word start at or a little (< 16 tokens) before `target`, never at or before `floor`."""
    for j in range(target, max(floor, target - 16), -1):
        if word_start[j]:
            return j
    return target


#: A sentence ends at ., ! or ? followed by whitespace.
_SENTENCE_END = re.compile(r"[.!?](?=\s)")


def context_end(text: str, offsets: Sequence[tuple[int, int]], max_tokens: int) -> int:
    """Where a document's context ends (a character offset): after its first sentence, or after at
    most `max_tokens` tokens (cut where a word starts), whichever comes first. Pure."""
    if not offsets or max_tokens < 1:
        return 0
    found = _SENTENCE_END.search(text)
    sentence = found.end() if found else len(text)
    if len(offsets) <= max_tokens or offsets[max_tokens][0] >= sentence:
        return min(sentence, offsets[-1][1])
    cut = _snap(_word_starts(offsets), max_tokens, 0)  # the first token left out
    return offsets[cut - 1][1]


def chunk_documents(
    embedder: TokenizingEmbedder, items: Sequence[Item], settings: ChunkSettings
) -> ChunkedBatch:
    """Tokenize documents as the encoder sees them; split those over the window when chunking is on.

    A document that fits is one chunk (the whole text) and its row is exactly what `embed` uses, so
    chunked and plain vectors of short documents are identical. Only over-long documents are cut;
    with `settings.head` their chunk 0 is their (truncated) `embed` row too.
    """
    rows = embedder.tokenize([as_input(item) for item in items])
    if not settings.enabled:
        chunks = [Chunk(i, 0, 0, len(item.text), item.text) for i, item in enumerate(items)]
        return ChunkedBatch(chunks, rows, len(items), frozenset(i for i, r in enumerate(rows) if r.truncated))
    splitter = Splitter(embedder.tokenizer, settings)
    per_doc: list[list[Chunk]] = [[Chunk(i, 0, 0, len(item.text), item.text)] for i, item in enumerate(items)]
    per_doc_rows: list[list[Encoded]] = [[row] for row in rows]
    long_docs = [i for i, row in enumerate(rows) if row.truncated]
    offsets = dict(zip(long_docs, splitter.offsets([items[i].text for i in long_docs]), strict=True))
    budgets = {i: splitter.budget(items[i].instruction) for i in long_docs}
    firsts = dict.fromkeys(long_docs, 0)
    prefixes = dict.fromkeys(long_docs, "")
    for i in long_docs:
        text, tokens = items[i].text, offsets[i]
        if settings.head:
            kept = min(splitter.window(items[i].instruction), len(tokens))  # what truncation keeps
            per_doc[i] = [Chunk(i, 0, 0, tokens[kept - 1][1], text[: tokens[kept - 1][1]])]
            # `embed`'s row, cut to the window on purpose: this chunk is not a truncation to count
            per_doc_rows[i] = [replace(rows[i], truncated=False, n_tokens=len(rows[i].ids))]
            firsts[i] = max(0, kept - settings.overlap)
        if settings.context == ChunkContext.FIRST_SENTENCE.value:
            end = context_end(text, tokens, min(CONTEXT_TOKENS, budgets[i] // 4))
            used = sum(1 for _, e in tokens if e <= end) + 1  # its tokens, and one for a merge at the join
            if text[:end].strip() and budgets[i] - used >= max(8, 2 * settings.overlap + 1):
                prefixes[i] = text[:end].strip()
                budgets[i] -= used
    heads = {i: (per_doc[i], per_doc_rows[i]) for i in long_docs} if settings.head else {}
    skip = 1 if settings.head else 0  # window numbers start after the head
    still_truncated: set[int] = set()
    for _ in range(_REPAIR_ROUNDS):
        if not long_docs:
            break
        spans = splitter.split(
            [items[i].text for i in long_docs],
            [budgets[i] for i in long_docs],
            [firsts[i] for i in long_docs],
        )
        pieces = [
            (i, n + skip, start, end)
            for i, doc_spans in zip(long_docs, spans, strict=True)
            for n, (start, end) in enumerate(doc_spans)
        ]
        windows = [
            Item(items[i].instruction, _with_context(prefixes[i], items[i].text[s:e]))
            for i, _, s, e in pieces
        ]
        new_rows = embedder.tokenize([as_input(w) for w in windows])
        overflow: dict[int, int] = {}
        for i in long_docs:
            head_chunks, head_rows = heads.get(i, ([], []))
            per_doc[i], per_doc_rows[i] = list(head_chunks), list(head_rows)
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


def _with_context(prefix: str, window: str) -> str:
    return f"{prefix} {window}" if prefix else window


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
