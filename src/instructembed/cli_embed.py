"""`instructembed embed`: read inputs, choose the path (plain, chunked, Ray), write, report.

The command itself only gathers its options into `EmbedOptions` and runs the steps below in order,
each small enough to read on one screen. The options are declared once as `Annotated` aliases, each
with its `INSTRUCTEMBED_...` environment twin.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from instructembed.checkpoint import DEFAULT_MODEL
from instructembed.chunking import ChunkSettings, VectorPool, as_input, chunk_documents, pool_chunks
from instructembed.cli_options import (
    AllowPickleOpt,
    BackendOpt,
    DtypeOpt,
    FormatOpt,
    ModelOpt,
    QuantizeOpt,
    friendly_errors,
    setup_logging,
)
from instructembed.files import (
    CHUNK_COLUMNS,
    InputFormat,
    OutputFormat,
    ParquetWriter,
    Row,
    count_lines,
    input_format,
    open_writer,
    output_format,
    read_rows,
)
from instructembed.inputs import Item, to_items
from instructembed.scale.cli import Engine
from instructembed.vectors_out import (
    Precision,
    QuantizationRanges,
    calibration_ranges,
    packed_width,
    quantize,
    truncate,
)

# --- the options, declared once -------------------------------------------------------------------
InputOpt = Annotated[
    Path,
    typer.Option(
        "--input", "-i", envvar="INSTRUCTEMBED_INPUT", help="JSONL, CSV/TSV, or plain text (one per line)."
    ),
]
OutputOpt = Annotated[
    Path,
    typer.Option("--output", "-o", envvar="INSTRUCTEMBED_OUTPUT", help="Where to write: .npy or .parquet."),
]
InstructionOpt = Annotated[
    str | None,
    typer.Option(
        envvar="INSTRUCTEMBED_INSTRUCTION",
        help="Instruction for every text, e.g. 'Represent the question for retrieval: '.",
    ),
]
PromptNameOpt = Annotated[
    str | None,
    typer.Option(
        envvar="INSTRUCTEMBED_PROMPT_NAME",
        help="One of the model's declared prompts for every text, e.g. 'query' (`instructembed info` lists them).",
    ),
]
FieldOpt = Annotated[
    str, typer.Option(envvar="INSTRUCTEMBED_FIELD", help="JSONL field or CSV/TSV column holding the text.")
]
IdFieldOpt = Annotated[
    str,
    typer.Option(
        envvar="INSTRUCTEMBED_ID_FIELD", help="Field/column with row ids (written to parquet when present)."
    ),
]
InstructionFieldOpt = Annotated[
    str | None,
    typer.Option(envvar="INSTRUCTEMBED_INSTRUCTION_FIELD", help="Field/column with a per-row instruction."),
]
SkipBlankOpt = Annotated[
    bool,
    typer.Option(
        envvar="INSTRUCTEMBED_SKIP_BLANK",
        help="Plain text: drop blank lines (ids become line numbers) instead of embedding them as empty texts.",
    ),
]
OverwriteOpt = Annotated[
    bool, typer.Option(envvar="INSTRUCTEMBED_OVERWRITE", help="Replace an existing output file.")
]
ChunkSizeOpt = Annotated[
    int,
    typer.Option(
        min=1, envvar="INSTRUCTEMBED_CHUNK_SIZE", help="Texts read, embedded and written at a time."
    ),
]
MaxSeqLengthOpt = Annotated[
    int | None,
    typer.Option(envvar="INSTRUCTEMBED_MAX_SEQ_LENGTH", help="Override the checkpoint's max tokens."),
]
DeviceOpt = Annotated[
    str | None, typer.Option(envvar="INSTRUCTEMBED_DEVICE", help="torch device, e.g. cpu or cuda.")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, envvar="INSTRUCTEMBED_THREADS", help="CPU threads (default: physical cores)."),
]
ProgressOpt = Annotated[
    bool, typer.Option(envvar="INSTRUCTEMBED_PROGRESS", help="Show a progress bar on stderr.")
]
ChunkOpt = Annotated[
    bool,
    typer.Option(
        "--chunk",
        envvar="INSTRUCTEMBED_CHUNK",
        help="Split texts longer than the model's window: chunk 0 is the text truncated to the window "
        "(its plain vector), then token windows over the rest; one row per chunk (parquet: id, doc, "
        "chunk, start, end), or one pooled row per text with --chunk-pool.",
    ),
]
ChunkOverlapOpt = Annotated[
    int | None,
    typer.Option(
        min=0, envvar="INSTRUCTEMBED_CHUNK_OVERLAP", help="Tokens shared by consecutive chunks (32)."
    ),
]
ChunkPoolOpt = Annotated[
    VectorPool | None,
    typer.Option(
        envvar="INSTRUCTEMBED_CHUNK_POOL",
        help="mean: one vector per text, the mean of its chunks' (normalised again). Implies --chunk.",
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")]
EngineOpt = Annotated[
    Engine,
    typer.Option(
        envvar="INSTRUCTEMBED_ENGINE",
        help="local: this process. ray: a Ray cluster (the [ray] extra); INPUT is a directory or glob "
        "of .jsonl/.csv/.tsv/.parquet files, OUTPUT a directory of parquet shards + manifest; "
        "a rerun skips finished shards.",
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        envvar="INSTRUCTEMBED_RAY_ADDRESS",
        help="--engine ray: the head node's HOST:PORT, or 'auto'; default: a local Ray runtime.",
    ),
]
ActorsOpt = Annotated[
    int | None,
    typer.Option(
        min=1, envvar="INSTRUCTEMBED_ACTORS", help="--engine ray: model copies (default: CPUs / per actor)."
    ),
]
CpusPerActorOpt = Annotated[
    float, typer.Option(min=0.01, envvar="INSTRUCTEMBED_CPUS_PER_ACTOR", help="--engine ray: CPUs per actor.")
]
GpusPerActorOpt = Annotated[
    float, typer.Option(min=0, envvar="INSTRUCTEMBED_GPUS_PER_ACTOR", help="--engine ray: GPUs per actor.")
]

DimensionsOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        envvar="INSTRUCTEMBED_DIMENSIONS",
        help="Keep the first D coordinates, renormalized (Matryoshka truncation; docs/server.md has its cost).",
    ),
]
PrecisionOpt = Annotated[
    Precision,
    typer.Option(
        envvar="INSTRUCTEMBED_PRECISION",
        help="float32, int8/uint8 (per-dimension ranges from the packaged calibration set), or "
        "binary/ubinary (sign bits packed 8 per byte).",
    ),
]

DEFAULT_OVERLAP = 32  # tokens shared by consecutive chunks unless --chunk-overlap says otherwise


@dataclass(frozen=True)
class EmbedOptions:
    """Every option of `embed`, as the command received them."""

    input: Path
    output: Path
    model: str
    instruction: str | None
    prompt_name: str | None
    field: str
    id_field: str
    instruction_field: str | None
    format: InputFormat | None
    skip_blank: bool
    overwrite: bool
    chunk_size: int
    max_seq_length: int | None
    allow_pickle: bool
    device: str | None
    backend: str | None
    quantize: str | None
    dtype: str | None
    threads: int | None
    progress: bool
    chunk: bool
    chunk_overlap: int | None
    chunk_pool: VectorPool | None
    verbose: bool
    engine: Engine
    address: str | None
    actors: int | None
    cpus_per_actor: float
    gpus_per_actor: float
    dimensions: int | None = None
    precision: Precision = Precision.FLOAT32

    def chunking(self) -> ChunkSettings | None:
        """The chunk settings when chunking was asked for (--chunk or --chunk-pool), else None."""
        if self.chunk_overlap is not None and not (self.chunk or self.chunk_pool is not None):
            raise ValueError("--chunk-overlap applies to --chunk; add --chunk (or drop --chunk-overlap)")
        if not (self.chunk or self.chunk_pool is not None):
            return None
        return ChunkSettings(overlap=DEFAULT_OVERLAP if self.chunk_overlap is None else self.chunk_overlap)


@friendly_errors
def embed_command(
    input: InputOpt,
    output: OutputOpt,
    model: ModelOpt = DEFAULT_MODEL,
    instruction: InstructionOpt = None,
    prompt_name: PromptNameOpt = None,
    field: FieldOpt = "text",
    id_field: IdFieldOpt = "id",
    instruction_field: InstructionFieldOpt = None,
    format: FormatOpt = None,
    skip_blank: SkipBlankOpt = False,
    overwrite: OverwriteOpt = False,
    chunk_size: ChunkSizeOpt = 4096,
    max_seq_length: MaxSeqLengthOpt = None,
    allow_pickle: AllowPickleOpt = False,
    device: DeviceOpt = None,
    backend: BackendOpt = None,
    quantize: QuantizeOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    progress: ProgressOpt = True,
    chunk: ChunkOpt = False,
    chunk_overlap: ChunkOverlapOpt = None,
    chunk_pool: ChunkPoolOpt = None,
    verbose: VerboseOpt = False,
    engine: EngineOpt = Engine.LOCAL,
    address: AddressOpt = None,
    actors: ActorsOpt = None,
    cpus_per_actor: CpusPerActorOpt = 1.0,
    gpus_per_actor: GpusPerActorOpt = 0.0,
    dimensions: DimensionsOpt = None,
    precision: PrecisionOpt = Precision.FLOAT32,
) -> None:
    """Embed every text of INPUT and write the vectors to OUTPUT, streaming in chunks (constant memory)."""
    opts = EmbedOptions(**locals())  # first statement: exactly the options
    setup_logging(opts.verbose)
    if opts.engine is Engine.RAY:
        _embed_on_ray(opts)
        return
    plan = _plan_local(opts)
    first, rows = _read_inputs(opts)  # read before loading the model: a bad file fails fast
    embedder = _load_embedder(opts)
    if opts.prompt_name is not None:  # a declared prompt is an instruction by name: one path from here
        opts = replace(opts, instruction=embedder.resolve_instruction(None, opts.prompt_name))
    controls = _output_controls(embedder, opts)
    counts = _embed_to_output(embedder, first, rows, opts, plan, controls)
    _report(counts, embedder, opts, plan)


# --- step 1: the path -------------------------------------------------------------------------------
def _embed_on_ray(opts: EmbedOptions) -> None:
    """--engine ray: the same vectors, one parquet shard per input file (scale/)."""
    from instructembed.scale.cli import ray_embed

    if opts.dimensions is not None or opts.precision is not Precision.FLOAT32:
        raise ValueError(
            "--dimensions and --precision do not apply to --engine ray (its shards hold float32 vectors "
            "for `index add --from-parquet`); apply instructembed.vectors_out to the shards' vectors"
        )

    ray_embed(
        input=opts.input,
        output=opts.output,
        model=opts.model,
        instruction=opts.instruction,
        field=opts.field,
        id_field=opts.id_field,
        instruction_field=opts.instruction_field,
        chunk_size=opts.chunk_size,
        max_seq_length=opts.max_seq_length,
        allow_pickle=opts.allow_pickle,
        device=opts.device,
        backend=opts.backend,
        quantize=opts.quantize,
        dtype=opts.dtype,
        threads=opts.threads,
        progress=opts.progress,
        address=opts.address,
        actors=opts.actors,
        cpus_per_actor=opts.cpus_per_actor,
        gpus_per_actor=opts.gpus_per_actor,
        chunking=opts.chunking(),
        unsupported={
            "format": opts.format,
            "skip_blank": opts.skip_blank,
            "overwrite": opts.overwrite,
            "chunk_pool": opts.chunk_pool,
            "prompt_name": opts.prompt_name,
        },
    )


@dataclass(frozen=True)
class _LocalPlan:
    """What a local run will do, settled (and validated) before anything is read or loaded."""

    fmt: InputFormat
    chunking: ChunkSettings | None
    per_chunk: bool  # one output row per chunk (parquet with spans), not one per text


def _plan_local(opts: EmbedOptions) -> _LocalPlan:
    """Check the options of a local run and choose plain, chunked or chunk-pooled output."""
    ray_only = {"address": opts.address, "actors": opts.actors}
    if any(v is not None for v in ray_only.values()) or opts.cpus_per_actor != 1.0 or opts.gpus_per_actor:
        raise ValueError("--address, --actors, --cpus-per-actor and --gpus-per-actor need --engine ray")
    fmt = opts.format or input_format(opts.input)
    out_fmt = output_format(opts.output)  # validate the suffix before loading a model
    chunking = opts.chunking()
    per_chunk = chunking is not None and opts.chunk_pool is None
    if per_chunk and out_fmt is OutputFormat.NPY:
        raise ValueError(
            "--chunk writes one row per chunk with its document and offsets, which .npy cannot hold: "
            "write .parquet, or add --chunk-pool mean for one vector per text"
        )
    if opts.output.exists() and not opts.overwrite:
        raise FileExistsError(f"{opts.output} exists; pass --overwrite to replace it")
    if not opts.output.parent.is_dir():
        raise FileNotFoundError(f"output directory {opts.output.parent} does not exist")
    if opts.instruction is not None and opts.instruction_field is not None:
        raise ValueError("give --instruction or --instruction-field, not both")
    if opts.prompt_name is not None and (opts.instruction is not None or opts.instruction_field is not None):
        raise ValueError("give --prompt-name or --instruction / --instruction-field, not both")
    return _LocalPlan(fmt=fmt, chunking=chunking, per_chunk=per_chunk)


# --- step 2: read -----------------------------------------------------------------------------------
def _read_inputs(opts: EmbedOptions) -> tuple[Row, Iterator[Row]]:
    """The first row (read now, so a bad or empty file fails before the model loads) and the rest."""
    fmt = opts.format or input_format(opts.input)
    rows = read_rows(opts.input, fmt, opts.field, opts.id_field, opts.instruction_field, opts.skip_blank)
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{opts.input} holds no texts; nothing to embed")
    return first, rows


def _load_embedder(opts: EmbedOptions) -> Any:
    from instructembed.embedder import EmbedConfig, Embedder

    return Embedder.load(
        opts.model,
        backend=opts.backend,
        quantize=opts.quantize,
        dtype=opts.dtype,
        threads=opts.threads,
        max_seq_length=opts.max_seq_length,
        allow_pickle=opts.allow_pickle,
        device=opts.device,
        config=EmbedConfig(),
    )


@dataclass(frozen=True)
class _OutputControls:
    """--dimensions and --precision: `vectors_out.truncate`, then `vectors_out.quantize`."""

    dimensions: int | None
    precision: Precision
    ranges: QuantizationRanges | None

    def apply(self, vectors: np.ndarray, normalized: bool) -> np.ndarray:
        if self.dimensions is not None and self.dimensions < vectors.shape[1]:
            vectors = truncate(vectors, self.dimensions, renormalize=normalized)
        return (
            vectors if self.precision is Precision.FLOAT32 else quantize(vectors, self.precision, self.ranges)
        )

    def width(self, dimension: int) -> int:
        d = self.dimensions or dimension
        return packed_width(d) if self.precision.packed else d


def _output_controls(embedder: Any, opts: EmbedOptions) -> _OutputControls:
    if opts.dimensions is not None and opts.dimensions > embedder.dimension:
        raise ValueError(
            f"--dimensions {opts.dimensions} is more than {opts.model}'s {embedder.dimension}; ask for at most that"
        )
    ranges = None
    if opts.precision.needs_ranges:
        ranges = calibration_ranges(embedder, dimensions=opts.dimensions)
    return _OutputControls(opts.dimensions, opts.precision, ranges)


# --- step 3: embed and write ------------------------------------------------------------------------
@dataclass
class _Counts:
    rows: int = 0  # output rows written
    blank: int = 0  # blank plain-text lines embedded as empty texts
    truncated: int = 0  # texts that lost tokens to truncation
    split: int = 0  # texts cut into more than one chunk
    chunks: int = 0  # chunks of those texts


def _embed_to_output(
    embedder: Any,
    first: Row,
    rest: Iterator[Row],
    opts: EmbedOptions,
    plan: _LocalPlan,
    controls: _OutputControls | None = None,
) -> _Counts:
    """Embed part by part into a temporary file renamed at the end; on any failure it is removed
    and an existing output is left as it was. Ids are written when the first row has one."""
    has_ids = first.id is not None
    out = controls or _OutputControls(None, Precision.FLOAT32, None)
    width, dtype = out.width(embedder.dimension), out.precision.numpy_dtype.str
    inner = (
        ParquetWriter(opts.output, width, has_ids, CHUNK_COLUMNS, dtype=dtype)
        if plan.per_chunk
        else open_writer(opts.output, width, with_ids=has_ids, dtype=dtype)
    )
    writer = _Transforming(inner, lambda v: out.apply(v, embedder.normalized))
    rows = _prepend(first, rest)
    bar = _progress_bar(opts, plan.fmt)
    counts = _Counts()
    try:
        done = 0
        while part := list(islice(rows, opts.chunk_size)):
            if plan.fmt is InputFormat.TEXT:
                counts.blank += sum(1 for r in part if not r.text.strip())
            inputs: list[Any] = (
                [(r.instruction, r.text) for r in part] if opts.instruction_field else [r.text for r in part]
            )
            items = to_items(inputs, opts.instruction)
            _embed_part(embedder, items, [r.id for r in part], done, writer, plan, counts)
            done += len(part)
            if bar is not None:
                bar.update(len(part))
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    counts.rows = writer.rows
    return counts


class _Transforming:
    """A writer that applies the output controls to every part before writing it."""

    def __init__(self, inner: Any, transform: Any) -> None:
        self.inner, self.transform = inner, transform

    @property
    def rows(self) -> int:
        return int(self.inner.rows)

    def write(self, ids: list[str | None], vectors: np.ndarray, *extra: Any) -> None:
        self.inner.write(ids, self.transform(vectors), *extra)

    def finish(self) -> None:
        self.inner.finish()

    def abort(self) -> None:
        self.inner.abort()


def _progress_bar(opts: EmbedOptions, fmt: InputFormat) -> Any:
    if not opts.progress:
        return None
    from tqdm.auto import tqdm

    total = count_lines(opts.input) if fmt in (InputFormat.TEXT, InputFormat.JSONL) else None
    return tqdm(total=total, unit="text", desc="embedding", file=sys.stderr, dynamic_ncols=True)


def _embed_part(
    embedder: Any,
    items: list[Item],
    ids: list[str | None],
    first_doc: int,
    writer: Any,
    plan: _LocalPlan,
    counts: _Counts,
) -> None:
    """Embed one part of the input and write it: whole texts (truncation counted), one row per
    chunk, or one mean-pooled row per text."""
    if plan.chunking is None:
        rows = embedder.tokenize([as_input(item) for item in items])
        counts.truncated += sum(r.truncated for r in rows)
        writer.write(ids, embedder.embed_tokenized(rows))
        return
    batch = chunk_documents(embedder, items, plan.chunking)
    vectors = embedder.embed_tokenized(batch.rows)  # (C, D)
    doc_of_chunk = batch.doc_of_chunk()
    per_doc = np.bincount(doc_of_chunk, minlength=len(items))
    counts.truncated += batch.truncated_docs
    counts.split += int((per_doc > 1).sum())
    counts.chunks += int(per_doc[per_doc > 1].sum())
    if plan.per_chunk:
        spans = {
            "doc": [first_doc + c.doc for c in batch.chunks],
            "chunk": [c.index for c in batch.chunks],
            "start": [c.start for c in batch.chunks],
            "end": [c.end for c in batch.chunks],
        }
        writer.write([ids[c.doc] for c in batch.chunks], vectors, spans)
    else:
        writer.write(ids, pool_chunks(vectors, doc_of_chunk, len(items), normalize=embedder.normalized))


def _prepend(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest


# --- step 4: report ---------------------------------------------------------------------------------
def _report(counts: _Counts, embedder: Any, opts: EmbedOptions, plan: _LocalPlan) -> None:
    """What the run did, on stderr: blank lines, split and truncated texts, rows written."""
    if counts.blank:
        typer.secho(
            f"note: {counts.blank} blank line(s) were embedded as empty texts (use --skip-blank to drop them)",
            err=True,
        )
    limit = embedder.max_seq_length
    if counts.split:
        typer.echo(
            f"split {counts.split} text(s) longer than {limit} tokens into {counts.chunks} chunks", err=True
        )
    if counts.truncated:
        hint = "" if plan.chunking else "; --chunk embeds them whole"
        typer.secho(
            f"note: {counts.truncated} text(s) longer than {limit} tokens (instruction included) were "
            f"truncated to their first {limit} tokens{hint}",
            err=True,
        )
    shape = f"{counts.rows} x {opts.dimensions or embedder.dimension}"
    if opts.precision is not Precision.FLOAT32:
        shape += f" {opts.precision.value}"
    typer.echo(f"wrote {shape} embeddings to {opts.output}", err=True)
