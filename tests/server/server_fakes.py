"""Helpers for the server tests (a unique module name, so it never clashes with another conftest)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence

import numpy as np

from instructembed.server import ServerSettings, create_app
from instructembed.server.testing import ThreadedServer


class FakeEmbedder:
    """Deterministic: each row depends only on its own (instruction, text), like the real thing.

    Tokens = words + 2 (special tokens), instruction words included; `delay` seconds per embed call
    makes batching and cancellation observable.
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

    def embed(self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None) -> np.ndarray:
        self._enter("embed")
        try:
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                self.calls.append(list(inputs))
            rows = []
            for item in inputs:
                instr, text = self._pair(item)
                if text == "__explode__":
                    raise ValueError("the fake refuses __explode__")
                digest = hashlib.sha256(f"{instr}\x00{text}".encode()).digest()
                row = (
                    np.frombuffer(digest[: 4 * self.dimension], dtype=np.uint8)[: self.dimension].astype(
                        np.float32
                    )
                    - 127.5
                )
                if self.normalized:
                    row = row / np.linalg.norm(row)
                rows.append(row)
            return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dimension)
        finally:
            self._leave("embed")

    def token_counts(
        self, inputs: Sequence[str | tuple[str, str]], *, instruction: str | None = None
    ) -> list[int]:
        self._enter("token_counts")
        try:
            counts = []
            for item in inputs:
                instr, text = self._pair(item)
                counts.append(len(text.split()) + (len(instr.split()) if instr else 0) + 2)
            return counts
        finally:
            self._leave("token_counts")


def start_server(embedder: object, settings: ServerSettings | None = None) -> ThreadedServer:
    server = ThreadedServer(create_app(embedder, settings or ServerSettings()))  # type: ignore[arg-type]
    server.start()
    return server
