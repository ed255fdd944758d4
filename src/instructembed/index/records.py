"""What goes into an index: `Record(id, text, metadata)`, checked at the edge.

Every refusal names where the record came from (`file:line` for records read from a file, else its
position in the call) and what to do. A file is checked completely *before* anything is embedded
(`check_file`), so a bad line 90,000 never leaves a half-added file behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructembed.files import InputFormat, Row, read_rows
from instructembed.index.errors import RecordError


@dataclass(frozen=True)
class Record:
    """One document: a unique `id`, its `text`, and optional JSON-object `metadata` for filters."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""  # "file:line" when read from a file; used only in error messages


@dataclass(frozen=True)
class CheckedRecord:
    id: str
    text: str
    metadata_json: str  # canonical: sorted keys, compact
    text_sha256: str
    where: str


def canonical_json(value: Mapping[str, Any], where: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RecordError(
            f"{where}: metadata is not JSON-serialisable ({exc}); use strings, numbers, booleans, null, lists and objects"
        ) from None


def check_record(value: Record | Mapping[str, Any], where: str) -> CheckedRecord:
    """Validate one record (a `Record` or a mapping with id / text / metadata)."""
    ident: Any
    text: Any
    metadata: Any
    if isinstance(value, Record):
        ident, text, metadata = value.id, value.text, value.metadata
        where = value.where or where
    elif isinstance(value, Mapping):
        unknown = set(value) - {"id", "text", "metadata"}
        if unknown:
            raise RecordError(
                f"{where}: unknown key(s) {sorted(unknown)}; a record has id, text and metadata"
            )
        ident, text, metadata = value.get("id"), value.get("text"), value.get("metadata") or {}
    else:
        raise RecordError(
            f"{where}: a record is a Record or a dict with id, text, metadata; got {type(value).__name__}"
        )
    if ident is None or (isinstance(ident, str) and not ident.strip()):
        raise RecordError(f"{where}: the record has no id; every document needs a unique, non-empty id")
    if not isinstance(ident, str):
        raise RecordError(f"{where}: id must be a string, got {type(ident).__name__} {ident!r}")
    if not isinstance(text, str):
        raise RecordError(f"{where}: text of id {ident!r} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise RecordError(f"{where}: the text of id {ident!r} is empty; remove the record or give it text")
    for name, s in (("id", ident), ("text", text)):
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RecordError(
                f"{where}: the {name} of id {ident!r} holds an unpaired surrogate at position {exc.start}; "
                "send valid Unicode"
            ) from None
    if not isinstance(metadata, Mapping):
        raise RecordError(
            f"{where}: metadata of id {ident!r} must be a JSON object, got {type(metadata).__name__}"
        )
    if any(not isinstance(k, str) for k in metadata):
        raise RecordError(f"{where}: metadata keys of id {ident!r} must be strings")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return CheckedRecord(ident, text, canonical_json(metadata, where), digest, where)


def checked(records: Iterable[Record | Mapping[str, Any]]) -> Iterator[CheckedRecord]:
    """Validate records as they stream; a duplicate id names both places."""
    seen: dict[str, str] = {}
    for number, value in enumerate(records, start=1):
        record = check_record(value, f"record {number}")
        first = seen.get(record.id)
        if first is not None:
            raise RecordError(
                f"{record.where}: duplicate id {record.id!r} (first at {first}); ids must be unique in "
                "one add. To replace a document, add it again in a later call"
            )
        seen[record.id] = record.where
        yield record


def parse_metadata(raw: object, where: str, name: str) -> dict[str, Any]:
    """A metadata field's value from a file: a JSON object, or a string holding one."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RecordError(
                f"{where}: metadata field '{name}' is not JSON ({exc.msg} at column {exc.colno}); "
                'give a JSON object such as {"lang": "en"}'
            ) from None
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: metadata field '{name}' must be a JSON object, got {type(raw).__name__}")
    return raw


@dataclass(frozen=True)
class FileFields:
    """Which fields of an input file hold what."""

    id_field: str = "id"
    text_field: str = "text"
    metadata_field: str | None = None


def file_records(path: Path, fmt: InputFormat, fields: FileFields) -> Iterator[Record]:
    """Records of a JSONL / CSV / TSV / parquet file, streamed, each knowing its `file:line`."""
    if fmt is InputFormat.TEXT:
        raise RecordError(
            f"{path}: an index needs an id per document; give JSONL, CSV, TSV or parquet with an id "
            "column (plain text has no fields)"
        )
    rows: Iterator[Row] = read_rows(
        path, fmt, fields.text_field, fields.id_field, metadata_field=fields.metadata_field
    )
    for row in rows:
        where = f"{path}:{row.line}" if fmt is not InputFormat.PARQUET else f"{path}: row {row.line}"
        if row.id is None or not row.id.strip():
            raise RecordError(
                f"{where}: no id (field '{fields.id_field}'); every document needs one, choose the field "
                "with --id-field"
            )
        metadata = (
            parse_metadata(row.metadata, where, fields.metadata_field or "") if fields.metadata_field else {}
        )
        yield Record(row.id, row.text, metadata, where)


def check_file(path: Path, fmt: InputFormat, fields: FileFields) -> int:
    """Read a whole input file once and validate every record (ids, duplicates, texts, metadata)
    without embedding anything; returns the number of records."""
    n = 0
    for _ in checked(file_records(path, fmt, fields)):
        n += 1
    if n == 0:
        raise RecordError(f"{path} holds no records; nothing to index")
    return n
