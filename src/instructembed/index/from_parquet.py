"""`instructembed index add --from-parquet DIR`: the shards of `embed --engine ray` into an index.

The vectors come from the shards; nothing is embedded again. The shards hold ids, chunk spans and
vectors but no text, and an index needs each document's text (its hash decides what a rerun skips;
chunk texts are what hits return). The texts are read from the job's own input files (the
manifest's `input`, or `texts=` when they moved), each checked to be the very file that was
embedded (the size and mtime the manifest recorded) and row by row to carry the shard's id.

Everything is checked before anything is written: the job finished, its fingerprint agrees with
the index's (model, document instruction, precision, chunking; each difference named), every shard
is there, whole, of the expected schema and row counts, and every record is valid (ids unique, texts
not empty, chunk spans inside their text). Then the records stream into `Index.add` with the shards'
vectors: crash safe and resumable as `index add` is (a rerun skips the committed documents by id and
text hash and continues at the same rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instructembed.chunking import Chunk, ChunkedBatch, ChunkSettings, LegacyChunkingError
from instructembed.errors import InputFileError
from instructembed.files import InputFormat, read_rows
from instructembed.index.core import AddReport, Index
from instructembed.index.errors import FingerprintMismatchError
from instructembed.index.fingerprint import MODEL_FIELDS, Fingerprint, differences
from instructembed.index.records import CheckedRecord, Record, checked, parse_metadata
from instructembed.scale.batches import CHUNK_COLUMNS
from instructembed.scale.shards import (
    MANIFEST,
    SHARDS,
    SUFFIXES,
    InputShard,
    Manifest,
    ShardFingerprint,
    ShardRecord,
    find_inputs,
    read_manifest,
    shard_metadata,
)

_RERUN = "run the same `instructembed embed --engine ray` command again (it rewrites what is missing)"


@dataclass(frozen=True)
class ShardSource:
    """One shard to ingest and the input file its rows were embedded from."""

    record: ShardRecord
    path: Path  # the shard's parquet file
    input: InputShard
    truncated: frozenset[int]  # input rows (from 0) that lost tokens to truncation


@dataclass(frozen=True)
class IngestPlan:
    """What `ingest` adds: checked shards, how to read their texts, and how many documents."""

    out_dir: Path
    sources: list[ShardSource]
    fingerprint: ShardFingerprint
    metadata_field: str | None
    documents: int


def fingerprint_differences(index: Fingerprint, shards: ShardFingerprint) -> list[str]:
    """'field: the index has A, the shards have B' for everything that would make vectors differ."""
    out = differences(index, shards, MODEL_FIELDS, theirs="the shards have")
    if shards.instruction_field is not None:
        out.append(
            f"doc_instruction: the index has {index.doc_instruction!r}, the shards took each row's from "
            f"column '{shards.instruction_field}'"
        )
    elif shards.instruction != index.doc_instruction:
        out.append(
            f"doc_instruction: the index has {index.doc_instruction!r}, the shards have {shards.instruction!r}"
        )
    mine = index.chunking if index.chunk_settings.enabled else None
    if mine != shards.chunking:
        out.append(f"chunking: the index has {_chunking(mine)}, the shards have {_chunking(shards.chunking)}")
    return out


def _chunking(value: dict[str, Any] | None) -> str:
    return "off (documents truncated)" if value is None else repr(value)


def _manifest(out_dir: Path) -> Manifest:
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise InputFileError(
            f"{out_dir} has no {MANIFEST}; give the --output directory of an `embed --engine ray` job"
        )
    if not manifest.complete:
        raise InputFileError(f"{out_dir}: the job that writes it has not finished; {_RERUN}")
    return manifest


def create_for(
    path: Path, out_dir: Path, *, query_instruction: str | None = None, store_text: bool = True, **load: Any
) -> Index:
    """A new index at `path` made the way the job in `out_dir` made its vectors (model, load options,
    document instruction, chunking), ready for `plan_ingest`; `load` adds or overrides load options."""
    manifest = _manifest(out_dir)
    fp = manifest.fingerprint
    if fp.instruction_field is not None:
        raise InputFileError(
            f"the job in {out_dir} took each row's instruction from column '{fp.instruction_field}'; an index "
            "embeds every document with one instruction, so these vectors cannot make one"
        )
    try:
        chunking = (
            ChunkSettings.from_json(fp.chunking) if fp.chunking is not None else ChunkSettings(enabled=False)
        )
    except LegacyChunkingError as exc:
        raise InputFileError(
            f"the job in {out_dir} was run by an older instructembed: {exc}. Run the job again with this "
            "version (into a new --output) and add that"
        ) from None
    return Index.create(
        path,
        model=fp.model,
        doc_instruction=fp.instruction,
        query_instruction=query_instruction,
        chunking=chunking,
        store_text=store_text,
        **{**manifest.load, **load},
    )


def plan_ingest(
    index: Index, out_dir: Path, *, texts: str | None = None, metadata_field: str | None = None
) -> IngestPlan:
    """Check the job's output against `index` and every record it would add; write nothing."""
    manifest = _manifest(out_dir)
    diffs = fingerprint_differences(index.fingerprint, manifest.fingerprint)
    if diffs:
        raise FingerprintMismatchError(
            index.path,
            diffs,
            f"The shards in {out_dir} were embedded differently. Build an index with the shards' settings "
            "(`instructembed index build ... --instruction/--chunk as the job had`), or embed again with the index's",
        )
    spec = texts if texts is not None else manifest.input
    try:
        inputs = {s.rel: s for s in find_inputs(spec)}
    except InputFileError as exc:
        raise InputFileError(
            f"the texts of {out_dir} are read from the job's input files, and {exc}; if they moved, "
            "pass --texts with their directory or glob"
        ) from None
    sources = [
        _check_shard(out_dir, record, inputs, spec, manifest.fingerprint)
        for record in manifest.shards.values()
    ]
    sources.sort(key=lambda s: s.record.name)
    plan = IngestPlan(out_dir, sources, manifest.fingerprint, metadata_field, 0)
    documents = sum(1 for _ in checked(record for record, _ in _documents(plan, vectors=False)))
    if documents == 0:
        raise InputFileError(f"{out_dir} holds no rows; nothing to add")
    return IngestPlan(out_dir, sources, manifest.fingerprint, metadata_field, documents)


def _check_shard(
    out_dir: Path, record: ShardRecord, inputs: dict[str, InputShard], spec: str, fp: ShardFingerprint
) -> ShardSource:
    path = out_dir / SHARDS / record.name
    if not path.is_file():
        raise InputFileError(f"shard {path} is listed in the manifest but missing; {_RERUN}")
    if path.stat().st_size != record.bytes:
        raise InputFileError(
            f"shard {path} has {path.stat().st_size} bytes, the manifest recorded {record.bytes}: it was "
            f"changed or replaced; delete it and {_RERUN}"
        )
    meta = shard_metadata(path)
    if meta is None:
        raise InputFileError(
            f"shard {path} is not a readable shard of this job (no instructembed metadata); delete it and {_RERUN}"
        )
    if meta.get("fingerprint_sha256") != fp.sha256() or meta.get("rows") != record.rows:
        raise InputFileError(
            f"shard {path} does not match the manifest (another job's shard?); delete it and {_RERUN}"
        )
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(str(path))
    wanted = {"id": pa.string(), "embedding": pa.list_(pa.float32(), fp.dimension)}
    wanted |= {name: pa.int64() for name in CHUNK_COLUMNS} if fp.chunking is not None else {}
    for name, kind in wanted.items():
        if schema.get_field_index(name) < 0 or schema.field(name).type != kind:
            found = schema.field(name).type if schema.get_field_index(name) >= 0 else "missing"
            raise InputFileError(
                f"shard {path}: column '{name}' is {found}, expected {kind}; delete it and {_RERUN}"
            )
    if pq.read_metadata(str(path)).num_rows != record.vectors:
        raise InputFileError(
            f"shard {path} holds a different number of rows than the manifest recorded; {_RERUN}"
        )
    source = inputs.get(record.input)
    if source is None:
        raise InputFileError(
            f"the input file {record.input} that shard {record.name} was embedded from is not under {spec}; "
            "its texts are needed: pass --texts with the job's --input"
        )
    if not record.matches(source):
        raise InputFileError(
            f"{source.path} changed since it was embedded (size or modification time differ from the "
            f"manifest's), so its texts may not be the ones embedded; {_RERUN}, then add again"
        )
    return ShardSource(record, path, source, frozenset(meta.get("truncated_rows", [])))


#: One document to add: the record, its chunks (number, start, end) and their vectors (k, D) or None.
Document = tuple[Record, tuple[list[tuple[int, int, int]], np.ndarray | None, bool]]


def _documents(plan: IngestPlan, *, vectors: bool) -> Iterator[Document]:
    """Every document of every shard, in shard then row order, with its chunks (and vectors)."""
    fp = plan.fingerprint
    for src in plan.sources:
        path = Path(src.input.path)
        fmt = SUFFIXES[path.suffix.lower()] or InputFormat.PARQUET
        rows = read_rows(path, fmt, fp.text_field, fp.id_field, metadata_field=plan.metadata_field)
        shard_rows = _shard_rows(src.path, fp.chunking is not None, fp.dimension, vectors)
        pending = next(shard_rows, None)
        n = -1
        for n, row in enumerate(rows):
            ident = row.id if row.id is not None else f"{src.input.rel}#{n}"
            where = f"{path}:{row.line}" if fmt is not InputFormat.PARQUET else f"{path}: row {row.line}"
            spans: list[tuple[int, int, int]] = []
            vecs: list[np.ndarray] = []
            while pending is not None and pending[2] == n:
                k, sid, _, chunk, start, end, vec = pending
                if sid != ident:
                    raise InputFileError(
                        f"shard {src.path}: row {k + 1} has id {sid!r} where {where} has {ident!r}: the shard "
                        f"was not made from this input; delete it and {_RERUN}"
                    )
                start, end = (0, len(row.text)) if fp.chunking is None else (start, end)
                if chunk != len(spans) or not 0 <= start <= end <= len(row.text):
                    raise InputFileError(
                        f"shard {src.path}: row {k + 1} (id {sid!r}) has chunk {chunk} at {start}..{end}, "
                        f"which does not fit its text ({len(row.text)} characters); delete it and {_RERUN}"
                    )
                spans.append((chunk, start, end))
                if vec is not None:
                    vecs.append(vec)
                pending = next(shard_rows, None)
            if not spans:
                raise InputFileError(
                    f"shard {src.path} has no vector for {where} (id {ident!r}); delete it and {_RERUN}"
                )
            metadata = parse_metadata(row.metadata, where, plan.metadata_field) if plan.metadata_field else {}
            stacked = np.stack(vecs) if vectors else None  # (k, D)
            yield Record(ident, row.text, metadata, where), (spans, stacked, n in src.truncated)
        if pending is not None or n + 1 != src.record.rows:
            raise InputFileError(
                f"shard {src.path} does not line up with {path} ({n + 1} input rows, the shard recorded "
                f"{src.record.rows}); delete it and {_RERUN}"
            )


def _shard_rows(
    path: Path, chunked: bool, dimension: int, vectors: bool
) -> Iterator[tuple[int, str, int, int, int, int, np.ndarray | None]]:
    """(row, id, doc, chunk, start, end, vector) of a shard, streamed."""
    import pyarrow.parquet as pq

    columns = ["id", *(CHUNK_COLUMNS if chunked else ()), *(["embedding"] if vectors else [])]
    k = 0
    for batch in pq.ParquetFile(str(path)).iter_batches(batch_size=4096, columns=columns):
        ids = batch.column("id").to_pylist()
        ints = [batch.column(c).to_numpy() for c in CHUNK_COLUMNS] if chunked else None
        vecs = None
        if vectors:
            flat = batch.column("embedding").flatten().to_numpy(zero_copy_only=False)
            vecs = np.asarray(flat, dtype=np.float32).reshape(-1, dimension)  # (B, D)
        for i, ident in enumerate(ids):
            doc, chunk, start, end = (int(c[i]) for c in ints) if ints is not None else (k, 0, 0, 0)
            yield k, ident, doc, chunk, start, end, (vecs[i] if vecs is not None else None)
            k += 1


def ingest(
    index: Index,
    plan: IngestPlan,
    *,
    commit_every: int = 1024,
    on_progress: Callable[[int], None] | None = None,
) -> AddReport:
    """Add the planned documents with the shards' vectors, committing every `commit_every`."""
    if commit_every < 1:
        raise ValueError(f"commit_every must be >= 1, got {commit_every}")
    held: dict[str, tuple[list[tuple[int, int, int]], np.ndarray | None, bool]] = {}

    def records() -> Iterator[Record]:
        for record, chunks in _documents(plan, vectors=True):
            while len(held) >= commit_every:  # older documents are committed (or skipped) by now
                held.pop(next(iter(held)))
            held[record.id] = chunks
            yield record

    def vectors(fresh: Sequence[CheckedRecord]) -> tuple[ChunkedBatch, np.ndarray]:
        chunks: list[Chunk] = []
        rows: list[np.ndarray] = []
        truncated = set()
        for d, r in enumerate(fresh):
            spans, vecs, cut = held[r.id]
            chunks += [Chunk(d, c, s, e, r.text[s:e]) for c, s, e in spans]
            rows.append(vecs if vecs is not None else np.empty((0, plan.fingerprint.dimension), np.float32))
            if cut:
                truncated.add(d)
        return ChunkedBatch(chunks, [], len(fresh), frozenset(truncated)), np.concatenate(rows)

    return index.add(records(), commit_every=commit_every, on_progress=on_progress, vectors=vectors)
