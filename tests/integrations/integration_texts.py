"""Texts and the reference every framework integration test compares against."""

from __future__ import annotations

import numpy as np

DOCS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.",
    "The Python programming language was created by Guido van Rossum.",
    "Mount Everest, on the border of Nepal and China, is the highest mountain above sea level.",
    "A quick brown fox jumps over the lazy dog.",
]
#: (query, index of the document that answers it)
QUERIES = [
    ("Who created Python?", 2),
    ("Which tower was finished in Paris in 1889?", 0),
    ("How do plants make oxygen from light?", 1),
]


def expected(embedder: object, texts: list[str], instruction: str) -> np.ndarray:
    """What `Embedder.embed` gives for these (instruction, text) pairs: the reference."""
    return embedder.embed([(instruction, t) for t in texts])  # type: ignore[attr-defined, no-any-return]
