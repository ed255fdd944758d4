"""`Index`: instruction-aware retrieval over your own corpus, embedded (no server needed).

    index = Index.create("my-index", model="all-MiniLM-L6-v2",
                         doc_instruction="Represent the document for retrieval: ",
                         query_instruction="Represent the question for retrieving supporting documents: ")
    index.add([{"id": "a", "text": "...", "metadata": {"lang": "en"}}, ...])   # upsert, commits in batches
    hits = index.search(["what is ...?"], k=10, filter={"lang": "en"})        # list[list[Hit]]

A directory holds `index.sqlite` (the point of truth, see store.py), `vectors-<n>.f32` (the rows,
see vectors.py), optionally `ann-<n>.faiss` (see ann.py) and `writer.lock`.

Adding is crash-safe: each batch's vectors are appended and fsynced, *then* one SQLite transaction
commits its rows and the new row count. Killed anywhere, the index is at its last commit; running
the same add again skips what was committed (same id, same text hash) and redoes the rest at the
same rows, so it ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import numpy as np

from instructembed.checkpoint import role_prompt_text
from instructembed.chunking import ChunkedBatch, ChunkPool, ChunkSettings, Splitter, chunk_documents
from instructembed.index import ann, store
from instructembed.index.errors import FingerprintMismatchError, IndexStoreError, StorageFullError
from instructembed.index.fingerprint import (
    BUILD_FIELDS,
    Fingerprint,
    check_model,
    differences,
    fingerprint_of,
    join_hint,
    stored_fingerprint,
    warn_version,
)
from instructembed.index.records import CheckedRecord, Record, checked
from instructembed.index.search import (
    DocScores,
    Hit,
    build_hits,
    doc_scores,
    filter_sql,
    rank_documents,
    subset_fetch,
)
from instructembed.index.vectors import append_rows, copy_rows, fsync_dir, map_rows, storage_error
from instructembed.inputs import Item

log = logging.getLogger(__name__)
#: New documents -> their chunks (in document order) and the chunks' vectors (C, D) float32.
VectorSource = Callable[[Sequence[CheckedRecord]], tuple[ChunkedBatch, np.ndarray]]
#: A filter that leaves at most this many rows (or a quarter of the index) is searched exactly over
#: just those rows; a wider one is applied to chunks as they are fetched.
_GATHER_ROWS = 50_000


@dataclass
class AddReport:
    added: int = 0  # new ids
    replaced: int = 0  # ids whose text changed (re-embedded)
    unchanged: int = 0  # same id and text hash: skipped (this is how a rerun resumes)
    metadata_updated: int = 0  # same text, new metadata: updated without embedding
    chunks: int = 0  # vectors written
    truncated: int = 0  # documents that lost tokens to truncation (chunking off, or a giant word)
    commits: int = 0


class Index:
    """An index directory opened for reading and (one process at a time) writing."""

    def __init__(self, path: Path, conn: sqlite3.Connection, embedder: Any = None) -> None:
        self.path = path
        self._conn = conn
        self._mutex = threading.RLock()
        self._writing_depth = 0
        self._lock = store.WriterLock(path)
        meta = store.read_meta(conn, path)
        try:
            self.fingerprint = stored_fingerprint(meta.fingerprint, path, meta.build)
        except IndexStoreError:
            conn.close()
            raise
        self.dimension = meta.dimension
        self._meta = meta
        self._vectors: tuple[str, int, np.ndarray] | None = None
        self._ann: tuple[str, Any] | None = None
        map_rows(path / meta.vectors_file, meta.slots, meta.dimension)  # a truncated file fails here
        warn_version(self.fingerprint, path)
        self._embedder = None
        if embedder is not None:
            self._check_model(embedder)
            self._embedder = embedder

    # ------------------------------------------------------------------ creating and opening
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        model: str = "all-MiniLM-L6-v2",
        doc_instruction: str | None = None,
        query_instruction: str | None = None,
        chunking: ChunkSettings | None = None,
        store_text: bool = True,
        embedder: Any = None,
        exist_ok: bool = False,
        **load_options: Any,
    ) -> Index:
        """A new, empty index at `path` (made in a temporary directory and renamed into place).

        `load_options` go to `Embedder.load` (backend, dtype, quantize, max_seq_length, ...) and are
        recorded, so `Index.open` loads the same model the same way. With `exist_ok`, an existing
        index made with the same settings is opened instead (how a build resumes); one made with
        other settings is refused, naming each difference.
        """
        target = Path(path)
        chunking = chunking or ChunkSettings()
        if embedder is None:
            from instructembed.embedder import Embedder

            embedder = Embedder.load(model, **load_options)
        # Unset instructions are the model's own declared document / query prompts (none for
        # INSTRUCTOR checkpoints), recorded explicitly in the fingerprint.
        declared = getattr(getattr(embedder, "spec", None), "prompts", None)
        if doc_instruction is None:
            doc_instruction = role_prompt_text(declared, "document")
        if query_instruction is None:
            query_instruction = role_prompt_text(declared, "query")
        if chunking.enabled:  # a window the instruction leaves no room in fails now, not mid-add
            Splitter(embedder.tokenizer, chunking).budget(doc_instruction)
        wanted = fingerprint_of(
            embedder,
            model=str(Path(model).resolve()) if Path(model).expanduser().is_dir() else model,
            doc_instruction=doc_instruction,
            query_instruction=query_instruction,
            chunking=chunking,
            load=load_options,
        )
        if (target / store.DB_NAME).exists():
            if not exist_ok:
                raise IndexStoreError(
                    f"{target} already holds an index; open it (Index.open / `instructembed index add`) "
                    "or choose a new directory"
                )
            index = cls.open(target)
            diffs = differences(index.fingerprint, wanted, BUILD_FIELDS)
            if diffs:
                index.close()
                hint = join_hint(diffs, target, index._meta.build)
                raise FingerprintMismatchError(
                    target,
                    diffs,
                    hint or "Use the same settings to continue it, or build into a new directory",
                )
            index._embedder = embedder
            return index
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise IndexStoreError(f"{target} exists and is not an index; choose a new or empty directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.creating-", dir=target.parent))
        try:
            (tmp / "vectors-0.f32").touch()
            meta = {
                "format_version": store.FORMAT_VERSION,
                "fingerprint": wanted.to_json(),
                "dimension": int(embedder.dimension),
                "slots": 0,
                "dead": 0,
                "vectors_file": "vectors-0.f32",
                "commit": 0,
                "ann": None,
                "store_text": store_text,
                "build": None,
            }
            store.create_database(tmp, meta)
            if target.exists():
                target.rmdir()
            tmp.rename(target)
            fsync_dir(target.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(target, store.connect(target), embedder)

    @classmethod
    def open(cls, path: str | Path, *, embedder: Any = None) -> Index:
        """Open an existing index. The model loads when first needed (from the fingerprint), or give
        a loaded `embedder`: it must make the same vectors (same weights, backend, precision)."""
        target = Path(path)
        if not target.is_dir():
            raise IndexStoreError(
                f"{target} does not exist; create an index with `instructembed index build`"
            )
        return cls(target, store.connect(target), embedder)

    def close(self) -> None:
        with self._mutex:
            self._conn.close()
            self._vectors = self._ann = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the model
    @property
    def embedder(self) -> Any:
        """The model that embeds documents and queries, loaded from the fingerprint on first use."""
        if self._embedder is None:
            from instructembed.embedder import Embedder

            fp = self.fingerprint
            loaded = Embedder.load(fp.model, **fp.load_options())
            self._check_model(loaded)
            self._embedder = loaded
        return self._embedder

    def _check_model(self, embedder: Any) -> None:
        fp = self.fingerprint
        current = fingerprint_of(
            embedder,
            model=fp.model,
            doc_instruction=fp.doc_instruction,
            query_instruction=fp.query_instruction,
            chunking=fp.chunk_settings,
            load=fp.load,
        )
        check_model(fp, current, self.path, self._meta.build)

    # ------------------------------------------------------------------ writing
    @contextmanager
    def writer(self) -> Iterator[Index]:
        """Hold the writer lock across several calls (a build: record it, add, mark it complete)."""
        with self._mutex:
            if self._writing_depth == 0:
                self._lock.acquire()
                try:
                    self._cleanup()
                except BaseException:
                    self._lock.release()
                    raise
            self._writing_depth += 1
        try:
            yield self
        finally:
            with self._mutex:
                self._writing_depth -= 1
                if self._writing_depth == 0:
                    self._lock.release()

    def _cleanup(self) -> None:
        """Remove files no commit points to (left by a crash during a rebuild or a creation)."""
        meta = store.read_meta(self._conn, self.path)
        keep = {meta.vectors_file, store.DB_NAME, store.LOCK_NAME}
        if meta.ann:
            keep.add(str(meta.ann["file"]))
        for item in self.path.iterdir():
            stale = item.name.startswith((".ann-", "vectors-", "ann-")) and item.name not in keep
            if stale and item.is_file():
                log.info("removing %s (no commit refers to it)", item)
                item.unlink(missing_ok=True)

    def add(
        self,
        records: Iterable[Record | Mapping[str, Any]],
        *,
        commit_every: int = 1024,
        on_progress: Callable[[int], None] | None = None,
        vectors: VectorSource | None = None,
    ) -> AddReport:
        """Add or replace documents (upsert by id), committing every `commit_every` records.

        A list (any sequence) is validated completely before anything is written; an iterator is
        validated as it streams, so a bad record stops the add with an error that names it and the
        batches before it stay committed. Unchanged documents are skipped without embedding.
        `vectors`: where the new documents' chunks and vectors come from (default: chunked and
        embedded with the index's model; `index add --from-parquet` gives those a Ray job made).
        """
        if commit_every < 1:
            raise ValueError(f"commit_every must be >= 1, got {commit_every}")
        if isinstance(records, Sequence):
            for _ in checked(records):
                pass
        if vectors is None:
            embedder, fp = self.embedder, self.fingerprint
            vectors = lambda fresh: _embed(embedder, [Item(fp.doc_instruction, r.text) for r in fresh], fp)  # noqa: E731
        report = AddReport()
        with self.writer():
            stream = checked(records)
            while batch := list(islice(stream, commit_every)):
                self._add_batch(vectors, batch, report)
                if on_progress is not None:
                    on_progress(len(batch))
        return report

    def _add_batch(self, source: VectorSource, batch: list[CheckedRecord], report: AddReport) -> None:
        with self._mutex:
            meta = store.read_meta(self._conn, self.path)
            existing = store.find_docs(self._conn, [r.id for r in batch])
        fresh = [r for r in batch if r.id not in existing or existing[r.id].text_sha256 != r.text_sha256]
        relabel = [
            r
            for r in batch
            if r.id in existing
            and existing[r.id].text_sha256 == r.text_sha256
            and existing[r.id].metadata != r.metadata_json
        ]
        report.unchanged += len(batch) - len(fresh) - len(relabel)
        if not fresh and not relabel:
            return
        chunk_rows: list[tuple[int, int, int, int, int, str | None]] = []
        slots = meta.slots
        if fresh:
            chunked, vectors = source(fresh)  # (C, D)
            path = self.path / meta.vectors_file
            try:
                append_rows(path, meta.slots, vectors)
            except OSError as exc:
                raise storage_error(exc, path, f"{meta.slots} vectors") or exc from None
            slots = meta.slots + len(vectors)
        with self._mutex:
            try:
                with store.write_transaction(self._conn):
                    dead = 0
                    if fresh:
                        replaced_keys = [existing[r.id].key for r in fresh if r.id in existing]
                        dead = store.remove_docs(self._conn, replaced_keys)
                        chunk_rows = self._insert(fresh, chunked, meta.slots, meta.store_text)
                    for r in relabel:
                        store.update_metadata(self._conn, existing[r.id].key, r.metadata_json)
                    store.set_meta(
                        self._conn, {"slots": slots, "dead": meta.dead + dead, "commit": meta.commit + 1}
                    )
            except sqlite3.OperationalError as exc:
                if "full" in str(exc).lower() or "disk" in str(exc).lower():
                    raise StorageFullError(
                        f"could not commit to {self.path / store.DB_NAME} ({exc}); nothing of this batch was "
                        "committed and the index is at its last commit. If the disk is full, free space and run "
                        "the same command again: it continues where it stopped"
                    ) from None
                raise
        replaced = sum(1 for r in fresh if r.id in existing)
        report.added += len(fresh) - replaced
        report.replaced += replaced
        report.metadata_updated += len(relabel)
        report.chunks += len(chunk_rows)
        report.truncated += len(chunked.truncated) if fresh else 0
        report.commits += 1

    def _insert(
        self, fresh: list[CheckedRecord], chunked: ChunkedBatch, first_slot: int, store_text: bool
    ) -> list[tuple[int, int, int, int, int, str | None]]:
        """Rows for new documents and their chunks (at slots from `first_slot`), in the caller's
        transaction; returns the chunk rows written."""
        per_doc = np.bincount(chunked.doc_of_chunk(), minlength=len(fresh))
        keys = [
            store.insert_doc(
                self._conn, r.id, r.text_sha256, r.metadata_json, int(per_doc[i]), i in chunked.truncated
            )
            for i, r in enumerate(fresh)
        ]
        rows = [
            (first_slot + offset, keys[c.doc], c.index, c.start, c.end, c.text if store_text else None)
            for offset, c in enumerate(chunked.chunks)
        ]
        store.insert_chunks(self._conn, rows)
        return rows

    def delete(self, ids: Iterable[str]) -> int:
        """Delete documents by id (unknown ids are ignored); returns how many were deleted."""
        wanted = list(dict.fromkeys(ids))
        if any(not isinstance(i, str) for i in wanted):
            raise TypeError("delete() takes an iterable of string ids")
        with self.writer(), self._mutex, store.write_transaction(self._conn):
            meta = store.read_meta(self._conn, self.path)
            found = store.find_docs(self._conn, wanted)
            dead = store.remove_docs(self._conn, [d.key for d in found.values()])
            if found:
                store.set_meta(self._conn, {"dead": meta.dead + dead, "commit": meta.commit + 1})
        return len(found)

    def record_build(self, build: dict[str, Any]) -> None:
        """Remember what a build is made from (`instructembed index build` checks it on a rerun)."""
        with self.writer(), self._mutex, store.write_transaction(self._conn):
            store.set_meta(self._conn, {"build": build})

    def rebuild(
        self, approximate: ann.AnnSettings | Literal["keep"] | None = "keep", *, compact: bool = True
    ) -> dict[str, Any]:
        """Compact away the rows of replaced and deleted documents, and (re)build the approximate
        index (`"keep"`: the kind it has, if any; None: exact search only). Crash-safe: new files
        are written beside the old ones and one commit switches to them."""
        with self.writer(), self._mutex:
            meta = store.read_meta(self._conn, self.path)
            settings = ann.AnnSettings.from_json(meta.ann["settings"]) if meta.ann else None
            if approximate != "keep":
                settings = approximate
            done: dict[str, Any] = {"compacted": 0, "approximate": None}
            if compact and meta.dead:
                live = store.live_slots(self._conn)
                name = f"vectors-{meta.commit + 1}.f32"
                copy_rows(
                    map_rows(self.path / meta.vectors_file, meta.slots, meta.dimension),
                    live,
                    self.path / name,
                )
                fsync_dir(self.path)
                with store.write_transaction(self._conn):
                    store.renumber_slots(self._conn, live)
                    store.set_meta(
                        self._conn,
                        {
                            "slots": len(live),
                            "dead": 0,
                            "vectors_file": name,
                            "ann": None,
                            "commit": meta.commit + 1,
                        },
                    )
                done["compacted"] = meta.dead
                meta = store.read_meta(self._conn, self.path)
            if settings is not None and meta.slots:
                name = f"ann-{meta.commit + 1}.faiss"
                rows = map_rows(self.path / meta.vectors_file, meta.slots, meta.dimension)
                ann.build_ann(rows, settings, self.path / name)
                fsync_dir(self.path)
                described = {"settings": settings.to_json(), "file": name, "rows": meta.slots}
                with store.write_transaction(self._conn):
                    store.set_meta(self._conn, {"ann": described, "commit": meta.commit + 1})
                done["approximate"] = described
            elif meta.ann is not None and settings is None:
                with store.write_transaction(self._conn):
                    store.set_meta(self._conn, {"ann": None, "commit": meta.commit + 1})
            self._cleanup()
        return done

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        with self._mutex:
            return store.counts(self._conn)[0]

    def search(
        self,
        queries: Sequence[str],
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        *,
        query_instruction: str | None = None,
        pool: ChunkPool | str = ChunkPool.HEAD,
        exact: bool = False,
    ) -> list[list[Hit]]:
        """The top `k` documents for each query, best first.

        Queries are embedded with the index's query instruction (`query_instruction` overrides it;
        "" embeds them without one). `filter`: metadata key -> value (or list of values, any of);
        all keys must match. `pool`: a document's score is `chunking.HEAD_WEIGHT` x its head's
        (the truncated document's) + the rest x its best chunk's ("head", the default); its best
        chunk's ("max"); or the mean over its chunks ("mean"). `exact=True` ignores the approximate
        index.
        """
        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise TypeError("search() takes a list of query strings; wrap a single query in a list")
        for i, q in enumerate(queries):
            if not isinstance(q, str) or not q.strip():
                raise ValueError(f"query {i} is empty or not a string; every query needs text")
        instruction = self.fingerprint.query_instruction if query_instruction is None else query_instruction
        vectors = self.embedder.embed(list(queries), instruction=instruction or None)
        return self.search_vectors(vectors, k, filter, pool=pool, exact=exact)

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        *,
        pool: ChunkPool | str = ChunkPool.HEAD,
        exact: bool = False,
    ) -> list[list[Hit]]:
        """`search` for query vectors you embedded yourself: (Q, D) float32."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        pool = ChunkPool(pool)
        queries = np.ascontiguousarray(vectors, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"query vectors must be (Q, {self.dimension}), got {queries.shape}")
        where, params = filter_sql(filter)
        with self._mutex, store.read_transaction(self._conn):
            meta = store.read_meta(self._conn, self.path)
            rows = self._rows(meta)
            conn = self._conn
            slot_docs: Callable[[Sequence[int]], dict[int, int]] = lambda s: store.slot_docs(conn, s)  # noqa: E731
            fetch, total = self._fetcher(meta, rows, exact)
            if where:
                allowed = store.live_slots(conn, where, params)
                if len(allowed) <= max(_GATHER_ROWS, meta.slots // 4):
                    subset = np.ascontiguousarray(rows[allowed])  # (A, D): search exactly these
                    fetch, total = subset_fetch(subset, allowed), len(allowed)
                else:
                    mask = np.zeros(meta.slots, dtype=bool)
                    mask[allowed] = True
                    slot_docs = lambda s: {k: v for k, v in store.slot_docs(conn, s).items() if mask[k]}  # noqa: E731

            def mean_scores(query: np.ndarray, keys: Sequence[int]) -> dict[int, DocScores]:
                out = {}
                for key, doc_rows in store.doc_slots(conn, keys).items():
                    slots = [slot for slot, _ in doc_rows]
                    out[key] = doc_scores(rows[slots] @ query, slots, [chunk for _, chunk in doc_rows])
                return out

            first = min(total, 2 * k + 16 + min(meta.dead, 4 * k))
            ranked = rank_documents(queries, k, fetch, total, slot_docs, pool, mean_scores, first)
            return build_hits(conn, ranked)

    def _rows(self, meta: store.Meta) -> np.ndarray:
        if self._vectors is None or self._vectors[:2] != (meta.vectors_file, meta.slots):
            self._vectors = (
                meta.vectors_file,
                meta.slots,
                map_rows(self.path / meta.vectors_file, meta.slots, meta.dimension),
            )
        return self._vectors[2]

    def _fetcher(self, meta: store.Meta, rows: np.ndarray, exact: bool) -> tuple[Any, int]:
        """Best-first chunk fetching over all committed rows: exact, or approximate + exact tail."""
        if exact or not meta.ann:
            return (lambda q, kf: ann.exact_search(rows, q, kf)), meta.slots
        described = meta.ann
        if self._ann is None or self._ann[0] != described["file"]:
            kind = ann.AnnKind(described["settings"]["kind"])
            self._ann = (
                described["file"],
                ann.load_ann(self.path / described["file"], int(described["rows"]), kind),
            )
        index, settings, covered = (
            self._ann[1],
            ann.AnnSettings.from_json(described["settings"]),
            int(described["rows"]),
        )
        tail = rows[covered:]

        def fetch(q: np.ndarray, kf: int) -> tuple[np.ndarray, np.ndarray]:
            if settings.kind.quantized:  # codes find candidates; the float rows decide
                _, candidates = ann.ann_search(index, settings, q, kf * settings.rescore)
                parts = [ann.rescore(rows, q, candidates, kf)]
            else:
                parts = [ann.ann_search(index, settings, q, kf)]
            if len(tail):
                scores, found = ann.exact_search(tail, q, kf)
                parts.append((scores, found + covered))
            return ann.merge_top(parts, kf)

        return fetch, meta.slots

    def info(self) -> dict[str, Any]:
        """What the index holds and how it was made (for `instructembed index info`)."""
        with self._mutex, store.read_transaction(self._conn):
            meta = store.read_meta(self._conn, self.path)
            docs, chunks, truncated = store.counts(self._conn)
        files = {p.name: p.stat().st_size for p in self.path.iterdir() if p.is_file()}
        return {
            "path": str(self.path),
            "documents": docs,
            "chunks": chunks,
            "vectors": meta.slots,
            "dead_vectors": meta.dead,
            "truncated_documents": truncated,
            "dimension": meta.dimension,
            "commit": meta.commit,
            "search": ann.describe_search(meta.ann, meta.slots),
            "approximate": meta.ann,
            "stores_text": meta.store_text,
            "fingerprint": self.fingerprint.to_json(),
            "build": meta.build,
            "disk_bytes": sum(files.values()),
            "files": files,
        }


def _embed(embedder: Any, items: list[Item], fp: Fingerprint) -> tuple[ChunkedBatch, np.ndarray]:
    chunked = chunk_documents(embedder, items, fp.chunk_settings)
    return chunked, embedder.embed_tokenized(chunked.rows)
