"""The files of an `embed --engine ray` job: input shards in, parquet shards and a manifest out.

One input file is one shard (the unit of work, of retry and of resume):

    --input DIR_OR_GLOB   *.jsonl / *.ndjson / *.csv / *.tsv / *.parquet, sorted by path
    --output DIR/
      manifest.json       the fingerprint (model, weights hash, instructions, precision, chunking) and
                          one record per finished shard (its input's size and mtime, rows, bytes)
      shards/<name>.parquet   id, [doc, chunk, start, end,] embedding: the input file's rows in file order
                          (with --chunk one row per chunk, the columns `embed --chunk` writes)

A shard is written to a temporary name beside its final one and renamed when complete, so a shard
under its final name is always whole; it also carries the fingerprint's hash and its input's
identity in its parquet metadata. A rerun skips a shard when its file is there, was made from the
same input file (size, mtime) under the same fingerprint and matches its manifest record; a shard
whose worker renamed it just before the driver died is adopted from its own metadata.

No Ray here: the driver (`job.py`) plans with these functions, and every actor reads and writes with them.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from instructembed.chunking import ChunkSettings
from instructembed.errors import InputFileError, MissingExtraError
from instructembed.files import InputFormat, read_rows
from instructembed.inputs import Item
from instructembed.scale.batches import CHUNK_COLUMNS, Columns, Embedded

if TYPE_CHECKING:
    from instructembed.embedder import Embedder

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SHARDS = "shards"
MANIFEST_FORMAT = "instructembed-embeddings"
MANIFEST_VERSION = 1
#: Parquet key-value metadata of a shard: the fingerprint hash and the input it was made from.
SHARD_KEY = b"instructembed.shard"
SUFFIXES = {
    ".jsonl": InputFormat.JSONL,
    ".ndjson": InputFormat.JSONL,
    ".csv": InputFormat.CSV,
    ".tsv": InputFormat.TSV,
    ".parquet": None,  # read with pyarrow here
}
_TEMP_MARK = ".tmp-"


# ---------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class InputShard:
    """One input file. `path` must be the same on every node (a shared filesystem)."""

    path: str
    rel: str  # relative to the input root; names the output shard and the ids of rows without one
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        """The output shard's file name: readable, and unique per relative path."""
        stem = self.rel.replace("/", "__")
        digest = hashlib.sha256(self.rel.encode("utf-8")).hexdigest()[:8]
        return f"{stem}-{digest}.parquet"

    @property
    def identity(self) -> dict[str, Any]:
        return {"input": self.rel, "input_size": self.size, "input_mtime_ns": self.mtime_ns}


def find_inputs(spec: str) -> list[InputShard]:
    """The input files of a directory (recursively) or a glob pattern, sorted by path."""
    path = Path(spec).expanduser()
    if path.is_dir():
        root = path
        files = [p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and not _hidden(p, path)]
    elif path.is_file():
        root, files = path.parent, [path]
    elif glob.has_magic(spec):
        root = Path(_glob_root(spec)).expanduser()
        files = [Path(p) for p in glob.glob(os.path.expanduser(spec), recursive=True) if Path(p).is_file()]
        unsupported = sorted(p.name for p in files if p.suffix.lower() not in SUFFIXES)
        if unsupported:
            raise InputFileError(
                f"{spec} matches files that are not .jsonl/.ndjson/.csv/.tsv/.parquet: "
                f"{', '.join(unsupported[:5])}; narrow the pattern"
            )
    else:
        raise InputFileError(f"input {spec} does not exist: give a directory, a file or a glob pattern")
    if not files:
        raise InputFileError(f"no .jsonl, .ndjson, .csv, .tsv or .parquet files in {spec}; nothing to embed")
    shards = []
    for p in sorted(files):
        stat = p.stat()
        rel = p.resolve().relative_to(root.resolve()).as_posix()
        shards.append(InputShard(str(p.resolve()), rel, stat.st_size, stat.st_mtime_ns))
    return shards


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _glob_root(pattern: str) -> str:
    """The directory part of a glob before its first wildcard."""
    parts = Path(pattern).parts
    fixed = [p for p in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]]
    return str(Path(*fixed)) if fixed else "."


def iter_shard(
    shard: InputShard, columns: Columns, part_rows: int = 4096
) -> Iterator[tuple[list[str], list[Item]]]:
    """Ids and items of one input file, in file order, `part_rows` at a time (constant memory).

    A row without an id gets 'REL#N' (N counts rows from 0). Errors name the file and the line
    (parquet: the row) and say what to do.
    """
    path = Path(shard.path)
    if not path.is_file():
        raise InputFileError(
            f"input file {path} does not exist on this node; inputs must be on a filesystem every "
            "node of the cluster sees"
        )
    if path.suffix.lower() == ".parquet":
        yield from _iter_parquet(shard, columns, part_rows)
        return
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(f"{path}: unsupported input format (use .jsonl, .csv, .tsv or .parquet)")
    ids: list[str] = []
    items: list[Item] = []
    for n, row in enumerate(read_rows(path, fmt, columns.text, columns.id, columns.instruction)):
        ids.append(row.id if row.id is not None else f"{shard.rel}#{n}")
        items.append(Item(row.instruction, row.text))
        if len(items) == part_rows:
            yield ids, items
            ids, items = [], []
    if items:
        yield ids, items


def _iter_parquet(
    shard: InputShard, columns: Columns, part_rows: int
) -> Iterator[tuple[list[str], list[Item]]]:
    pq = _pyarrow_parquet()
    try:
        source = pq.ParquetFile(shard.path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a broken file
        raise InputFileError(f"{shard.path} is not a readable parquet file: {exc}") from None
    names = source.schema_arrow.names
    for name, what, flag in (
        (columns.text, "text", "--field"),
        (columns.instruction, "instruction", "--instruction-field"),
    ):
        if name is not None and name not in names:
            raise InputFileError(
                f"{shard.path}: no {what} column '{name}' (columns: {', '.join(names)}); "
                f"choose one with {flag}"
            )
    id_name = columns.id if columns.id and columns.id in names else None
    wanted = list(dict.fromkeys(c for c in (columns.text, columns.instruction, id_name) if c))
    n = 0
    for batch in source.iter_batches(batch_size=part_rows, columns=wanted):
        data = batch.to_pydict()
        texts = data[columns.text]
        instructions = data[columns.instruction] if columns.instruction else [None] * len(texts)
        raw_ids = data[id_name] if id_name else [None] * len(texts)
        ids, items = [], []
        for text, instruction, ident in zip(texts, instructions, raw_ids, strict=True):
            for value, name in ((text, columns.text), (instruction, columns.instruction)):
                if name is not None and not isinstance(value, str):
                    raise InputFileError(
                        f"{shard.path}: row {n + 1}: column '{name}' is {type(value).__name__}, "
                        "expected a string"
                    )
            ids.append(str(ident) if ident is not None else f"{shard.rel}#{n}")
            items.append(Item(instruction, text))
            n += 1
        yield ids, items


# ---------------------------------------------------------------------------------------- fingerprint
@dataclass(frozen=True)
class ShardFingerprint:
    """Everything that shapes the vectors of a job. Shards made under another fingerprint never mix."""

    model: str
    weights_sha256: str
    architecture: str
    dimension: int
    max_seq_length: int
    pooling: str
    normalize: bool
    do_lower_case: bool
    backend: str
    precision: str
    instruction: str | None
    instruction_field: str | None
    text_field: str
    id_field: str | None
    chunking: dict[str, Any] | None
    package_version: str = field(default="", compare=False)

    def sha256(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k not in ("package_version", "model")}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()

    def differences(self, other: ShardFingerprint) -> list[str]:
        skip = ("package_version", "model")
        out = []
        for f in fields(self):
            before, now = getattr(self, f.name), getattr(other, f.name)
            if f.name not in skip and before != now:
                out.append(f"{f.name}: the output has {before!r}, this run gives {now!r}")
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardFingerprint:
        names = {f.name for f in fields(cls)}
        missing = names - set(data) - {"package_version"}
        if missing:
            raise InputFileError(f"the manifest's fingerprint lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in names})


def fingerprint_of(
    embedder: Embedder, model: str, columns: Columns, instruction: str | None, chunking: dict[str, Any] | None
) -> ShardFingerprint:
    """The fingerprint of vectors made by `embedder` with these settings (hashes the weights once)."""
    from instructembed import __version__
    from instructembed.export.manifest import model_identity

    spec = embedder.spec
    return ShardFingerprint(
        model=model,
        weights_sha256=model_identity(Path(spec.root)),
        architecture=str(spec.model_type),
        dimension=int(embedder.dimension),
        max_seq_length=int(embedder.max_seq_length),
        pooling=str(spec.pooling.value),
        normalize=bool(spec.normalize),
        do_lower_case=bool(spec.do_lower_case),
        backend=str(embedder.backend.name),
        precision=str(embedder.backend.precision),
        instruction=instruction,
        instruction_field=columns.instruction,
        text_field=columns.text,
        id_field=columns.id,
        chunking=chunking,
        package_version=__version__,
    )


def chunking_json(settings: ChunkSettings | None) -> dict[str, Any] | None:
    """The fingerprint's `chunking`: the settings as a dict, None when documents are not split."""
    return asdict(settings) if settings is not None and settings.enabled else None


# ---------------------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class ShardRecord:
    """A finished shard: where it came from and what it holds."""

    name: str
    input: str
    input_size: int
    input_mtime_ns: int
    rows: int  # input rows (documents)
    vectors: int  # output rows (= rows unless chunked)
    bytes: int
    truncated: int = 0  # input rows that lost tokens to truncation (their row numbers: the shard's metadata)

    def matches(self, shard: InputShard) -> bool:
        return (self.input, self.input_size, self.input_mtime_ns) == (shard.rel, shard.size, shard.mtime_ns)


@dataclass
class Manifest:
    """`DIR/manifest.json`. Only the driver writes it (atomically); workers write only shards."""

    input: str  # the job's --input, absolute: where `index add --from-parquet` reads the texts
    fingerprint: ShardFingerprint
    shards: dict[str, ShardRecord]
    complete: bool = False
    load: dict[str, Any] = field(default_factory=dict)  # Embedder.load options that made the vectors

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_VERSION,
            "input": self.input,
            "fingerprint": asdict(self.fingerprint),
            "fingerprint_sha256": self.fingerprint.sha256(),
            "complete": self.complete,
            "load": self.load,
            "rows": sum(r.rows for r in self.shards.values()),
            "vectors": sum(r.vectors for r in self.shards.values()),
            "shards": {name: asdict(r) for name, r in sorted(self.shards.items())},
        }


def read_manifest(out_dir: Path) -> Manifest | None:
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}")
        shards = {name: ShardRecord(**r) for name, r in data["shards"].items()}
        fingerprint = ShardFingerprint.from_json(data["fingerprint"])
        return Manifest(data["input"], fingerprint, shards, data["complete"], data.get("load", {}))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputFileError(
            f"{path} is not an instructembed embeddings manifest ({exc}); give another --output directory"
        ) from None


def write_manifest(out_dir: Path, manifest: Manifest) -> None:
    path = out_dir / MANIFEST
    tmp = path.with_name(f".{MANIFEST}{_TEMP_MARK}{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(manifest.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def clean_temporaries(out_dir: Path) -> int:
    """Remove the temporary files a killed job left (never a finished shard); returns how many."""
    removed = 0
    for directory in (out_dir, out_dir / SHARDS):
        if directory.is_dir():
            for p in directory.iterdir():
                if p.name.startswith(".") and _TEMP_MARK in p.name:
                    p.unlink(missing_ok=True)
                    removed += 1
    return removed


def complete_record(
    out_dir: Path, shard: InputShard, fingerprint_sha: str, manifest: Manifest | None
) -> ShardRecord | None:
    """The record of `shard` when its output is finished and still valid, else None (redo it)."""
    path = out_dir / SHARDS / shard.name
    if not path.is_file():
        return None
    recorded = manifest.shards.get(shard.name) if manifest is not None else None
    if recorded is not None:
        if recorded.matches(shard) and recorded.bytes == path.stat().st_size:
            return recorded
        return None
    meta = shard_metadata(path)  # written, but the driver died before recording it: adopt it
    if meta is None or meta.get("fingerprint_sha256") != fingerprint_sha:
        return None
    record = ShardRecord(
        shard.name,
        meta["input"],
        meta["input_size"],
        meta["input_mtime_ns"],
        meta["rows"],
        meta["vectors"],
        path.stat().st_size,
        len(meta.get("truncated_rows", [])),
    )
    return record if record.matches(shard) else None


# ---------------------------------------------------------------------------------------- shards
def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("parquet", "pyarrow") from None
    return pq


def shard_metadata(path: Path) -> dict[str, Any] | None:
    """The metadata a shard was written with, or None when it has none (not one of ours)."""
    pq = _pyarrow_parquet()
    try:
        meta = pq.read_metadata(str(path)).metadata or {}
    except Exception:  # unreadable: treat as not ours (it is redone)
        return None
    raw = meta.get(SHARD_KEY)
    return json.loads(raw) if raw else None


class ShardWriter:
    """Writes one output shard in parts to a temporary file; `finish` renames it into place."""

    def __init__(self, out_dir: Path, shard: InputShard, dimension: int, chunked: bool, fingerprint_sha: str):
        import pyarrow as pa

        pq = _pyarrow_parquet()
        self.pa = pa
        self.shard, self.fingerprint_sha = shard, fingerprint_sha
        self.path = out_dir / SHARDS / shard.name
        self.tmp = self.path.with_name(f".{shard.name}{_TEMP_MARK}{uuid.uuid4().hex}")
        cols = [pa.field("id", pa.string())]
        cols += [pa.field(name, pa.int64()) for name in CHUNK_COLUMNS] if chunked else []
        cols.append(pa.field("embedding", pa.list_(pa.float32(), dimension)))
        self.schema = pa.schema(cols)
        self.chunked = chunked
        self.rows = self.vectors = 0
        self.truncated: list[int] = []  # input rows (from 0) that lost tokens to truncation
        self.writer = pq.ParquetWriter(str(self.tmp), self.schema)

    def write(self, ids: Sequence[str], embedded: Embedded) -> None:
        """Append the vectors of documents `ids` (the next rows of the input, in order)."""
        pa = self.pa
        doc = embedded.doc
        columns = [pa.array([ids[d] for d in doc], pa.string())]
        if self.chunked and embedded.spans is not None:
            spans = embedded.spans.copy()
            spans[:, 0] += self.rows  # doc: the row within the input file, from 0
            columns += [pa.array(spans[:, k]) for k in range(len(CHUNK_COLUMNS))]
        flat = pa.array(embedded.vectors.astype("float32", copy=False).reshape(-1))
        columns.append(pa.FixedSizeListArray.from_arrays(flat, embedded.vectors.shape[1]))
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self.truncated += (np.flatnonzero(embedded.truncated) + self.rows).tolist()
        self.rows += len(ids)
        self.vectors += len(doc)

    def finish(self) -> ShardRecord:
        meta = {"fingerprint_sha256": self.fingerprint_sha, **self.shard.identity}
        meta |= {"rows": self.rows, "vectors": self.vectors, "truncated_rows": self.truncated}
        self.writer.add_key_value_metadata({SHARD_KEY: json.dumps(meta).encode("utf-8")})
        self.writer.close()
        os.replace(self.tmp, self.path)  # the shard appears whole or not at all
        s = self.shard
        size = self.path.stat().st_size
        return ShardRecord(
            s.name, s.rel, s.size, s.mtime_ns, self.rows, self.vectors, size, len(self.truncated)
        )

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def iter_shard_tables(out_dir: Path) -> Iterator[tuple[ShardRecord, Any]]:
    """Finished shards of a complete job, as (record, pyarrow Table), in shard-name order.

    What an index ingests: refuses an output whose job has not finished (`complete` is false).
    """
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise InputFileError(f"{out_dir} has no {MANIFEST}; give the --output of an `embed --engine ray` job")
    if not manifest.complete:
        raise InputFileError(
            f"{out_dir}: the job that writes it has not finished; run the same command again to complete it"
        )
    pq = _pyarrow_parquet()
    for name, record in sorted(manifest.shards.items()):
        yield record, pq.read_table(str(out_dir / SHARDS / name))
