"""`embed --engine ray --chunk` and `index add --from-parquet` on real Ray output, real FAISS + SQLite.

The Ray job's chunk rows equal `embed --chunk` in one process; an index made from its shards equals one
`index build` makes from the same rows (rows, slots, texts, metadata; vectors and search within 1e-6);
killed mid-ingest and run again it ends the same; bad shards are refused before anything is written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from helpers.index_files import assert_same_index
from instructembed.chunking import ChunkSettings
from instructembed.cli import app
from instructembed.errors import InputFileError
from instructembed.index import FingerprintMismatchError, Index
from instructembed.index.from_parquet import create_for, ingest, plan_ingest
from instructembed.scale.batches import Columns, ModelOptions
from instructembed.scale.job import JobConfig, ShardWorker, plan
from instructembed.scale.shards import MANIFEST, SHARD_KEY, SHARDS, fingerprint_of, write_manifest
from instructembed.testing import assert_vectors_close

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DOC = "Represent the document for retrieval: "
QUERY = "Represent the question for retrieving documents: "
TOPICS = ["rivers", "mountains", "trains", "bread", "planets", "violins", "glaciers"]
QUERIES = ["trains over mountains", "bread and violins", "planets", "glaciers and rivers of document 7"]
MODEL_ARGS = ["--max-seq-length", "32", "--instruction", DOC]


def write_corpus(root: Path, files: int = 2, rows: int = 40) -> list[dict[str, Any]]:
    """JSONL files of {id, text, metadata}; every fifth text is long enough for several chunks."""
    rng = np.random.default_rng(3)
    root.mkdir(parents=True, exist_ok=True)
    everything = []
    for f in range(files):
        records = []
        for i in range(rows):
            topic = TOPICS[(i + f) % len(TOPICS)]
            words = " ".join(rng.choice(TOPICS, size=5))
            text = f"Document {f}-{i} is about {topic} and also {words}."
            if i % 5 == 0:
                text = " ".join(f"Part {j} of document {f}-{i} on {topic}: {words}." for j in range(10))
            records.append({"id": f"d{f}-{i:03d}", "text": text, "metadata": {"topic": topic, "file": f}})
        (root / f"part-{f:02d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        everything += records
    return everything


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def add_args(index: Path, out: Path, new: bool = True) -> list[str]:
    """`index add --from-parquet`; a `new` index also gets its query instruction."""
    return [
        "index", "add", str(index), "--from-parquet", str(out), "--metadata-field", "metadata",
        "--commit-every", "25", "--no-progress", *(["--query-instruction", QUERY] if new else []),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def job(local_ray: Any, tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A chunked `embed --engine ray` job over two files, and `index build` over the same rows."""
    root = tmp_path_factory.mktemp("ingest")
    records = write_corpus(root / "in")
    (root / "all.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    model = ["-m", str(tiny_bert_dir), *MODEL_ARGS]
    out = invoke([
        "embed", "--engine", "ray", *model, "-i", str(root / "in"), "-o", str(root / "out"), "--chunk",
        "--chunk-overlap", "4", "--actors", "1", "--no-progress",
    ])  # fmt: skip
    assert "embedded 2 shard(s) (80 rows" in out
    invoke([
        "index", "build", "-i", str(root / "all.jsonl"), "-o", str(root / "reference"), *model,
        "--query-instruction", QUERY, "--chunk-overlap", "4", "--metadata-field", "metadata",
        "--commit-every", "25", "--no-progress",
    ])  # fmt: skip
    return {"root": root, "in": root / "in", "out": root / "out", "reference": root / "reference"}


def test_ray_chunk_rows_equal_embed_chunk(job: dict[str, Path], tiny_bert_dir: Path, tmp_path: Path) -> None:
    """Per input file: the shard has the rows `embed --chunk` writes (id, doc, chunk, start, end), same vectors."""
    manifest = json.loads((job["out"] / MANIFEST).read_text())
    assert (
        manifest["fingerprint"]["chunking"] == ChunkSettings(overlap=4).to_json()
    )  # head + context recorded
    assert manifest["load"] == {"max_seq_length": 32} and manifest["vectors"] > manifest["rows"] == 80
    for record in manifest["shards"].values():
        single = tmp_path / f"{record['input']}.parquet"
        invoke([
            "embed", "-i", str(job["in"] / record["input"]), "-o", str(single), "-m", str(tiny_bert_dir),
            *MODEL_ARGS, "--chunk", "--chunk-overlap", "4", "--no-progress",
        ])  # fmt: skip
        want = pq.read_table(single)
        got = pq.read_table(job["out"] / SHARDS / record["name"])
        assert got.column_names == want.column_names == ["id", "doc", "chunk", "start", "end", "embedding"]
        for name in ("id", "doc", "chunk", "start", "end"):
            assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
        assert max(got.column("chunk").to_pylist()) > 1  # long documents were split
        assert_vectors_close(np.asarray(got.column("embedding").to_pylist()), np.asarray(want.column("embedding").to_pylist()))  # fmt: skip


def test_from_parquet_equals_index_build(job: dict[str, Path], tmp_path: Path) -> None:
    index = tmp_path / "ix"
    out = invoke(add_args(index, job["out"]))
    assert "created" in out and "80 documents" in out and "80 added" in out
    assert_same_index(index, job["reference"])
    with Index.open(index) as a, Index.open(job["reference"]) as b:
        assert a.info()["fingerprint"] == b.info()["fingerprint"]
        for got, want in zip(a.search(QUERIES, k=8), b.search(QUERIES, k=8), strict=True):
            assert [(h.id, h.chunk, h.start, h.end, h.text, h.metadata) for h in got] == [
                (h.id, h.chunk, h.start, h.end, h.text, h.metadata) for h in want
            ]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-6, rtol=0)
    again = invoke(add_args(index, job["out"], new=False))  # the index exists now
    assert "0 added" in again and "80 unchanged" in again
    assert_same_index(index, job["reference"])


# A child that runs the real CLI and SIGKILLs itself inside the Nth batch's transaction (rows written,
# not committed), as tests/index/test_index_crash.py does for `index build`.
CHILD = r"""
import os, signal, sys
from instructembed.index import store
n, calls, real = int(os.environ["KILL_AT"]), [0], store.set_meta
def set_meta(conn, values):
    real(conn, values)
    if "slots" in values:
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
store.set_meta = set_meta
from instructembed.cli import main
sys.argv = ["instructembed", *sys.argv[1:]]
main()
"""


def test_a_killed_ingest_run_again_ends_as_an_uninterrupted_one(job: dict[str, Path], tmp_path: Path) -> None:
    index = tmp_path / "ix"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, *add_args(index, job["out"])],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "KILL_AT": "2"},
        capture_output=True,
        timeout=600,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    with Index.open(index) as opened:
        assert len(opened) == 25  # the first batch; the one in flight is not there
    out = invoke(add_args(index, job["out"], new=False))
    assert "55 added" in out and "25 unchanged" in out
    assert_same_index(index, job["reference"])


def test_bad_shards_are_refused_before_anything_is_written(job: dict[str, Path], tmp_path: Path) -> None:
    def fresh_copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(job["out"], target)
        return target

    def refused(out: Path, match: str, index: Path | None = None) -> None:
        index = index or tmp_path / f"ix-{out.name}"
        with (
            create_for(index, out) as opened,
            pytest.raises((InputFileError, FingerprintMismatchError), match=match),
        ):
            plan_ingest(opened, out)
        with Index.open(index) as opened:
            assert len(opened) == 0

    manifest = json.loads((job["out"] / MANIFEST).read_text())
    first, second = (r for _, r in sorted(manifest["shards"].items()))

    missing = fresh_copy("missing")
    (missing / SHARDS / second["name"]).unlink()
    refused(missing, rf"shard .*{second['name']} is listed in the manifest but missing; run the same")
    # the CLI removes the index it created for shards it then refused
    result = CliRunner().invoke(app, add_args(tmp_path / "cli-ix", missing))
    assert result.exit_code != 0 and "is listed in the manifest but missing" in result.output
    assert not (tmp_path / "cli-ix").exists()

    garbage = fresh_copy("garbage")
    path = garbage / SHARDS / first["name"]
    path.write_bytes(b"x" * path.stat().st_size)
    refused(garbage, "is not a readable shard of this job")

    swapped = fresh_copy("swapped")  # a well-formed shard whose rows do not belong to its input
    path = swapped / SHARDS / first["name"]
    table = pq.read_table(path)
    ids = table.column("id").to_pylist()
    ids[7] = "somebody-else"
    kept = pq.read_metadata(path).metadata[SHARD_KEY]
    with pq.ParquetWriter(path, table.schema) as writer:  # the same shard metadata, one id changed
        writer.write_table(table.set_column(0, "id", pa.array(ids)))
        writer.add_key_value_metadata({SHARD_KEY: kept})
    data = json.loads((swapped / MANIFEST).read_text())
    data["shards"][first["name"]]["bytes"] = path.stat().st_size
    (swapped / MANIFEST).write_text(json.dumps(data))
    refused(swapped, r"row 8 has id 'somebody-else' where .*part-00.jsonl:\d+ has 'd0-")

    unfinished = fresh_copy("unfinished")
    data = json.loads((unfinished / MANIFEST).read_text())
    (unfinished / MANIFEST).write_text(json.dumps({**data, "complete": False}))
    with pytest.raises(InputFileError, match="has not finished"):
        create_for(tmp_path / "never", unfinished)

    legacy = fresh_copy("legacy")  # a job chunked by the scheme before the truncated head existed
    data = json.loads((legacy / MANIFEST).read_text())
    data["fingerprint"]["chunking"] = {"enabled": True, "overlap": 4, "max_tokens": None}
    (legacy / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(
        InputFileError, match=r"run by an older instructembed: .*old scheme.*Run the job again"
    ):
        create_for(tmp_path / "never-legacy", legacy)
    assert not (tmp_path / "never-legacy").exists()

    with create_for(tmp_path / "same", job["out"]) as same:
        assert plan_ingest(same, job["out"]).documents == 80
    other = Index.create(tmp_path / "other2", model=manifest["fingerprint"]["model"], doc_instruction="Represent: ",
                         chunking=ChunkSettings(enabled=False), max_seq_length=32)  # fmt: skip
    with other, pytest.raises(FingerprintMismatchError) as caught:
        plan_ingest(other, job["out"])
    text = str(caught.value)
    assert "doc_instruction: the index has 'Represent: ', the shards have 'Represent the document" in text
    assert "chunking: the index has off (documents truncated), the shards have {'enabled': True" in text

    moved = job["root"] / "in" / "part-01.jsonl"
    stat = moved.stat()
    try:
        os.utime(moved, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        refused(job["out"], "part-01.jsonl changed since it was embedded", tmp_path / "ix-touched")
    finally:
        os.utime(moved, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_unchunked_shards_equal_an_unchunked_index(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """The job's own worker (without Ray: the class Ray runs per actor), then ingest vs `Index.add`;
    truncated documents are counted the same."""
    records = write_corpus(tmp_path / "in", files=2, rows=12)
    options = ModelOptions(str(tiny_bert_dir), max_seq_length=32, threads=1)
    config = JobConfig(str(tmp_path / "in"), tmp_path / "out", options, instruction=DOC)
    embedder = options.load()
    fp = fingerprint_of(embedder, options.model, Columns(), DOC, None)
    manifest, todo = plan(config, fp)
    worker = ShardWorker(options, Columns(), DOC, None, str(config.output), fp, part_rows=5)
    for shard in todo:
        record = worker._one(shard)
        manifest.shards[record.name] = record
    manifest.complete = True
    write_manifest(config.output, manifest)

    with create_for(tmp_path / "ix", config.output, query_instruction=QUERY) as index:
        report = ingest(index, plan_ingest(index, config.output, metadata_field="metadata"), commit_every=7)
        assert (report.added, report.chunks, report.commits) == (24, 24, 4)
        truncated = index.info()["truncated_documents"]
    reference = Index.create(
        tmp_path / "reference",
        model=str(tiny_bert_dir),
        doc_instruction=DOC,
        query_instruction=QUERY,
        chunking=ChunkSettings(enabled=False),
        max_seq_length=32,
    )
    with reference:
        reference.add(records, commit_every=7)
        assert truncated == reference.info()["truncated_documents"] >= 6
    assert_same_index(tmp_path / "ix", tmp_path / "reference")
