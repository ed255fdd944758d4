"""The `instructembed` command line. Every option has an `INSTRUCTEMBED_...` environment twin.

Library errors are caught here, at the edge, and printed as one line that says what to do.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer

from instructembed.checkpoint import DEFAULT_MODEL
from instructembed.chunking import ChunkSettings, VectorPool, as_input, chunk_documents, pool_chunks
from instructembed.cli_options import AllowPickleOpt, BackendOpt, DtypeOpt, QuantizeOpt, friendly_errors
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

app = typer.Typer(
    name="instructembed",
    help="Instruction-conditioned text embeddings (INSTRUCTOR-style): embed, inspect, evaluate, serve, train.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Build training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

F = TypeVar("F", bound=Callable[..., Any])


def _print_version(value: bool) -> None:
    if value:
        from instructembed.package_data import package_version

        typer.echo(f"instructembed {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."
        ),
    ] = False,
) -> None:
    """Instruction-conditioned text embeddings (INSTRUCTOR-style): embed, inspect, evaluate, serve, train."""


ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        envvar="INSTRUCTEMBED_MODEL",
        help="Packaged name, local directory or Hugging Face id.",
    ),
]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while chunk := list(islice(rows, size)):
        yield chunk


@app.command("embed")
@friendly_errors
def embed_command(
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            envvar="INSTRUCTEMBED_INPUT",
            help="JSONL, CSV/TSV, or plain text (one per line).",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", envvar="INSTRUCTEMBED_OUTPUT", help="Where to write: .npy or .parquet."
        ),
    ],
    model: ModelOpt = DEFAULT_MODEL,
    instruction: Annotated[
        str | None,
        typer.Option(
            envvar="INSTRUCTEMBED_INSTRUCTION",
            help="Instruction for every text, e.g. 'Represent the question for retrieval: '.",
        ),
    ] = None,
    field: Annotated[
        str,
        typer.Option(envvar="INSTRUCTEMBED_FIELD", help="JSONL field or CSV/TSV column holding the text."),
    ] = "text",
    id_field: Annotated[
        str,
        typer.Option(
            envvar="INSTRUCTEMBED_ID_FIELD",
            help="Field/column with row ids (written to parquet when present).",
        ),
    ] = "id",
    instruction_field: Annotated[
        str | None,
        typer.Option(
            envvar="INSTRUCTEMBED_INSTRUCTION_FIELD", help="Field/column with a per-row instruction."
        ),
    ] = None,
    format: Annotated[
        InputFormat | None,
        typer.Option(envvar="INSTRUCTEMBED_FORMAT", help="Input format (default: from the file suffix)."),
    ] = None,
    skip_blank: Annotated[
        bool,
        typer.Option(
            envvar="INSTRUCTEMBED_SKIP_BLANK",
            help="Plain text: drop blank lines (ids become line numbers) instead of embedding them as empty texts.",
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(envvar="INSTRUCTEMBED_OVERWRITE", help="Replace an existing output file.")
    ] = False,
    chunk_size: Annotated[
        int,
        typer.Option(
            min=1, envvar="INSTRUCTEMBED_CHUNK_SIZE", help="Texts read, embedded and written at a time."
        ),
    ] = 4096,
    max_seq_length: Annotated[
        int | None,
        typer.Option(envvar="INSTRUCTEMBED_MAX_SEQ_LENGTH", help="Override the checkpoint's max tokens."),
    ] = None,
    allow_pickle: AllowPickleOpt = False,
    device: Annotated[
        str | None, typer.Option(envvar="INSTRUCTEMBED_DEVICE", help="torch device, e.g. cpu or cuda.")
    ] = None,
    backend: BackendOpt = None,
    quantize: QuantizeOpt = None,
    dtype: DtypeOpt = None,
    threads: Annotated[
        int | None,
        typer.Option(min=1, envvar="INSTRUCTEMBED_THREADS", help="CPU threads (default: physical cores)."),
    ] = None,
    progress: Annotated[
        bool, typer.Option(envvar="INSTRUCTEMBED_PROGRESS", help="Show a progress bar on stderr.")
    ] = True,
    chunk: Annotated[
        bool,
        typer.Option(
            "--chunk",
            envvar="INSTRUCTEMBED_CHUNK",
            help="Split texts longer than the model's window into token chunks: one row per chunk "
            "(parquet: id, doc, chunk, start, end), or one pooled row per text with --chunk-pool.",
        ),
    ] = False,
    chunk_overlap: Annotated[
        int | None,
        typer.Option(
            min=0, envvar="INSTRUCTEMBED_CHUNK_OVERLAP", help="Tokens shared by consecutive chunks (32)."
        ),
    ] = None,
    chunk_pool: Annotated[
        VectorPool | None,
        typer.Option(
            envvar="INSTRUCTEMBED_CHUNK_POOL",
            help="mean: one vector per text, the mean of its chunks' (normalised again). Implies --chunk.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            envvar="INSTRUCTEMBED_ENGINE",
            help="local: this process. ray: a Ray cluster (the [ray] extra); INPUT is a directory or glob "
            "of .jsonl/.csv/.tsv/.parquet files, OUTPUT a directory of parquet shards + manifest; "
            "a rerun skips finished shards.",
        ),
    ] = Engine.LOCAL,
    address: Annotated[
        str | None,
        typer.Option(
            envvar="INSTRUCTEMBED_RAY_ADDRESS",
            help="--engine ray: the head node's HOST:PORT, or 'auto'; default: a local Ray runtime.",
        ),
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="INSTRUCTEMBED_ACTORS",
            help="--engine ray: model copies (default: CPUs / per actor).",
        ),
    ] = None,
    cpus_per_actor: Annotated[
        float,
        typer.Option(min=0.01, envvar="INSTRUCTEMBED_CPUS_PER_ACTOR", help="--engine ray: CPUs per actor."),
    ] = 1.0,
    gpus_per_actor: Annotated[
        float,
        typer.Option(min=0, envvar="INSTRUCTEMBED_GPUS_PER_ACTOR", help="--engine ray: GPUs per actor."),
    ] = 0.0,
) -> None:
    """Embed every text of INPUT and write the vectors to OUTPUT, streaming in chunks (constant memory)."""
    _setup_logging(verbose)
    if engine is Engine.RAY:
        from instructembed.scale.cli import ray_embed

        if chunk_overlap is not None and not chunk:
            raise ValueError("--chunk-overlap applies to --chunk; add --chunk (or drop --chunk-overlap)")

        ray_embed(
            input=input,
            output=output,
            model=model,
            instruction=instruction,
            field=field,
            id_field=id_field,
            instruction_field=instruction_field,
            chunk_size=chunk_size,
            max_seq_length=max_seq_length,
            allow_pickle=allow_pickle,
            device=device,
            backend=backend,
            quantize=quantize,
            dtype=dtype,
            threads=threads,
            progress=progress,
            address=address,
            actors=actors,
            cpus_per_actor=cpus_per_actor,
            gpus_per_actor=gpus_per_actor,
            chunking=ChunkSettings(overlap=32 if chunk_overlap is None else chunk_overlap) if chunk else None,
            unsupported={
                "format": format,
                "skip_blank": skip_blank,
                "overwrite": overwrite,
                "chunk_pool": chunk_pool,
            },
        )
        return
    ray_only = {"address": address, "actors": actors}
    if any(v is not None for v in ray_only.values()) or cpus_per_actor != 1.0 or gpus_per_actor != 0.0:
        raise ValueError("--address, --actors, --cpus-per-actor and --gpus-per-actor need --engine ray")
    fmt = format or input_format(input)
    out_fmt = output_format(output)  # validate the suffix before loading a model
    chunk = chunk or chunk_pool is not None
    if chunk_overlap is not None and not chunk:
        raise ValueError("--chunk-overlap applies to --chunk; add --chunk (or drop --chunk-overlap)")
    if chunk and chunk_pool is None and out_fmt is OutputFormat.NPY:
        raise ValueError(
            "--chunk writes one row per chunk with its document and offsets, which .npy cannot hold: "
            "write .parquet, or add --chunk-pool mean for one vector per text"
        )
    chunking = ChunkSettings(overlap=32 if chunk_overlap is None else chunk_overlap) if chunk else None
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output directory {output.parent} does not exist")
    if instruction is not None and instruction_field is not None:
        raise ValueError("give --instruction or --instruction-field, not both")
    rows = read_rows(input, fmt, field, id_field, instruction_field, skip_blank)
    first = next(rows, None)  # read before loading the model: a bad file fails fast
    if first is None:
        raise ValueError(f"{input} holds no texts; nothing to embed")

    from instructembed.embedder import EmbedConfig, Embedder

    embedder = Embedder.load(
        model,
        backend=backend,
        quantize=quantize,
        dtype=dtype,
        threads=threads,
        max_seq_length=max_seq_length,
        allow_pickle=allow_pickle,
        device=device,
        config=EmbedConfig(),
    )
    has_ids = first.id is not None
    per_chunk = chunking is not None and chunk_pool is None
    writer = (
        ParquetWriter(output, embedder.dimension, has_ids, CHUNK_COLUMNS)
        if per_chunk
        else open_writer(output, embedder.dimension, with_ids=has_ids)
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = count_lines(input) if fmt in (InputFormat.TEXT, InputFormat.JSONL) else None
        bar = tqdm(total=total, unit="text", desc="embedding", file=sys.stderr, dynamic_ncols=True)
    try:
        all_rows = _prepend(first, rows)
        blank = done = 0
        counts = _Counts()
        for part in _chunks(all_rows, chunk_size):
            if fmt is InputFormat.TEXT:
                blank += sum(1 for r in part if not r.text.strip())
            inputs: list[Any] = (
                [(r.instruction, r.text) for r in part] if instruction_field else [r.text for r in part]
            )
            items = to_items(inputs, instruction)
            _embed_part(embedder, items, [r.id for r in part], done, writer, chunking, per_chunk, counts)
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
    if blank:
        typer.secho(
            f"note: {blank} blank line(s) were embedded as empty texts (use --skip-blank to drop them)",
            err=True,
        )
    limit = embedder.max_seq_length
    if counts.split:
        typer.echo(
            f"split {counts.split} text(s) longer than {limit} tokens into {counts.chunks} chunks", err=True
        )
    if counts.truncated:
        hint = "" if chunking else "; --chunk embeds them whole"
        typer.secho(
            f"note: {counts.truncated} text(s) longer than {limit} tokens (instruction included) were "
            f"truncated to their first {limit} tokens{hint}",
            err=True,
        )
    typer.echo(f"wrote {writer.rows} x {embedder.dimension} embeddings to {output}", err=True)


@dataclass
class _Counts:
    truncated: int = 0  # texts that lost tokens to truncation
    split: int = 0  # texts cut into more than one chunk
    chunks: int = 0  # chunks of those texts


def _embed_part(
    embedder: Any,
    items: list[Item],
    ids: list[str | None],
    first_doc: int,
    writer: Any,
    chunking: ChunkSettings | None,
    per_chunk: bool,
    counts: _Counts,
) -> None:
    """Embed one part of the input and write it: whole texts (truncation counted), one row per
    chunk, or one mean-pooled row per text."""
    if chunking is None:
        rows = embedder.tokenize([as_input(item) for item in items])
        counts.truncated += sum(r.truncated for r in rows)
        writer.write(ids, embedder.embed_tokenized(rows))
        return
    batch = chunk_documents(embedder, items, chunking)
    vectors = embedder.embed_tokenized(batch.rows)  # (C, D)
    doc_of_chunk = batch.doc_of_chunk()
    per_doc = np.bincount(doc_of_chunk, minlength=len(items))
    counts.truncated += batch.truncated_docs
    counts.split += int((per_doc > 1).sum())
    counts.chunks += int(per_doc[per_doc > 1].sum())
    if per_chunk:
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


@app.command("info")
@friendly_errors
def info_command(
    model: Annotated[
        str, typer.Argument(envvar="INSTRUCTEMBED_MODEL", help="Packaged name, local directory or hub id.")
    ] = DEFAULT_MODEL,
    allow_pickle: AllowPickleOpt = False,
    backend: BackendOpt = None,
    quantize: QuantizeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show what a model is: architecture, dimension, max length, layout, pooling, normalization."""
    from instructembed.embedder import Embedder

    info = Embedder.load(model, allow_pickle=allow_pickle, backend=backend, quantize=quantize).info()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    width = max(len(k) for k in info)
    for key, value in info.items():
        typer.echo(f"{key:<{width}}  {value}")


@app.command("demo")
@friendly_errors
def demo_command(model: ModelOpt = DEFAULT_MODEL) -> None:
    """Embed a few texts under two instructions and show similarities and a nearest-text search."""
    from instructembed.demo import run_demo

    run_demo(model)


# Sub-commands that live with their features; each module imports its heavy dependencies lazily.
from instructembed.eval.cli import eval_command  # noqa: E402
from instructembed.export.cli import export_command  # noqa: E402
from instructembed.index.cli import index_app, search_command  # noqa: E402
from instructembed.server.cli import serve_command  # noqa: E402
from instructembed.train.cli import build_medi_command, train_command  # noqa: E402

app.command("eval")(eval_command)
app.command("serve")(serve_command)
app.command("export")(export_command)
app.command("search")(search_command)
app.add_typer(index_app, name="index")
app.command("train")(train_command)
data_app.command("build-medi")(build_medi_command)


def main() -> None:
    try:  # transformers prints a progress bar per weight file; a CLI user wants our own output only
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # the onnx-only install has no transformers models to load
        pass
    app()


if __name__ == "__main__":
    main()
