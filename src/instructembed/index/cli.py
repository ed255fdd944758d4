"""`instructembed index build|add|delete|info|rebuild` and `instructembed search`.

Every option has an `INSTRUCTEMBED_...` environment twin. Input files are read twice: once to check
every record (ids, duplicates, texts, metadata) before a model is loaded or anything written, then
streamed into the index in committed batches. Killed or interrupted, the same command continues.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from instructembed.checkpoint import DEFAULT_MODEL
from instructembed.chunking import HEAD_WEIGHT, ChunkPool, ChunkSettings
from instructembed.cli_options import (
    AllowPickleOpt,
    BackendOpt,
    DtypeOpt,
    FormatOpt,
    QuantizeOpt,
    friendly_errors,
    setup_logging,
)
from instructembed.files import InputFormat, count_lines, input_format, read_rows
from instructembed.index.ann import AnnKind, AnnSettings
from instructembed.index.cli_options import (
    CommitOpt,
    DirArg,
    IdFieldOpt,
    InputOpt,
    MetadataFieldOpt,
    ProgressOpt,
    RescoreOpt,
    TextFieldOpt,
    VerboseOpt,
)
from instructembed.index.errors import IndexStoreError
from instructembed.index.store import DB_NAME

index_app = typer.Typer(
    help="Build and maintain a retrieval index (FAISS + SQLite) over your own documents.",
    no_args_is_help=True,
)


def _resume_hint(kwargs: dict[str, Any]) -> str:
    where = kwargs.get("out") or kwargs.get("path")
    return f"interrupted; {where} holds every batch committed so far: run the same command again to continue"


def _records(
    input: Path, format: InputFormat | None, id_field: str, text_field: str, metadata_field: str | None
) -> tuple[Any, int]:
    """Check the whole file first; return a function streaming its records and their count."""
    from instructembed.index.records import FileFields, check_file, file_records

    fmt = format or input_format(input)
    fields = FileFields(id_field, text_field, metadata_field)
    n = check_file(input, fmt, fields)
    return (lambda: file_records(input, fmt, fields)), n


def _add_with_progress(
    index: Any, stream: Iterator[Any], total: int, commit_every: int, progress: bool
) -> Any:
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="doc", desc="indexing", file=sys.stderr, dynamic_ncols=True)
    try:
        return index.add(stream, commit_every=commit_every, on_progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()


def _summary(report: Any, index: Any) -> str:
    info = index.info()
    parts = [f"{report.added} added", f"{report.replaced} replaced", f"{report.unchanged} unchanged"]
    if report.metadata_updated:
        parts.append(f"{report.metadata_updated} metadata updated")
    line = f"{index.path}: {info['documents']} documents, {info['chunks']} chunks ({', '.join(parts)})"
    if info["truncated_documents"]:
        line += (
            f"; {info['truncated_documents']} document(s) were truncated to the model's window "
            "(chunking is off, or a single word exceeded it)"
        )
    return line


@index_app.command("build")
@friendly_errors(interrupted=_resume_hint)
def build_command(
    input: InputOpt,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", envvar="INSTRUCTEMBED_OUT", help="Index directory to create or continue."
        ),
    ],
    model: Annotated[str, typer.Option("--model", "-m", envvar="INSTRUCTEMBED_MODEL")] = DEFAULT_MODEL,
    instruction: Annotated[
        str | None, typer.Option(envvar="INSTRUCTEMBED_INSTRUCTION", help="Document instruction.")
    ] = None,
    query_instruction: Annotated[
        str | None,
        typer.Option(envvar="INSTRUCTEMBED_QUERY_INSTRUCTION", help="Query instruction, used by search."),
    ] = None,
    id_field: IdFieldOpt = "id",
    text_field: TextFieldOpt = "text",
    metadata_field: MetadataFieldOpt = None,
    format: FormatOpt = None,
    chunk: Annotated[
        bool,
        typer.Option(
            envvar="INSTRUCTEMBED_CHUNK",
            help="Split documents longer than the model's window (else truncate, counted).",
        ),
    ] = True,
    chunk_overlap: Annotated[int, typer.Option(min=0, envvar="INSTRUCTEMBED_CHUNK_OVERLAP")] = 32,
    store_text: Annotated[
        bool,
        typer.Option(envvar="INSTRUCTEMBED_STORE_TEXT", help="Keep chunk texts so hits can return them."),
    ] = True,
    approximate: Annotated[
        AnnKind | None,
        typer.Option(
            envvar="INSTRUCTEMBED_APPROXIMATE", help="Also build an approximate index (large corpora)."
        ),
    ] = None,
    vectors: Annotated[
        str,
        typer.Option(
            envvar="INSTRUCTEMBED_VECTORS",
            help="What search holds in RAM: float32 (the memory-mapped rows), int8 (1 byte per "
            "dimension) or binary (1 bit); int8 and binary rescore candidates from the float rows.",
        ),
    ] = "float32",
    rescore: RescoreOpt = AnnSettings.rescore,
    commit_every: CommitOpt = 1024,
    overwrite: Annotated[
        bool, typer.Option(help="Delete an existing index at --out and start over.")
    ] = False,
    backend: BackendOpt = None,
    quantize: QuantizeOpt = None,
    dtype: DtypeOpt = None,
    max_seq_length: Annotated[int | None, typer.Option(envvar="INSTRUCTEMBED_MAX_SEQ_LENGTH")] = None,
    threads: Annotated[int | None, typer.Option(min=1, envvar="INSTRUCTEMBED_THREADS")] = None,
    allow_pickle: AllowPickleOpt = False,
    progress: ProgressOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Embed every record of INPUT into a new index at OUT, or continue one that was interrupted."""
    setup_logging(verbose)
    approximate = _search_kind(vectors, approximate)
    stream, total = _records(input, format, id_field, text_field, metadata_field)
    from instructembed.embedder import Embedder
    from instructembed.index.core import Index
    from instructembed.index.store import remove_index

    if overwrite and out.exists():
        remove_index(out)
    source = {
        "input": str(input.resolve()),
        "size": input.stat().st_size,
        "mtime_ns": input.stat().st_mtime_ns,
    }
    resuming = (out / DB_NAME).is_file()
    if resuming:
        with Index.open(out) as existing:
            before = existing.info()["build"]
        if not before or before.get("input") != source["input"]:
            made_from = before.get("input") if before else "records added with `index add`"
            raise IndexStoreError(
                f"{out} holds an index built from {made_from}; to add {input} to it use "
                f"`instructembed index add {out} --input {input}`, or pass --overwrite to start over"
            )
    options: dict[str, Any] = {
        "backend": backend,
        "quantize": quantize,
        "dtype": dtype,
        "max_seq_length": max_seq_length,
    }
    options = {k: v for k, v in options.items() if v is not None}
    embedder = Embedder.load(model, allow_pickle=allow_pickle, threads=threads, **options)
    index = Index.create(
        out,
        model=model,
        doc_instruction=instruction,
        query_instruction=query_instruction,
        chunking=ChunkSettings(enabled=chunk, overlap=chunk_overlap),
        store_text=store_text,
        embedder=embedder,
        exist_ok=True,
        **options,
    )
    with index, index.writer():
        if resuming:
            typer.echo(f"continuing the build of {out} ({len(index)} documents committed)", err=True)
        index.record_build({**source, "records": total, "complete": False})
        report = _add_with_progress(index, stream(), total, commit_every, progress)
        info = index.info()
        if approximate is not None and (
            not info["approximate"] or info["approximate"]["rows"] != info["vectors"]
        ):
            typer.echo(f"building the approximate index ({approximate.value})", err=True)
            index.rebuild(AnnSettings(kind=approximate, rescore=rescore))
        index.record_build({**source, "records": total, "complete": True})
        typer.echo(_summary(report, index), err=True)


def _search_kind(vectors: str, approximate: AnnKind | None) -> AnnKind | None:
    """`--vectors int8|binary` is a compressed search structure of its own; float32 leaves `--approximate`."""
    if vectors not in ("float32", "int8", "binary"):
        raise typer.BadParameter(f"--vectors must be float32, int8 or binary, got {vectors!r}")
    if vectors == "float32":
        return approximate
    if approximate is not None and approximate.value != vectors:
        raise typer.BadParameter(
            f"--vectors {vectors} and --approximate {approximate.value} are two search structures; "
            "choose one (int8/binary already search all rows, then rescore from the float vectors)"
        )
    return AnnKind(vectors)


@index_app.command("add")
@friendly_errors(interrupted=_resume_hint)
def add_command(
    path: DirArg,
    input: Annotated[
        Path | None,
        typer.Option(
            "--input", "-i", envvar="INSTRUCTEMBED_INPUT", help="JSONL, CSV, TSV or parquet records."
        ),
    ] = None,
    from_parquet: Annotated[
        Path | None,
        typer.Option(
            envvar="INSTRUCTEMBED_FROM_PARQUET",
            help="The --output of `embed --engine ray`: add its vectors (not embedded again); texts are read "
            "from the job's input files.",
        ),
    ] = None,
    texts: Annotated[
        str | None,
        typer.Option(
            envvar="INSTRUCTEMBED_TEXTS",
            help="--from-parquet: the job's input files (directory or glob) when they moved since.",
        ),
    ] = None,
    query_instruction: Annotated[
        str | None,
        typer.Option(
            envvar="INSTRUCTEMBED_QUERY_INSTRUCTION",
            help="--from-parquet into a new PATH: the query instruction search uses.",
        ),
    ] = None,
    id_field: IdFieldOpt = "id",
    text_field: TextFieldOpt = "text",
    metadata_field: MetadataFieldOpt = None,
    format: FormatOpt = None,
    commit_every: CommitOpt = 1024,
    progress: ProgressOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Add or replace (by id) the records of INPUT in the index at PATH, with the model it was built
    with; or, with --from-parquet, the vectors a Ray job made (same fingerprint required; a PATH that
    does not exist yet is created with the job's model, instruction and chunking)."""
    setup_logging(verbose)
    from instructembed.index.core import Index

    either = "give --input (records to embed) or --from-parquet (vectors of `embed --engine ray`)"
    if input is not None and from_parquet is not None:
        raise ValueError(f"{either}, not both")
    if from_parquet is not None:
        given = {"--format": format, "--id-field": id_field != "id", "--text-field": text_field != "text"}
        wrong = [name for name, value in given.items() if value]
        if wrong:
            raise ValueError(
                f"{wrong[0]} does not apply to --from-parquet: the job's manifest says how its inputs were read"
            )
        _add_from_parquet(
            path, from_parquet, texts, metadata_field, query_instruction, commit_every, progress
        )
        return
    if input is None:
        raise ValueError(either)
    if texts is not None or query_instruction is not None:
        raise ValueError("--texts and --query-instruction apply to --from-parquet")
    with Index.open(path) as index:  # before reading INPUT: a wrong PATH fails first
        stream, total = _records(input, format, id_field, text_field, metadata_field)
        report = _add_with_progress(index, stream(), total, commit_every, progress)
        typer.echo(_summary(report, index), err=True)


def _add_from_parquet(
    path: Path,
    out_dir: Path,
    texts: str | None,
    metadata_field: str | None,
    query_instruction: str | None,
    commit_every: int,
    progress: bool,
) -> None:
    from instructembed.index.core import Index
    from instructembed.index.from_parquet import create_for, ingest, plan_ingest
    from instructembed.index.store import remove_index

    created = not (path / DB_NAME).is_file()
    if not created and query_instruction is not None:
        raise ValueError(f"{path} exists; --query-instruction applies to a new index")
    index = create_for(path, out_dir, query_instruction=query_instruction) if created else Index.open(path)
    with index:
        try:
            plan = plan_ingest(index, out_dir, texts=texts, metadata_field=metadata_field)
        except Exception:
            if created:  # the index made for these shards is empty: do not leave it behind
                index.close()
                remove_index(path)
            raise
        if created:
            typer.echo(f"created {path} with the job's model, instruction and chunking", err=True)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=plan.documents, unit="doc", desc="indexing", file=sys.stderr, dynamic_ncols=True)
        try:
            report = ingest(index, plan, commit_every=commit_every, on_progress=bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()
        typer.echo(_summary(report, index), err=True)


@index_app.command("delete")
@friendly_errors
def delete_command(
    path: DirArg,
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="An id to delete (repeat the option).")
    ] = None,
    ids_file: Annotated[
        Path | None,
        typer.Option(
            help="A file of ids: one per line (.txt), or the --id-field of JSONL / CSV / TSV / parquet."
        ),
    ] = None,
    id_field: IdFieldOpt = "id",
) -> None:
    """Delete documents by id (unknown ids are reported, not an error)."""
    from instructembed.index.core import Index

    wanted = list(ids or [])
    if ids_file is not None:
        fmt = input_format(ids_file)
        field = "text" if fmt is InputFormat.TEXT else id_field
        wanted += [row.text.strip() for row in read_rows(ids_file, fmt, field, None) if row.text.strip()]
    if not wanted:
        raise ValueError("give ids to delete with --id ID (repeatable) or --ids-file FILE")
    with Index.open(path) as index:
        deleted = index.delete(wanted)
        typer.echo(
            f"deleted {deleted} of {len(set(wanted))} id(s); {len(index)} documents remain "
            "(`instructembed index rebuild` reclaims their space)",
            err=True,
        )


@index_app.command("info")
@friendly_errors
def info_command(
    path: DirArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """What an index holds and how it was made."""
    from instructembed.index.core import Index

    with Index.open(path) as index:
        info = index.info()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    fp = info.pop("fingerprint")
    info.pop("files")
    for key in (
        "model",
        "backend",
        "precision",
        "doc_instruction",
        "query_instruction",
        "chunking",
        "package_version",
    ):
        info[key] = fp[key]
    width = max(len(k) for k in info)
    for key, value in info.items():
        typer.echo(f"{key:<{width}}  {value}")


@index_app.command("rebuild")
@friendly_errors(
    interrupted=lambda kw: "interrupted; the index is unchanged (a rebuild switches over in one commit)"
)
def rebuild_command(
    path: DirArg,
    approximate: Annotated[
        str,
        typer.Option(
            help="hnsw, ivf, int8, binary (codes + float rescoring), none (exact only) or keep (the kind it has)."
        ),
    ] = "keep",
    compact: Annotated[bool, typer.Option(help="Reclaim the rows of replaced and deleted documents.")] = True,
    nlist: Annotated[int | None, typer.Option(min=1, help="IVF lists (default 4 x sqrt(vectors)).")] = None,
    hnsw_m: Annotated[int, typer.Option(min=2, help="HNSW neighbours per node.")] = 32,
    rescore: RescoreOpt = AnnSettings.rescore,
) -> None:
    """Compact the vectors and (re)build the approximate index, switching over in one commit."""
    from instructembed.index.core import Index

    settings: AnnSettings | str | None
    if approximate in ("keep", "none"):
        settings = None if approximate == "none" else "keep"
    else:
        try:
            settings = AnnSettings(kind=AnnKind(approximate), nlist=nlist, hnsw_m=hnsw_m, rescore=rescore)
        except ValueError:
            raise ValueError(
                f"--approximate must be hnsw, ivf, int8, binary, none or keep, got {approximate!r}"
            ) from None
    with Index.open(path) as index:
        done = index.rebuild(settings)  # type: ignore[arg-type]
        typer.echo(
            f"{path}: compacted {done['compacted']} dead vector(s); search is {index.info()['search']}",
            err=True,
        )


@friendly_errors
def search_command(
    index: Annotated[
        Path, typer.Option("--index", envvar="INSTRUCTEMBED_INDEX", help="The index directory.")
    ],
    query: Annotated[list[str] | None, typer.Option("--query", "-q", help="A query (repeatable).")] = None,
    input: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="Queries: JSONL / CSV / TSV / parquet (or text, one per line)."),
    ] = None,
    field: Annotated[str, typer.Option(help="Field/column with the query text.")] = "text",
    id_field: Annotated[
        str, typer.Option(help="Field/column with query ids (written with the hits).")
    ] = "id",
    k: Annotated[
        int, typer.Option("--k", "-k", min=1, envvar="INSTRUCTEMBED_K", help="Documents per query.")
    ] = 10,
    filter: Annotated[
        str | None,
        typer.Option(help='Metadata filter as JSON, e.g. \'{"lang": "en", "year": [2023, 2024]}\'.'),
    ] = None,
    query_instruction: Annotated[
        str | None, typer.Option(help="Override the index's query instruction ('' for none).")
    ] = None,
    pool: Annotated[
        ChunkPool,
        typer.Option(
            envvar="INSTRUCTEMBED_POOL",
            help=f"A document's score: {HEAD_WEIGHT} x its head's (the truncated document) + "
            f"{1 - HEAD_WEIGHT} x its best chunk's (head), its best chunk's (max), or the mean.",
        ),
    ] = ChunkPool.HEAD,
    exact: Annotated[bool, typer.Option(help="Ignore the approximate index.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write hits here (.jsonl); default stdout.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Queries embedded and searched at a time.")] = 256,
    progress: ProgressOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Search an index: one JSON line per query with its top-k hits (id, score, chunk span, metadata, text)."""
    setup_logging(verbose)
    if (query is None) == (input is None):
        raise ValueError("give queries with --query TEXT (repeatable) or --input FILE, one of the two")
    if output is not None and output.suffix.lower() not in (".jsonl", ".ndjson"):
        raise ValueError(f"--output {output} must end in .jsonl")
    parsed_filter = _parse_filter(filter)
    from instructembed.index.core import Index

    with Index.open(index) as opened:
        rows: Iterator[tuple[str | None, str]]
        total: int | None = None
        if query is not None:
            rows = iter([(None, q) for q in query])
            total = len(query)
        elif input is not None:
            fmt = input_format(input)
            rows = ((r.id, r.text) for r in read_rows(input, fmt, field, id_field))
            total = count_lines(input) if fmt in (InputFormat.TEXT, InputFormat.JSONL) else None
        _write_hits(
            opened,
            rows,
            total,
            output,
            k,
            parsed_filter,
            query_instruction,
            pool,
            exact,
            batch_size,
            progress,
        )


def _parse_filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f'--filter is not JSON ({exc.msg} at column {exc.colno}); e.g. \'{{"lang": "en"}}\''
        ) from None
    if not isinstance(value, dict):
        raise ValueError("--filter must be a JSON object of metadata key -> value")
    return value


def _write_hits(
    index: Any,
    rows: Iterator[tuple[str | None, str]],
    total: int | None,
    output: Path | None,
    k: int,
    flt: dict[str, Any] | None,
    query_instruction: str | None,
    pool: ChunkPool,
    exact: bool,
    batch_size: int,
    progress: bool,
) -> None:
    tmp = output.with_name(f".{output.name}.partial-{os.getpid()}") if output else None
    sink: Any = tmp.open("w", encoding="utf-8") if tmp else sys.stdout
    bar = None
    if progress and output is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="query", desc="searching", file=sys.stderr, dynamic_ncols=True)
    number = 0
    try:
        while part := list(islice(rows, batch_size)):
            hits = index.search(
                [t for _, t in part], k, flt, query_instruction=query_instruction, pool=pool, exact=exact
            )
            for (ident, text), found in zip(part, hits, strict=True):
                line = {"query_id": ident if ident is not None else str(number), "query": text}
                line["hits"] = [h.to_json() for h in found]  # type: ignore[assignment]
                sink.write(json.dumps(line, ensure_ascii=False) + "\n")
                number += 1
            if bar is not None:
                bar.update(len(part))
        if tmp is not None and output is not None:
            sink.close()
            os.replace(tmp, output)
            typer.echo(f"wrote the hits of {number} queries to {output}", err=True)
    except BaseException:
        if tmp is not None:
            sink.close()
            tmp.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
