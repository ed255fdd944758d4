"""FAISS: exact inner-product search over the memory-mapped vectors, and the opt-in approximate index.

Exact search (the default) is `faiss.knn` over the committed rows in place: nothing is loaded or
copied, so it is always consistent with the last commit. The approximate index (HNSW or IVF-Flat,
inner product) is built from those rows by `Index.rebuild` and written atomically (temporary file,
fsync, rename) as `ann-<commit>.faiss`; rows added after it was built are searched exactly beside
it until the next rebuild. It is opened memory-mapped. The compressed kinds (`int8`: faiss's 8-bit
scalar quantizer, `binary`: sign bits searched by Hamming distance) keep only codes in RAM and
rescore `rescore x k` candidates exactly from the memory-mapped float rows. faiss is imported only here.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from instructembed.errors import MissingExtraError
from instructembed.index.errors import IndexCorruptError
from instructembed.vectors_out import Precision, packed_width, quantize


class AnnKind(str, Enum):
    HNSW = "hnsw"  # graph: best recall per ms, slow to build, no training
    IVF = "ivf"  # inverted lists (IVF-Flat): fast to build, recall set by nprobe
    INT8 = "int8"  # 1 byte per dimension in RAM (faiss 8-bit scalar quantizer), float rescoring
    BINARY = "binary"  # 1 bit per dimension in RAM (sign bits, Hamming), float rescoring

    @property
    def quantized(self) -> bool:
        """Searched over compressed codes, then rescored exactly from the memory-mapped floats."""
        return self in (AnnKind.INT8, AnnKind.BINARY)


@dataclass(frozen=True)
class AnnSettings:
    """How the approximate index is built and searched. Search-time fields may change at any time."""

    kind: AnnKind = AnnKind.HNSW
    hnsw_m: int = 32  # graph neighbours per node
    ef_construction: int = 80
    ef_search: int = 128  # search-time: candidates explored (raised to k when k is larger)
    nlist: int | None = None  # IVF lists; None = 4 * sqrt(N), at least 1
    nprobe: int = 32  # search-time: IVF lists visited
    #: search-time, int8/binary: candidates per wanted row, rescored exactly with the float vectors
    #: (binary at 1M synthetic vectors, docs/index.md: recall@10 0.89 with 10, 1.00 with 40)
    rescore: int = 40

    def __post_init__(self) -> None:
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe", "rescore"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"approximate index setting {name} must be a positive integer, got {value!r}"
                )
        if self.nlist is not None and self.nlist < 1:
            raise ValueError(f"nlist must be a positive integer, got {self.nlist!r}")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnnSettings:
        return cls(**{**data, "kind": AnnKind(data["kind"])})


def faiss_module() -> Any:
    try:
        import faiss
    except ImportError:
        raise MissingExtraError("index", "faiss-cpu") from None
    return faiss


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` rows of `vectors` (N, D) by inner product with each query (Q, D): scores, rows (Q, k).

    `vectors` may be a read-only memmap; faiss reads it in place.
    """
    faiss = faiss_module()
    k = min(k, len(vectors))
    if k == 0:
        return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
    scores, rows = faiss.knn(
        np.ascontiguousarray(queries, dtype=np.float32), vectors, k, metric=faiss.METRIC_INNER_PRODUCT
    )
    return scores, rows


def build_ann(vectors: np.ndarray, settings: AnnSettings, target: Path, block: int = 65536) -> None:
    """Build the approximate index over all rows of `vectors` and write it atomically to `target`."""
    faiss = faiss_module()
    n, dimension = vectors.shape
    if n == 0:
        raise ValueError("the index holds no vectors to build an approximate index over")
    if settings.kind is AnnKind.BINARY:
        binary = faiss.IndexBinaryFlat(8 * packed_width(dimension))
        for start in range(0, n, block):
            binary.add(quantize(vectors[start : start + block], Precision.UBINARY))  # (B, D/8) sign bits
        _write_atomically(lambda path: faiss.write_index_binary(binary, path), target)
        return
    if settings.kind is AnnKind.INT8:  # per-dimension [min, max] -> 256 steps, trained on a sample
        index = faiss.IndexScalarQuantizer(
            dimension, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        sample = np.sort(np.random.default_rng(0).choice(n, size=min(n, 100_000), replace=False))
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    elif settings.kind is AnnKind.HNSW:
        index = faiss.IndexHNSWFlat(dimension, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.ef_construction
    else:
        nlist = settings.nlist or max(1, int(4 * math.sqrt(n)))
        nlist = min(nlist, n)
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.sort(np.random.default_rng(0).choice(n, size=min(n, 64 * nlist), replace=False))
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    for start in range(0, n, block):
        index.add(np.ascontiguousarray(vectors[start : start + block], dtype=np.float32))
    _write_atomically(lambda path: faiss.write_index(index, path), target)


def _write_atomically(write: Any, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(str(tmp))
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def load_ann(path: Path, expected_rows: int, kind: AnnKind = AnnKind.HNSW) -> Any:
    """Open an approximate index (memory-mapped, except binary codes, which are read into RAM: 1 bit
    per dimension); a damaged file is an error that says how to recover."""
    faiss = faiss_module()
    hint = "the exact vectors are intact: run `instructembed index rebuild` to make it again"
    if not path.is_file():
        raise IndexCorruptError(f"{path} (the approximate index) is missing; {hint}")
    try:
        if kind is AnnKind.BINARY:
            index = faiss.read_index_binary(str(path))
        else:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise IndexCorruptError(f"{path} (the approximate index) is damaged ({first}); {hint}") from None
    if index.ntotal != expected_rows:
        raise IndexCorruptError(
            f"{path} holds {index.ntotal} vectors, the index recorded {expected_rows}; {hint}"
        )
    return index


def ann_search(
    index: Any, settings: AnnSettings, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top `k` by inner product: scores, rows (Q, k); rows the index could not fill are -1."""
    faiss = faiss_module()
    k = min(k, int(index.ntotal))
    if k == 0:
        return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
    if settings.kind is AnnKind.BINARY:  # score = -Hamming distance (ranks like the sign-bit dot product)
        distances, rows = index.search(quantize(queries, Precision.UBINARY), k)
        return -distances.astype(np.float32), rows
    if settings.kind is AnnKind.INT8:
        return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)  # type: ignore[no-any-return]
    params: Any
    if settings.kind is AnnKind.HNSW:
        params = faiss.SearchParametersHNSW(efSearch=max(settings.ef_search, k))
    else:
        params = faiss.SearchParametersIVF(nprobe=settings.nprobe)
    scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
    return scores, rows


def rescore(
    vectors: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner products of each query (Q, D) with its candidate rows (Q, C) of `vectors` (N, D,
    a memmap: only those rows are read), best `k` first: scores, rows (Q, k); -1 rows (none) last."""
    q_count, width = candidates.shape
    k = min(k, width)
    safe = np.where(candidates < 0, 0, candidates)  # (Q, C)
    unique, inverse = np.unique(safe.reshape(-1), return_inverse=True)  # rows in file order, once each
    stacked = read_rows(vectors, unique)[inverse].reshape(q_count, width, vectors.shape[1])  # (Q, C, D)
    scores = np.einsum("qcd,qd->qc", stacked, np.asarray(queries, dtype=np.float32))  # (Q, C)
    scores = np.where(candidates < 0, -np.inf, scores).astype(np.float32)
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, best, axis=1), np.take_along_axis(candidates, best, axis=1)


def read_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`vectors[rows]` (rows sorted, unique) as float32 (R, D). From a memory-mapped file this is one
    `pread` per row: a page fault on a cold memmap reads ahead ~128 KiB around each row, 100x what a
    1.5 KiB row needs, which on a machine short of page cache made rescoring slower than exact search."""
    if not isinstance(vectors, np.memmap) or vectors.filename is None or len(rows) == 0:
        return np.ascontiguousarray(vectors[rows], dtype=np.float32)
    row_bytes = vectors.shape[1] * vectors.dtype.itemsize
    out = np.empty((len(rows), vectors.shape[1]), dtype=vectors.dtype)
    fd = os.open(vectors.filename, os.O_RDONLY)
    try:
        for i, row in enumerate(rows.tolist()):
            data = os.pread(fd, row_bytes, vectors.offset + row * row_bytes)
            if len(data) != row_bytes:
                raise IndexCorruptError(f"{vectors.filename} ends before row {row}; rebuild the index")
            out[i] = np.frombuffer(data, dtype=vectors.dtype)
    finally:
        os.close(fd)
    return out.astype(np.float32, copy=False)


def merge_top(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge several (scores, rows) results (Q, k_i) into the best `k` per query, -1 rows last."""
    scores = np.concatenate([s for s, _ in parts], axis=1)
    rows = np.concatenate([r for _, r in parts], axis=1)
    scores = np.where(rows < 0, -np.inf, scores)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


def describe_search(described: dict[str, Any] | None, slots: int) -> str:
    """How an index with this approximate-index record (`Meta.ann`) and `slots` rows is searched."""
    if not described:
        return "exact"
    settings = described["settings"]
    newer = f"exact over {slots - int(described['rows'])} newer vectors"
    if AnnKind(settings["kind"]).quantized:
        factor = settings.get("rescore", AnnSettings.rescore)
        return f"{settings['kind']} codes in RAM, {factor} x k candidates rescored from float + {newer}"
    return f"approximate ({settings['kind']}) + {newer}"
