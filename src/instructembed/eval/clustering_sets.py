"""Fixed-seed cluster sets drawn MTEB's way from one-file-per-label corpora (RedditClustering,
StackExchangeClustering), and the compact form in which their ids are committed.

MTEB's RedditClustering and StackExchangeClustering are "25 sets of 10-50 classes, 100-1,000
sentences per class" drawn from Geigle et al.'s TWEAC question titles; its exact sets are a sample
that cannot be rebuilt from the raw files. `sample_sets` draws sets the same way with a fixed seed:
per set, k labels uniformly in [min_classes, max_classes] without repetition, then per label a size
uniformly in [min_per_class, max_per_class] (capped at the label's lines) and that many distinct lines.
The draw happens once (`scripts/build_clustering_sets.py`); the ids it chose are committed as packaged
files (`data/*-clustering-sets.json`), one bitmask over a label's lines per (set, label), so evaluation
never depends on a random generator's stream staying the same across numpy versions.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["ClusterSet", "decode_sets", "encode_sets", "sample_sets"]

#: one set: label -> sorted line indices (0-based) into that label's file
ClusterSet = dict[str, list[int]]


def sample_sets(
    sizes: Mapping[str, int],
    *,
    seed: int,
    n_sets: int = 25,
    min_classes: int = 10,
    max_classes: int = 50,
    min_per_class: int = 100,
    max_per_class: int = 1000,
) -> list[ClusterSet]:
    """`n_sets` sets over the labels of `sizes` (label -> number of lines); deterministic for a seed."""
    labels = sorted(sizes)
    if len(labels) < min_classes:
        raise ValueError(f"need at least {min_classes} labels to draw sets, got {len(labels)}")
    rng = np.random.default_rng(seed)
    out: list[ClusterSet] = []
    for _ in range(n_sets):
        k = int(rng.integers(min_classes, min(max_classes, len(labels)) + 1))
        chosen = sorted(labels[i] for i in rng.choice(len(labels), size=k, replace=False))
        one: ClusterSet = {}
        for label in chosen:
            n = min(int(rng.integers(min_per_class, max_per_class + 1)), sizes[label])
            one[label] = sorted(int(i) for i in rng.choice(sizes[label], size=n, replace=False))
        out.append(one)
    return out


def _mask(lines: Sequence[int], total: int) -> str:
    bits = np.zeros(total, dtype=bool)
    bits[list(lines)] = True
    return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


def _unmask(text: str, total: int) -> list[int]:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:total]
    return [int(i) for i in np.flatnonzero(bits)]


def encode_sets(sets: Sequence[ClusterSet], sizes: Mapping[str, int], meta: Mapping[str, object]) -> str:
    """JSON text: `meta` (how the sets were drawn), each used label's line count, one bitmask per label."""
    used = sorted({label for one in sets for label in one})
    doc = {
        **meta,
        "lines": {label: sizes[label] for label in used},
        "sets": [{label: _mask(lines, sizes[label]) for label, lines in one.items()} for one in sets],
    }
    return json.dumps(doc, indent=0, sort_keys=False) + "\n"


def decode_sets(text: str) -> tuple[list[ClusterSet], dict[str, int]]:
    """(sets, label -> the line count the ids were drawn against) from `encode_sets`'s JSON."""
    doc = json.loads(text)
    sizes = {str(k): int(v) for k, v in doc["lines"].items()}
    sets = [{label: _unmask(mask, sizes[label]) for label, mask in one.items()} for one in doc["sets"]]
    return sets, sizes
