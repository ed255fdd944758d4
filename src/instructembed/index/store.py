"""The SQLite side of an index: the point of truth for what is committed.

One database (`index.sqlite`, WAL journal, synchronous=FULL) holds

- `meta`: key -> JSON value: format version, fingerprint, dimension, `slots` (vector rows committed),
  `dead` (rows no document points to any more: replaced or deleted), the vectors file's name, a
  commit counter, and the approximate index's description;
- `docs`: one row per document: id, sha256 of its text, metadata (a JSON object), chunk count;
- `chunks`: one row per vector: `slot` (its row in the vectors file), its document, chunk number,
  character span and (unless the index was made without) the chunk's text.

A batch commits in one transaction *after* its vectors are on disk, so a crash anywhere leaves the
last commit intact. Writers take `writer.lock` (flock: released by the kernel if the process dies,
so a crash never leaves a stale lock); readers take nothing and read from a WAL snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instructembed.index.errors import IndexCorruptError, IndexLockedError, IndexStoreError

FORMAT_VERSION = 1
DB_NAME = "index.sqlite"
LOCK_NAME = "writer.lock"
_IN_CHUNK = 900  # SQL variables per IN (...) list

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE docs (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text_sha256 TEXT NOT NULL,
    metadata TEXT NOT NULL,
    n_chunks INTEGER NOT NULL,
    truncated INTEGER NOT NULL
);
CREATE TABLE chunks (
    slot INTEGER PRIMARY KEY,
    doc INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT
);
CREATE INDEX chunks_by_doc ON chunks(doc);
"""


@dataclass(frozen=True)
class Meta:
    """What `meta` holds, read in one snapshot."""

    fingerprint: dict[str, Any]
    dimension: int
    slots: int
    dead: int
    vectors_file: str
    commit: int
    ann: dict[str, Any] | None
    store_text: bool
    build: dict[str, Any] | None

    @property
    def live(self) -> int:
        return self.slots - self.dead


def _corrupt(path: Path, exc: sqlite3.DatabaseError) -> IndexCorruptError:
    return IndexCorruptError(
        f"{path} is damaged ({exc}); restore it from a backup, or rebuild the index from its source "
        "(delete the directory and run the build again)"
    )


def connect(path: Path) -> sqlite3.Connection:
    """Open the database of index directory `path` (which must exist) in WAL mode."""
    db = path / DB_NAME
    if not db.is_file():
        raise IndexStoreError(
            f"{path} is not an index ({DB_NAME} is missing); create one with `instructembed index build`"
        )
    try:
        conn = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("SELECT count(*) FROM meta").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _corrupt(db, exc) from None
    return conn


def create_database(path: Path, meta: dict[str, Any]) -> None:
    """Write a new database with the schema and `meta` into directory `path`."""
    conn = sqlite3.connect(str(path / DB_NAME), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()]
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def read_meta(conn: sqlite3.Connection, path: Path) -> Meta:
    try:
        raw = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    except sqlite3.DatabaseError as exc:
        raise _corrupt(path / DB_NAME, exc) from None
    except json.JSONDecodeError as exc:
        raise IndexCorruptError(f"{path / DB_NAME}: a meta value is not JSON ({exc})") from None
    version = raw.get("format_version")
    if not isinstance(version, int):
        raise IndexCorruptError(f"{path / DB_NAME} has no format version: it is not a finished index")
    if version > FORMAT_VERSION:
        raise IndexStoreError(f"{path} was written by a newer instructembed (format {version}); upgrade")
    try:
        return Meta(
            fingerprint=raw["fingerprint"],
            dimension=int(raw["dimension"]),
            slots=int(raw["slots"]),
            dead=int(raw["dead"]),
            vectors_file=str(raw["vectors_file"]),
            commit=int(raw["commit"]),
            ann=raw.get("ann"),
            store_text=bool(raw.get("store_text", True)),
            build=raw.get("build"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorruptError(f"{path / DB_NAME}: meta is incomplete ({exc!r})") from None


def set_meta(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(k, json.dumps(v)) for k, v in values.items()],
    )


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (or a kill: SQLite's journal)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One consistent snapshot for several reads (WAL: writers are not blocked)."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


class WriterLock:
    """One writer per index: an exclusive, non-blocking flock on `writer.lock`.

    The kernel drops the lock when the process exits, however it exits, so no stale lock survives
    a crash. The holder's pid is written into the file for the second writer's message.
    """

    def __init__(self, path: Path) -> None:
        self.path = path / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no flock; SQLite's own lock still serialises
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise IndexLockedError(
                f"another process (pid {holder}) is writing to {self.path.parent}; one writer at a time: "
                "wait for it to finish and run this again (searching works meanwhile)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# ---- rows -------------------------------------------------------------------------------------


def _in_chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


@dataclass(frozen=True)
class StoredDoc:
    key: int
    text_sha256: str
    metadata: str  # canonical JSON
    n_chunks: int


def find_docs(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, StoredDoc]:
    out: dict[str, StoredDoc] = {}
    for part in _in_chunks(ids):
        query = f"SELECT id, key, text_sha256, metadata, n_chunks FROM docs WHERE id IN ({_marks(len(part))})"
        for ident, key, digest, metadata, n in conn.execute(query, list(part)):
            out[ident] = StoredDoc(key, digest, metadata, n)
    return out


def remove_docs(conn: sqlite3.Connection, keys: Sequence[int]) -> int:
    """Delete documents and their chunk rows; returns how many vector rows became dead."""
    dead = 0
    for part in _in_chunks(keys):
        marks = _marks(len(part))
        dead += conn.execute(f"DELETE FROM chunks WHERE doc IN ({marks})", list(part)).rowcount
        conn.execute(f"DELETE FROM docs WHERE key IN ({marks})", list(part))
    return dead


def insert_doc(
    conn: sqlite3.Connection, ident: str, digest: str, metadata: str, n: int, truncated: bool
) -> int:
    cursor = conn.execute(
        "INSERT INTO docs(id, text_sha256, metadata, n_chunks, truncated) VALUES (?, ?, ?, ?, ?)",
        (ident, digest, metadata, n, int(truncated)),
    )
    key = cursor.lastrowid
    if key is None:  # pragma: no cover - sqlite always sets it for an INSERT into a rowid table
        raise RuntimeError("sqlite gave no rowid for an inserted document")
    return key


def insert_chunks(
    conn: sqlite3.Connection, rows: Iterable[tuple[int, int, int, int, int, str | None]]
) -> None:
    """rows: (slot, doc key, chunk, start, end, text)."""
    conn.executemany(
        'INSERT INTO chunks(slot, doc, chunk, start, "end", text) VALUES (?, ?, ?, ?, ?, ?)', rows
    )


def update_metadata(conn: sqlite3.Connection, key: int, metadata: str) -> None:
    conn.execute("UPDATE docs SET metadata = ? WHERE key = ?", (metadata, key))


def renumber_slots(conn: sqlite3.Connection, live: np.ndarray) -> None:
    """Give the chunk rows at slots `live` (ascending) the slots 0..len-1 (compaction), in the caller's
    transaction. Through negative numbers, so no two rows ever hold the same slot mid-update."""
    conn.execute("CREATE TEMP TABLE remap(old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")
    conn.executemany("INSERT INTO remap VALUES (?, ?)", ((int(o), n) for n, o in enumerate(live)))
    conn.execute("UPDATE chunks SET slot = -1 - (SELECT new FROM remap WHERE old = chunks.slot)")
    conn.execute("UPDATE chunks SET slot = -1 - slot")
    conn.execute("DROP TABLE remap")


def slot_docs(conn: sqlite3.Connection, slots: Sequence[int]) -> dict[int, int]:
    """slot -> document key, for the live slots among `slots`."""
    out: dict[int, int] = {}
    for part in _in_chunks(slots):
        out.update(
            conn.execute(f"SELECT slot, doc FROM chunks WHERE slot IN ({_marks(len(part))})", list(part))
        )
    return out


def doc_slots(conn: sqlite3.Connection, keys: Sequence[int]) -> dict[int, list[tuple[int, int]]]:
    """document key -> all its (slot, chunk number), in slot order."""
    out: dict[int, list[tuple[int, int]]] = {}
    for part in _in_chunks(keys):
        for slot, doc, chunk in conn.execute(
            f"SELECT slot, doc, chunk FROM chunks WHERE doc IN ({_marks(len(part))}) ORDER BY slot",
            list(part),
        ):
            out.setdefault(doc, []).append((slot, chunk))
    return out


def describe_slots(conn: sqlite3.Connection, slots: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """slot -> (document id, metadata JSON, chunk, start, end, text) for building hits."""
    out: dict[int, tuple[Any, ...]] = {}
    for part in _in_chunks(slots):
        query = (
            'SELECT c.slot, d.id, d.metadata, c.chunk, c.start, c."end", c.text FROM chunks c '
            f"JOIN docs d ON d.key = c.doc WHERE c.slot IN ({_marks(len(part))})"
        )
        for slot, *rest in conn.execute(query, list(part)):
            out[slot] = tuple(rest)
    return out


def live_slots(conn: sqlite3.Connection, where: str = "", params: Sequence[Any] = ()) -> np.ndarray:
    """Slots of chunks whose document matches `where` (SQL over `d`, the docs table), ascending."""
    query = "SELECT c.slot FROM chunks c JOIN docs d ON d.key = c.doc"
    if where:
        query += f" WHERE {where}"
    rows = conn.execute(query + " ORDER BY c.slot", list(params)).fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def counts(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """(documents, chunks, documents truncated)."""
    docs, truncated = conn.execute("SELECT count(*), coalesce(sum(truncated), 0) FROM docs").fetchone()
    (chunks,) = conn.execute("SELECT count(*) FROM chunks").fetchone()
    return int(docs), int(chunks), int(truncated)


def remove_index(path: Path) -> None:
    """Delete an index directory (used by `index build --overwrite`); refuses a non-index."""
    if not (path / DB_NAME).is_file():
        raise IndexStoreError(f"{path} is not an index; not deleting it")
    with WriterLock(path):
        shutil.rmtree(path)
