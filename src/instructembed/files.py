"""Streaming readers and writers for the command line: inputs in, embeddings out, constant memory.

Readers yield `Row`s one at a time (JSONL field, CSV/TSV/parquet column, or plain text lines), each
with the line (parquet: row) it came from, so errors can name it; writers append
chunks to a temporary file next to the output and rename it only when everything is written, so a
failure never clobbers an existing file and never leaves a truncated one under the final name.
"""

from __future__ import annotations

import csv
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from instructembed.errors import InputFileError, MissingExtraError


class InputFormat(str, Enum):
    JSONL = "jsonl"
    CSV = "csv"
    TSV = "tsv"
    PARQUET = "parquet"
    TEXT = "text"


class OutputFormat(str, Enum):
    NPY = "npy"
    PARQUET = "parquet"


@dataclass(frozen=True)
class Row:
    id: str | None
    text: str
    instruction: str | None = None
    line: int = 0  # 1-based line of the file (parquet: row number) the record came from
    metadata: object = None  # the raw value of the metadata field, when one was asked for


def input_format(path: Path) -> InputFormat:
    suffix = path.suffix.lower()
    return {
        ".jsonl": InputFormat.JSONL,
        ".ndjson": InputFormat.JSONL,
        ".csv": InputFormat.CSV,
        ".tsv": InputFormat.TSV,
        ".parquet": InputFormat.PARQUET,
    }.get(suffix, InputFormat.TEXT)


def output_format(path: Path) -> OutputFormat:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return OutputFormat.NPY
    if suffix == ".parquet":
        return OutputFormat.PARQUET
    raise InputFileError(f"output {path} must end in .npy or .parquet")


def count_lines(path: Path) -> int:
    """Newline count (+1 for a last line without one); cheap, used only for the progress bar."""
    count, last = 0, b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _open_binary(path: Path) -> Any:
    if not path.exists():
        raise InputFileError(f"input file {path} does not exist")
    if path.is_dir():
        raise InputFileError(f"input {path} is a directory; give a file")
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from None


def _decoded_lines(f: Any, path: Path) -> Iterator[str]:
    """The file's lines as text (endings kept), decoded one line at a time so that a byte that is
    not UTF-8 is reported with its line. A byte-order mark at the start is not part of the first text."""
    for number, raw in enumerate(f, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "re-save the file as UTF-8"
            ) from None


def _text_value(value: object, path: Path, line: int, field: str) -> str:
    if isinstance(value, str):
        return value
    raise InputFileError(f"{path}:{line}: field '{field}' is {type(value).__name__}, expected a string")


def read_rows(
    path: Path,
    fmt: InputFormat,
    field: str = "text",
    id_field: str | None = "id",
    instruction_field: str | None = None,
    skip_blank: bool = False,
    metadata_field: str | None = None,
) -> Iterator[Row]:
    """Yield one `Row` per input record, in file order. Errors name the file and line.

    `metadata_field` (JSONL, CSV/TSV, parquet) fills `Row.metadata` with that field's raw value
    (None where a record lacks it); plain text has no fields.
    """
    if fmt is InputFormat.PARQUET:
        yield from _read_parquet(path, field, id_field, instruction_field, metadata_field)
        return
    with _open_binary(path) as raw:
        f = _decoded_lines(raw, path)
        if fmt is InputFormat.TEXT:
            yield from _read_text(f, skip_blank)
        elif fmt is InputFormat.JSONL:
            yield from _read_jsonl(f, path, field, id_field, instruction_field, metadata_field)
        else:
            yield from _read_table(f, path, fmt, field, id_field, instruction_field, metadata_field)


def _read_text(f: Any, skip_blank: bool) -> Iterator[Row]:
    # One row per line, so row i is line i. A blank line is an (empty) input unless skip_blank,
    # in which case it is dropped and rows carry their line numbers as ids.
    for number, line in enumerate(f, start=1):
        text = line.rstrip("\r\n")
        if skip_blank and not text.strip():
            continue
        yield Row(str(number) if skip_blank else None, text, line=number)


def _read_jsonl(
    f: Any,
    path: Path,
    field: str,
    id_field: str | None,
    instruction_field: str | None,
    metadata_field: str | None = None,
) -> Iterator[Row]:
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue  # blank lines are not records in JSONL
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(
                f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        if not isinstance(record, dict):
            raise InputFileError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        if field not in record:
            present = ", ".join(sorted(record)) or "none"
            raise InputFileError(
                f"{path}:{number}: no field '{field}' (fields present: {present}); choose one with --field"
            )
        ident = record.get(id_field) if id_field else None
        instruction = None
        if instruction_field:
            if instruction_field not in record:
                raise InputFileError(f"{path}:{number}: no instruction field '{instruction_field}'")
            instruction = _text_value(record[instruction_field], path, number, instruction_field)
        yield Row(
            None if ident is None else str(ident),
            _text_value(record[field], path, number, field),
            instruction,
            number,
            record.get(metadata_field) if metadata_field else None,
        )


def _read_table(
    f: Any,
    path: Path,
    fmt: InputFormat,
    field: str,
    id_field: str | None,
    instruction_field: str | None,
    metadata_field: str | None = None,
) -> Iterator[Row]:
    reader = csv.DictReader(f, delimiter="\t" if fmt is InputFormat.TSV else ",")
    columns = reader.fieldnames or []
    if not columns:
        return
    if field not in columns:
        raise InputFileError(
            f"{path}:1: no column '{field}' (columns: {', '.join(columns)}); choose one with --field"
        )
    if instruction_field and instruction_field not in columns:
        raise InputFileError(
            f"{path}:1: no instruction column '{instruction_field}' (columns: {', '.join(columns)})"
        )
    has_id = bool(id_field) and id_field in columns
    for record in reader:
        text = record.get(field)
        if text is None:
            raise InputFileError(f"{path}:{reader.line_num}: row has fewer columns than the header")
        yield Row(
            record[id_field] if has_id and id_field else None,
            text,
            record[instruction_field] if instruction_field else None,
            reader.line_num,
            record.get(metadata_field) if metadata_field else None,
        )


def _read_parquet(
    path: Path, field: str, id_field: str | None, instruction_field: str | None, metadata_field: str | None
) -> Iterator[Row]:
    """Rows of a parquet file, a record batch at a time; `line` is the 1-based row number."""
    if not path.is_file():
        raise InputFileError(
            f"input file {path} does not exist" if not path.exists() else f"{path} is not a file"
        )
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("parquet", "pyarrow") from None
    try:
        source = pq.ParquetFile(str(path))
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError for a broken file
        raise InputFileError(f"{path} is not a readable parquet file: {exc}") from None
    columns = source.schema_arrow.names
    for name, what in ((field, "text"), (instruction_field, "instruction")):
        if name and name not in columns:
            raise InputFileError(
                f"{path}: no {what} column '{name}' (columns: {', '.join(columns)}); choose one with --field"
            )
    wanted = [c for c in (field, id_field, instruction_field, metadata_field) if c and c in columns]
    number = 0
    for batch in source.iter_batches(batch_size=4096, columns=list(dict.fromkeys(wanted))):
        data = batch.to_pydict()
        for i in range(batch.num_rows):
            number += 1
            text = data[field][i]
            if not isinstance(text, str):
                raise InputFileError(
                    f"{path}: row {number}: column '{field}' is {type(text).__name__}, expected a string"
                )
            ident = data[id_field][i] if id_field and id_field in data else None
            instruction = data[instruction_field][i] if instruction_field else None
            if instruction_field and not isinstance(instruction, str):
                raise InputFileError(f"{path}: row {number}: column '{instruction_field}' is not a string")
            yield Row(
                None if ident is None else str(ident),
                text,
                instruction,
                number,
                data[metadata_field][i] if metadata_field and metadata_field in data else None,
            )


class EmbeddingWriter(Protocol):
    rows: int

    def write(self, ids: list[str | None], vectors: np.ndarray) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


#: Element types the writers store: float32 (default), and the quantized `vectors_out` precisions.
WRITER_DTYPES = {"<f4": "float32", "|i1": "int8", "|u1": "uint8"}


class NpyWriter:
    """Appends rows (float32, or int8 / uint8 codes) to a .npy file whose header (row count) is
    fixed up at the end."""

    HEADER_BYTES = 128  # magic + version + length + padded dict; multiple of 64 as the format asks

    def __init__(self, path: Path, dimension: int, dtype: str = "<f4") -> None:
        if dtype not in WRITER_DTYPES:
            raise ValueError(f"NpyWriter writes {', '.join(WRITER_DTYPES)}, not {dtype!r}")
        self.dtype = dtype
        self.path, self.dimension, self.rows = path, dimension, 0
        self.tmp = _temp_path(path)
        self.f = self.tmp.open("wb")
        self.f.write(self._header(0))

    def _header(self, rows: int) -> bytes:
        text = f"{{'descr': '{self.dtype}', 'fortran_order': False, 'shape': ({rows}, {self.dimension}), }}"
        body_len = self.HEADER_BYTES - 10
        return (
            b"\x93NUMPY\x01\x00"
            + struct.pack("<H", body_len)
            + text.ljust(body_len - 1).encode("latin1")
            + b"\n"
        )

    def write(self, ids: list[str | None], vectors: np.ndarray) -> None:
        del ids  # .npy holds vectors only; row order is input order
        self.f.write(np.ascontiguousarray(vectors, dtype=self.dtype).tobytes())
        self.rows += len(vectors)

    def finish(self) -> None:
        self.f.seek(0)
        self.f.write(self._header(self.rows))
        self.f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)


class ParquetWriter:
    """Appends row groups: an `id` column (when the input has ids), any `int_columns` (int64), and
    `embedding` (list<float32>[D], or list<int8>/list<uint8> for quantized codes)."""

    def __init__(
        self,
        path: Path,
        dimension: int,
        with_ids: bool,
        int_columns: tuple[str, ...] = (),
        dtype: str = "<f4",
    ) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise MissingExtraError("parquet", "pyarrow") from None
        self.pa, self.path, self.rows, self.with_ids = pa, path, 0, with_ids
        self.int_columns = int_columns
        fields = [pa.field("id", pa.string())] if with_ids else []
        fields += [pa.field(name, pa.int64()) for name in int_columns]
        if dtype not in WRITER_DTYPES:
            raise ValueError(f"ParquetWriter writes {', '.join(WRITER_DTYPES)}, not {dtype!r}")
        self.dtype = dtype
        element = {"<f4": pa.float32(), "|i1": pa.int8(), "|u1": pa.uint8()}[dtype]
        fields.append(pa.field("embedding", pa.list_(element, dimension)))
        self.schema = pa.schema(fields)
        self.tmp = _temp_path(path)
        self.writer = pq.ParquetWriter(str(self.tmp), self.schema)

    def write(
        self, ids: list[str | None], vectors: np.ndarray, ints: dict[str, list[int]] | None = None
    ) -> None:
        pa = self.pa
        flat = pa.array(np.ascontiguousarray(vectors, dtype=self.dtype).reshape(-1))
        columns = [pa.array(ids, pa.string())] if self.with_ids else []
        columns += [pa.array((ints or {})[name], pa.int64()) for name in self.int_columns]
        columns.append(pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]))
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self.rows += len(vectors)

    def finish(self) -> None:
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)


#: The columns `embed --chunk` writes beside `id` and `embedding`: the 0-based input row, the chunk
#: number within it, and the chunk's character span in the row's text.
CHUNK_COLUMNS = ("doc", "chunk", "start", "end")


def open_writer(path: Path, dimension: int, with_ids: bool, dtype: str = "<f4") -> EmbeddingWriter:
    if output_format(path) is OutputFormat.NPY:
        return NpyWriter(path, dimension, dtype)
    return ParquetWriter(path, dimension, with_ids, dtype=dtype)


def read_records(path: Path, fmt: InputFormat | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Whole records of a JSONL / CSV / TSV / parquet file, in file order, each with where it came
    from (`file:line`, parquet `file: row N`) for error messages; for inputs with several fields
    (pairs, triplets, scored pairs) where `read_rows` reads one text field."""
    fmt = fmt or input_format(path)
    if fmt is InputFormat.TEXT:
        raise InputFileError(
            f"{path}: plain text has no fields; give JSONL, CSV, TSV or parquet (.jsonl, .csv, .tsv, .parquet)"
        )
    if fmt is InputFormat.PARQUET:
        if not path.is_file():
            raise InputFileError(f"input file {path} does not exist")
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise MissingExtraError("parquet", "pyarrow") from None
        try:
            source = pq.ParquetFile(str(path))
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError for a broken file
            raise InputFileError(f"{path} is not a readable parquet file: {exc}") from None
        number = 0
        for batch in source.iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                number += 1
                yield f"{path}: row {number}", record
        return
    with _open_binary(path) as raw:
        f = _decoded_lines(raw, path)
        if fmt is InputFormat.JSONL:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputFileError(
                        f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})"
                    ) from None
                if not isinstance(record, dict):
                    raise InputFileError(
                        f"{path}:{number}: expected a JSON object, got {type(record).__name__}"
                    )
                yield f"{path}:{number}", record
            return
        reader = csv.DictReader(f, delimiter="\t" if fmt is InputFormat.TSV else ",")
        for record in reader:
            if None in record.values():
                raise InputFileError(f"{path}:{reader.line_num}: row has fewer columns than the header")
            yield f"{path}:{reader.line_num}", dict(record)
