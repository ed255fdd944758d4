"""Embedding past one machine on a Ray cluster, with the same vectors as in one process.

- `batches.py`  `EmbedBatches` (the Ray Data `map_batches` callable: one model per actor),
                `ModelOptions`, `Columns`; chunks as `embed --chunk` does; imports no Ray
- `shards.py`   the sharded job's files: inputs, output shards written atomically, the manifest and
                its fingerprint; imports no Ray
- `job.py`      `connect`, `embed_dataset` (a Dataset in, with an embedding column out) and `run_job`
                (the resumable job of `instructembed embed --engine ray`); Ray is imported here
- `cli.py`      the command-line edge of the job

Ray is an optional extra (`pip install 'instructembed[ray]'`); importing this package needs no Ray,
using `job.py` without it says which extra to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from instructembed.chunking import ChunkSettings
from instructembed.scale.batches import CHUNK_COLUMNS, Columns, EmbedBatches, ModelOptions

if TYPE_CHECKING:
    from instructembed.scale.job import JobConfig, JobReport, connect, embed_dataset, run_job

__all__ = [
    "CHUNK_COLUMNS",
    "ChunkSettings",
    "Columns",
    "EmbedBatches",
    "JobConfig",
    "JobReport",
    "ModelOptions",
    "connect",
    "embed_dataset",
    "run_job",
]

_JOB = ("JobConfig", "JobReport", "connect", "embed_dataset", "run_job")


def __getattr__(name: str) -> Any:
    """The Ray side, imported on first use (PEP 562)."""
    if name in _JOB:
        from instructembed.scale import job

        return getattr(job, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
