"""The vectors of an index: one append-only file of raw little-endian float32 rows, row = slot.

The SQLite database says how many rows are committed (`slots`); anything after them in the file is
the tail of an add that never committed (a crash), which the next writer cuts off before appending.
Readers map exactly the committed rows (`np.memmap`), so opening a million-vector index reads no
vectors and a writer appending behind them changes nothing they see.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from instructembed.index.errors import IndexCorruptError, StorageFullError

ROW_DTYPE = np.dtype("<f4")
#: errno values that mean "no room": a full disk, a quota, or a file-size limit (RLIMIT_FSIZE).
FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_error(exc: OSError, what: Path, committed: str) -> StorageFullError | None:
    """A clear error for a write that ran out of room, or None when `exc` is something else."""
    if exc.errno not in FULL_ERRNOS:
        return None
    return StorageFullError(
        f"no room to write {what} ({exc.strerror}); nothing of this batch was committed and the index "
        f"is at its last commit ({committed}). Free disk space and run the same command again: it "
        "continues where it stopped"
    )


def append_rows(path: Path, committed: int, rows: np.ndarray) -> None:
    """Write `rows` (N, D) after the first `committed` rows of `path`, dropping any uncommitted tail,
    and fsync: when this returns, the rows are on disk (but not yet committed)."""
    dimension = rows.shape[1]
    offset = committed * dimension * ROW_DTYPE.itemsize
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size < offset:
            raise IndexCorruptError(
                f"{path} holds {size // (dimension * ROW_DTYPE.itemsize)} vectors but the index has "
                f"committed {committed}: the vectors file was truncated or replaced. Rebuild the index "
                "from its source (delete the directory and run the build again)"
            )
        os.ftruncate(fd, offset)  # the tail of a batch that never committed
        data = np.ascontiguousarray(rows, dtype=ROW_DTYPE).tobytes()
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], offset + written)
        os.fsync(fd)
    finally:
        os.close(fd)


def map_rows(path: Path, slots: int, dimension: int) -> np.ndarray:
    """The first `slots` rows of `path`, memory-mapped read-only: (slots, D) float32."""
    if slots == 0:
        return np.empty((0, dimension), dtype=np.float32)
    need = slots * dimension * ROW_DTYPE.itemsize
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise IndexCorruptError(
            f"{path} is missing but the index has {slots} committed vectors; restore it from a backup or "
            "rebuild the index from its source"
        ) from None
    if size < need:
        raise IndexCorruptError(
            f"{path} is truncated: it holds {size // (dimension * ROW_DTYPE.itemsize)} of the {slots} "
            "committed vectors. Restore it from a backup or rebuild the index from its source"
        )
    return np.memmap(path, dtype=ROW_DTYPE, mode="r", shape=(slots, dimension))


def copy_rows(source: np.ndarray, keep: np.ndarray, target: Path, block: int = 65536) -> None:
    """Write rows `source[keep]` to a new file `target` (compaction), a block at a time, and fsync."""
    with target.open("wb") as f:
        for start in range(0, len(keep), block):
            f.write(np.ascontiguousarray(source[keep[start : start + block]], dtype=ROW_DTYPE).tobytes())
        f.flush()
        os.fsync(f.fileno())
