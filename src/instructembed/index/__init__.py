"""Instruction-aware retrieval over your own corpus: `Index` (FAISS + SQLite), chunking, search.

See `core.py` for the API and the crash-safety argument, `docs/index.md` for measurements.
"""

from __future__ import annotations

from instructembed.chunking import ChunkPool, ChunkSettings
from instructembed.index.ann import AnnKind, AnnSettings
from instructembed.index.core import AddReport, Hit, Index
from instructembed.index.errors import (
    FingerprintMismatchError,
    IndexCorruptError,
    IndexLockedError,
    IndexStoreError,
    RecordError,
    StorageFullError,
)
from instructembed.index.records import Record

__all__ = [
    "AddReport",
    "AnnKind",
    "AnnSettings",
    "ChunkPool",
    "ChunkSettings",
    "FingerprintMismatchError",
    "Hit",
    "Index",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexStoreError",
    "Record",
    "RecordError",
    "StorageFullError",
]
