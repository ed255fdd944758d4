"""Helpers shared by the scale/ tests: Ray or a skip (a failure in CI), and JSONL inputs."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

WORDS = [
    *[
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "passages",
        "about",
        "science",
        "history",
    ],
    *["and", "music", "are", "embedded", "on", "a", "small", "cluster", "of", "two", "nodes"],
]


def need_ray() -> Any:
    """`ray`, or skip locally / fail in CI (`make test` installs the [ray] extra)."""
    try:
        import ray
        import ray.data
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("ray is not installed; `make test` installs the [ray] extra")
        pytest.skip("ray is not installed (pip install 'instructembed[ray]')")
    return ray


def write_jsonl(path: Path, files: int, rows: int, words: int = 12, seed: int = 0) -> list[str]:
    """`files` JSONL files of `rows` records {id, text}; returns every id in file order."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    ids = []
    for f in range(files):
        with (path / f"part-{f:02d}.jsonl").open("w", encoding="utf-8") as fh:
            for i in range(rows):
                ident = f"{f}-{i}"
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, words)))
                fh.write(json.dumps({"id": ident, "text": text}) + "\n")
                ids.append(ident)
    return ids
