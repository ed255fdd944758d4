"""Helpers for the server tests (a unique module name, so it never clashes with another conftest)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from instructembed.server import ServerSettings, create_app
from instructembed.server.testing import ThreadedServer


@dataclass(frozen=True)
class FakeRow:
    item: str | tuple[str, str]
    n_tokens: int


@dataclass(frozen=True)
class FakeToken:
    id: int
    text: str
    special: bool
    start: int | None
    stop: int | None


class FakeEmbedder:
    """Deterministic: each row depends only on its own (instruction, text), like the real thing.

    Tokens = words + 2 (special tokens), instruction words included; `delay` seconds per
    `embed_tokenized` call makes batching and cancellation observable.
    """

    def __init__(
        self, dimension: int = 8, max_seq_length: int = 32, delay: float = 0.0, normalized: bool = True
    ) -> None:
        self.dimension = dimension
        self.max_seq_length = max_seq_length
        self.name = "fake-embedder"
        self.normalized = normalized
        self.delay = delay
        self.calls: list[list[str | tuple[str, str]]] = []
        self.lock = threading.Lock()
        self.busy: set[str] = set()

    @staticmethod
    def _pair(item: object) -> tuple[str | None, str]:
        if isinstance(item, str):
            return None, item
        if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(v, str) for v in item):
            return item[0], item[1]
        raise TypeError(f"bad input {item!r}")

    def _enter(self, method: str) -> None:
        # The server promises never to run one method from two threads at once.
        with self.lock:
            if method in self.busy:
                raise RuntimeError(f"FakeEmbedder.{method} called from two threads at once")
            self.busy.add(method)

    def _leave(self, method: str) -> None:
        with self.lock:
            self.busy.discard(method)

    def tokenize(
        self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None
    ) -> list[FakeRow]:
        self._enter("tokenize")
        try:
            rows = []
            for item in inputs:
                instr, text = self._pair(item)
                count = len(text.split()) + (len(instr.split()) if instr else 0) + 2
                rows.append(FakeRow(item, count))
            return rows
        finally:
            self._leave("tokenize")

    def embed_tokenized(self, encoded: Sequence[FakeRow]) -> np.ndarray:
        self._enter("embed_tokenized")
        try:
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                self.calls.append([row.item for row in encoded])
            vectors = []
            for row in encoded:
                instr, text = self._pair(row.item)
                if text == "__explode__":
                    raise ValueError("the fake refuses __explode__")
                digest = hashlib.sha256(f"{instr}\x00{text}".encode()).digest()
                vector = (
                    np.frombuffer(digest[: 4 * self.dimension], dtype=np.uint8)[: self.dimension].astype(
                        np.float32
                    )
                    - 127.5
                )
                if self.normalized:
                    vector = vector / np.linalg.norm(vector)
                vectors.append(vector)
            return np.asarray(vectors, dtype=np.float32).reshape(len(vectors), self.dimension)
        finally:
            self._leave("embed_tokenized")

    def token_details(
        self,
        inputs: Sequence[str | tuple[str, str]],
        *,
        add_special_tokens: bool = True,
        truncate: bool = True,
    ) -> list[list[FakeToken]]:
        """Words as tokens (instruction words first), [CLS]/[SEP] around them, like a BERT tokenizer."""
        self._enter("tokenize")  # runs in the tokenizer thread, never beside tokenize
        try:
            rows = []
            for item in inputs:
                instr, text = self._pair(item)
                joined = f"{instr} {text}" if instr else text
                words, position = [], 0
                for word in joined.split():
                    start = joined.index(word, position)
                    position = start + len(word)
                    words.append(FakeToken(len(word), word, False, start, position))
                if truncate:
                    words = words[: self.max_seq_length - (2 if add_special_tokens else 0)]
                if add_special_tokens:
                    words = [
                        FakeToken(101, "[CLS]", True, None, None),
                        *words,
                        FakeToken(102, "[SEP]", True, None, None),
                    ]
                rows.append(words)
            return rows
        finally:
            self._leave("tokenize")

    def embed(self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None) -> np.ndarray:
        """The vectors the server should return for `inputs` (tests compare against these)."""
        return self.embed_tokenized(self.tokenize(inputs))


def start_server(embedder: object, settings: ServerSettings | None = None) -> ThreadedServer:
    server = ThreadedServer(create_app(embedder, settings or ServerSettings()))  # type: ignore[arg-type]
    server.start()
    return server
