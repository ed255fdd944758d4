"""`instructembed embed --engine ray`: the command-line edge of the sharded Ray job.

Options are validated here, before Ray is started or joined; errors that Ray wraps on their way back
from a worker (a malformed line in some shard) are unwrapped into the one line the user reads.
"""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from instructembed.chunking import ChunkSettings
from instructembed.scale.batches import Columns, ModelOptions


class Engine(str, Enum):
    """Where `embed` runs: this process, or a Ray cluster (`--address`, or a local Ray runtime)."""

    LOCAL = "local"
    RAY = "ray"


#: Options of `embed` that mean nothing to the Ray job, with what to do instead.
UNSUPPORTED = {
    "format": "the format comes from each file's suffix (.jsonl, .csv, .tsv, .parquet)",
    "skip_blank": "plain-text input is not read by the Ray job; use JSONL",
    "overwrite": "a rerun continues the job in --output; give a new directory to start over",
    "chunk_pool": "the job writes one row per chunk (id, doc, chunk, start, end); average them per `doc` "
    "yourself, or use `embed --chunk --chunk-pool mean` in one process",
    "prompt_name": "pass the prompt itself with --instruction (`instructembed info MODEL` lists them)",
}


def ray_embed(
    *,
    input: Path,
    output: Path,
    model: str,
    instruction: str | None,
    field: str,
    id_field: str,
    instruction_field: str | None,
    chunk_size: int,
    max_seq_length: int | None,
    allow_pickle: bool,
    device: str | None,
    backend: str | None,
    quantize: str | None,
    dtype: str | None,
    threads: int | None,
    progress: bool,
    address: str | None,
    actors: int | None,
    cpus_per_actor: float,
    gpus_per_actor: float,
    chunking: ChunkSettings | None,
    unsupported: dict[str, Any],
) -> None:
    """Run the job, print what it did (shards embedded and skipped, rows) on stderr."""
    given = [name for name, value in unsupported.items() if value]
    if given:
        name = given[0]
        raise ValueError(f"--{name.replace('_', '-')} does not apply to --engine ray: {UNSUPPORTED[name]}")
    if output.suffix.lower() in (".npy", ".parquet"):
        raise ValueError(
            f"--engine ray writes a directory of parquet shards and a manifest; --output {output} looks "
            "like a file name: give a directory"
        )
    if gpus_per_actor > 0 and device is None:
        device = "cuda"
    from instructembed.scale.job import JobConfig, connect, run_job

    config = JobConfig(
        input=str(input),
        output=output,
        options=ModelOptions(
            model,
            backend=backend,
            dtype=dtype,
            quantize=quantize,
            device=device,
            threads=threads,
            max_seq_length=max_seq_length,
            allow_pickle=allow_pickle,
        ),
        columns=Columns(text=field, id=id_field, instruction=instruction_field),
        instruction=instruction,
        chunking=chunking,
        actors=actors,
        cpus_per_actor=cpus_per_actor,
        gpus_per_actor=gpus_per_actor,
        part_rows=chunk_size,
    )
    from instructembed.scale.shards import find_inputs

    find_inputs(config.input)  # a wrong --input fails before a cluster is joined
    connect(address)
    try:
        report = run_job(config, progress=progress)
    finally:
        _shutdown()
    typer.echo(
        f"embedded {report.embedded} shard(s) ({report.rows} rows, {report.vectors} vectors), "
        f"skipped {report.skipped} complete shard(s); {report.total_rows} rows in {report.shards} "
        f"shard(s) under {output} ({report.seconds:.1f} s)",
        err=True,
    )


def _shutdown() -> None:
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        logging.getLogger(__name__).info("disconnecting from Ray")
        ray.shutdown()
