"""Ray Data on top of `Embedder`: a dataset in, the same dataset with embeddings out, and the
resumable sharded job behind `instructembed embed --engine ray`. Ray is imported only in scale/.

Ray does the scheduling: the model lives in a fixed pool of actors (`ActorPoolStrategy`), each with
its CPUs (and GPUs when asked); a failed actor is restarted and its tasks retried by Ray Data's own
defaults for actor pools (`max_restarts=-1`, `max_task_retries=-1`; a task whose worker or node
died is resubmitted), and `DataContext.max_errored_blocks = 0` so no failed block is ever dropped.
The driver only describes the work and keeps the manifest.

Exactly once: one input file is one shard, written under a name that only depends on the input's
path, to a temporary file renamed when whole. A task that Ray retries rewrites the same name; the
driver records each shard once; a rerun skips what is recorded (`shards.py`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instructembed.chunking import ChunkSettings
from instructembed.errors import InputFileError, InstructEmbedError, MissingExtraError
from instructembed.inputs import Item
from instructembed.scale.batches import Columns, EmbedBatches, ModelOptions, embed_items
from instructembed.scale.shards import (
    SHARDS,
    InputShard,
    Manifest,
    ShardFingerprint,
    ShardRecord,
    ShardWriter,
    chunking_json,
    clean_temporaries,
    complete_record,
    find_inputs,
    fingerprint_of,
    iter_shard,
    read_manifest,
    write_manifest,
)

log = logging.getLogger(__name__)
#: Seconds to wait for a TCP connection to `--address` before saying it cannot be reached.
CONNECT_TIMEOUT_S = 5.0
#: The driver rewrites the manifest at most this often (and always at the end).
MANIFEST_EVERY_S = 5.0


def require_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingExtraError("ray", "ray[data]") from None
    return ray


# ---------------------------------------------------------------------------------------- cluster
def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail within `timeout_s` when nothing listens at `address` (Ray itself retries for minutes)."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--address {address!r} must be HOST:PORT (e.g. 10.0.0.1:6379) or 'auto'")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InstructEmbedError(
            f"cannot reach a Ray cluster at {address} ({reason}); start one with "
            "`ray start --head --port PORT` on the head node, or check --address"
        ) from None


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
) -> None:
    """Join the Ray cluster at `address` ('auto' = the one on this machine), or start a local one.

    Does nothing when Ray is already initialised in this process (the caller's own `ray.init`).
    """
    ray = require_ray()
    if ray.is_initialized():
        return
    if address is not None and address != "auto":
        check_reachable(address)
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if address is None:
        kwargs |= {"num_cpus": num_cpus, "object_store_memory": object_store_memory}
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise InstructEmbedError(f"cannot join the Ray cluster at {address}: {exc}") from None


def _data_context(progress: bool) -> Any:
    ray = require_ray()
    ctx = ray.data.DataContext.get_current()
    ctx.max_errored_blocks = 0  # a failed block fails the job: rows are never silently dropped
    ctx.enable_progress_bars = progress
    return ctx


def _pool_size(
    actors: int | None, cpus_per_actor: float, gpus_per_actor: float, work: int, spare_cpus: float = 0
) -> int:
    """`actors`, or as many as the cluster's CPUs (GPUs when asked) hold, at most one per work item.

    `spare_cpus` stay free for Ray Data's read tasks: a pool holding every CPU starves the reads
    that feed it, and the dataset waits forever.
    """
    resources = require_ray().cluster_resources()
    if actors is not None:
        if actors < 1:
            raise ValueError(f"--actors must be at least 1, got {actors}")
        cpus = resources.get("CPU", 0)
        if spare_cpus and actors * cpus_per_actor > cpus - spare_cpus:
            raise ValueError(
                f"{actors} actor(s) x {cpus_per_actor:g} CPUs leave none of the cluster's {cpus:g} CPUs "
                "for reading the files, and the job would wait forever: use fewer actors, or read the "
                "files into a Dataset yourself"
            )
        return actors
    if gpus_per_actor > 0:
        fit = int(resources.get("GPU", 0) // gpus_per_actor)
        if fit < 1:
            raise InstructEmbedError(
                f"the cluster has {resources.get('GPU', 0):g} GPUs; {gpus_per_actor:g} per actor fits none"
            )
    else:
        fit = int((resources.get("CPU", 1) - spare_cpus) // max(cpus_per_actor, 1e-9))
    return max(1, min(fit, work))


def _compute(size: int, in_flight: int | None = None) -> Any:
    ray = require_ray()
    return ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=in_flight)


def _resources(cpus_per_actor: float, gpus_per_actor: float) -> dict[str, Any]:
    out: dict[str, Any] = {"num_cpus": cpus_per_actor}
    if gpus_per_actor > 0:
        out["num_gpus"] = gpus_per_actor
    return out


def _with_threads(options: ModelOptions, cpus_per_actor: float) -> ModelOptions:
    if options.threads is not None or (options.device or "cpu") != "cpu":
        return options
    return dataclasses.replace(options, threads=max(1, int(cpus_per_actor)))


# ---------------------------------------------------------------------------------------- datasets
def embed_dataset(
    data: Any,
    options: ModelOptions,
    *,
    columns: Columns | None = None,
    instruction: str | None = None,
    chunking: ChunkSettings | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    batch_rows: int = 1024,
    preserve_order: bool = False,
) -> Any:
    """A Ray `Dataset` (or parquet / JSONL paths) -> the dataset with an embedding column (lazy).

    Each of `actors` actors loads the model once; `batch_rows` rows per call are cut into
    token-budget batches as `Embedder.embed` does. Reading paths, the actors leave one CPU of the
    cluster to Ray's read tasks (a pool holding every CPU would starve them). Row order is Ray Data's: any order unless
    `preserve_order=True` (then input order, at some cost in pipelining); the id column travels with
    every row. Write the result with Ray's writers (`.write_parquet(...)`), or iterate it.
    """
    require_ray()
    from_paths = isinstance(data, (str, Path)) or (
        isinstance(data, Sequence) and bool(data) and all(isinstance(d, (str, Path)) for d in data)
    )
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    spare = 1.0 if from_paths and gpus_per_actor == 0 else 0.0  # the reads need a CPU of their own
    size = _pool_size(actors, cpus_per_actor, gpus_per_actor, work=1 << 30, spare_cpus=spare)
    if from_paths:
        data = read_paths(data)
    out = data.map_batches(
        EmbedBatches,
        fn_constructor_kwargs={
            "options": _with_threads(options, cpus_per_actor),
            "columns": columns,
            "instruction": instruction,
            "chunking": chunking,
        },
        batch_size=batch_rows,
        compute=_compute(size),
        **_resources(cpus_per_actor, gpus_per_actor),
    )
    out.context.max_errored_blocks = 0  # this dataset's context only: a failed block is an error
    if preserve_order:
        out.context.execution_options.preserve_order = True
    return out


def read_paths(paths: str | Path | Sequence[str | Path]) -> Any:
    """A Ray Dataset over parquet or JSONL files (a directory, a glob, or a list, one format)."""
    ray = require_ray()
    shards = [s for p in ([paths] if isinstance(paths, (str, Path)) else paths) for s in find_inputs(str(p))]
    suffixes = {Path(s.path).suffix.lower() for s in shards}
    files = [s.path for s in shards]
    if suffixes == {".parquet"}:
        return ray.data.read_parquet(files)
    if suffixes <= {".jsonl", ".ndjson"}:
        return ray.data.read_json(files, lines=True)
    raise InputFileError(
        f"embed_dataset reads parquet or JSONL files of one format, got {', '.join(sorted(suffixes))}; "
        "read others with ray.data yourself and pass the Dataset"
    )


# ---------------------------------------------------------------------------------------- the job
class ShardWorker:
    """The `map_batches` callable of the job: each call gets input shards (one per task), embeds each
    in parts through `embed_items` and writes its output shard; returns the shard records."""

    def __init__(
        self,
        options: ModelOptions,
        columns: Columns,
        instruction: str | None,
        chunking: ChunkSettings | None,
        out_dir: str,
        expected: ShardFingerprint,
        part_rows: int,
    ) -> None:
        self.embedder = options.load()
        self.columns, self.instruction, self.chunking = columns, instruction, chunking
        self.out_dir, self.expected, self.part_rows = Path(out_dir), expected, part_rows
        here = fingerprint_of(self.embedder, options.model, columns, instruction, chunking_json(chunking))
        self.differences = expected.differences(here)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.differences:  # e.g. another version of the model installed on this node
            raise InstructEmbedError(
                f"the model on node {socket.gethostname()} differs from the driver's: "
                + "; ".join(self.differences)
            )
        records = []
        for path, rel, size, mtime in zip(
            batch["path"], batch["rel"], batch["size"], batch["mtime_ns"], strict=True
        ):
            shard = InputShard(str(path), str(rel), int(size), int(mtime))
            records.append(json.dumps(dataclasses.asdict(self._one(shard))))
        return {"record": np.asarray(records, dtype=object)}

    def _one(self, shard: InputShard) -> ShardRecord:
        sha = self.expected.sha256()
        chunked = chunking_json(self.chunking) is not None
        writer = ShardWriter(self.out_dir, shard, self.embedder.dimension, chunked, sha)
        try:
            for ids, items in iter_shard(shard, self.columns, self.part_rows):
                if self.instruction is not None:  # one instruction for every row
                    items = [Item(self.instruction, item.text) for item in items]
                writer.write(ids, embed_items(self.embedder, items, self.chunking))
            return writer.finish()
        except BaseException:
            writer.abort()
            raise


@dataclass(frozen=True)
class JobConfig:
    """One `embed --engine ray` job."""

    input: str  # a directory, a file or a glob of .jsonl / .csv / .tsv / .parquet files
    output: Path
    options: ModelOptions
    columns: Columns = field(default_factory=Columns)
    instruction: str | None = None
    chunking: ChunkSettings | None = None  # `embed --chunk`'s splitting of long documents; None: truncate
    actors: int | None = None  # default: as many as the cluster's CPUs (or GPUs) hold
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    part_rows: int = 4096  # rows read, embedded and written at a time within a shard

    def __post_init__(self) -> None:
        if self.instruction is not None and self.columns.instruction is not None:
            raise ValueError("give --instruction or --instruction-field, not both")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0 or self.part_rows < 1:
            raise ValueError("cpus_per_actor must be > 0, gpus_per_actor >= 0 and part_rows >= 1")


@dataclass(frozen=True)
class JobReport:
    shards: int  # input files
    skipped: int  # already complete before this run
    embedded: int  # shards embedded by this run
    rows: int  # input rows embedded by this run
    vectors: int  # vectors written by this run
    total_rows: int  # rows in all shards of the output
    seconds: float


def plan(config: JobConfig, fingerprint: ShardFingerprint) -> tuple[Manifest, list[InputShard]]:
    """The manifest to continue (checked against `fingerprint`) and the shards still to embed."""
    out = config.output
    shards = find_inputs(config.input)
    manifest = read_manifest(out) if out.exists() else None
    if manifest is not None:
        diffs = manifest.fingerprint.differences(fingerprint)
        if diffs:
            raise InputFileError(
                f"{out} holds embeddings made differently ({'; '.join(diffs)}); "
                "give a new --output directory, or remove this one to start over"
            )
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} exists, is not empty and has no manifest; give a new --output directory"
        )
    (out / SHARDS).mkdir(parents=True, exist_ok=True)
    removed = clean_temporaries(out)
    if removed:
        log.info("removed %d temporary file(s) of an interrupted run", removed)
    sha = fingerprint.sha256()
    done: dict[str, ShardRecord] = {}
    todo = []
    for shard in shards:
        record = complete_record(out, shard, sha, manifest)
        if record is None:
            todo.append(shard)
        else:
            done[shard.name] = record
    where = str(Path(config.input).expanduser().absolute())
    load = {k: getattr(config.options, k) for k in ("backend", "dtype", "quantize", "max_seq_length")}
    load = {k: v for k, v in load.items() if v is not None}
    return Manifest(where, fingerprint, done, complete=not todo, load=load), todo


def run_job(
    config: JobConfig,
    *,
    load: Callable[[ModelOptions], Any] | None = None,
    progress: bool = False,
) -> JobReport:
    """Embed every pending shard of `config.input` on the connected cluster; see the module docstring."""
    ray = require_ray()
    if not ray.is_initialized():
        raise InstructEmbedError("Ray is not initialised: call instructembed.scale.connect(...) first")
    started = time.monotonic()
    driver_options = dataclasses.replace(config.options, device="cpu")  # the driver only fingerprints
    embedder = (load or ModelOptions.load)(driver_options)
    fingerprint = fingerprint_of(
        embedder, config.options.model, config.columns, config.instruction, chunking_json(config.chunking)
    )
    del embedder
    manifest, todo = plan(config, fingerprint)
    skipped = len(manifest.shards)
    write_manifest(config.output, manifest)
    report = dict(embedded=0, rows=0, vectors=0)
    if todo:
        size = _pool_size(config.actors, config.cpus_per_actor, config.gpus_per_actor, len(todo))
        log.info("%d shard(s) to embed (%d complete) on %d actor(s)", len(todo), skipped, size)
        _data_context(progress=False)
        items = [{"path": s.path, "rel": s.rel, "size": s.size, "mtime_ns": s.mtime_ns} for s in todo]
        ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ShardWorker,
            fn_constructor_kwargs={
                "options": _with_threads(config.options, config.cpus_per_actor),
                "columns": config.columns,
                "instruction": config.instruction,
                "chunking": config.chunking,
                "out_dir": str(config.output.resolve()),
                "expected": fingerprint,
                "part_rows": config.part_rows,
            },
            batch_size=1,
            compute=_compute(size, in_flight=1),  # one shard per actor at a time: no queue behind a slow one
            **_resources(config.cpus_per_actor, config.gpus_per_actor),
        )
        bar = _bar(len(todo), progress)
        last_write = time.monotonic()
        try:
            rows = iter(ds.iter_rows())
            while (row := _next(rows)) is not None:
                record = ShardRecord(**json.loads(row["record"]))
                if record.name not in manifest.shards:  # recorded once, even if Ray ran it twice
                    manifest.shards[record.name] = record
                    report["embedded"] += 1
                    report["rows"] += record.rows
                    report["vectors"] += record.vectors
                if bar is not None:
                    bar.update(1)
                if time.monotonic() - last_write > MANIFEST_EVERY_S:
                    write_manifest(config.output, manifest)
                    last_write = time.monotonic()
        finally:
            write_manifest(config.output, manifest)  # what finished is kept, even on an error
            if bar is not None:
                bar.close()
    missing = [s.name for s in todo if s.name not in manifest.shards]
    if missing:
        raise InstructEmbedError(f"{len(missing)} shard(s) were not written ({missing[0]}, ...); run again")
    manifest.complete = True
    write_manifest(config.output, manifest)
    return JobReport(
        shards=len(manifest.shards),
        skipped=skipped,
        embedded=report["embedded"],
        rows=report["rows"],
        vectors=report["vectors"],
        total_rows=sum(r.rows for r in manifest.shards.values()),
        seconds=time.monotonic() - started,
    )


def user_error(exc: BaseException) -> BaseException:
    """Our own error inside Ray's wrappers (`RayTaskError`, `UserCodeException`), or `exc` itself.

    Ray sends a worker's exception back as text inside its own exception types, so besides the
    exception chain the text is searched for the last 'instructembed.errors.X: message' line.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, InstructEmbedError) and type(current).__module__ == "instructembed.errors":
            return current
        todo += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    found = _OUR_ERROR.findall(str(exc))
    return InstructEmbedError(found[-1]) if found else exc


_OUR_ERROR = re.compile(r"^instructembed\.errors\.\w+: (.+)$", re.MULTILINE)


def _next(rows: Any) -> Any:
    """The next row, with an error a worker raised on purpose surfacing as itself."""
    try:
        return next(rows, None)
    except Exception as exc:
        ours = user_error(exc)
        if ours is exc:
            raise
        raise ours from None


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="shard", desc="embedding", leave=False)
