"""scale/ on a real local Ray runtime (2 CPUs): the same vectors as one process, the job and its resume."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scale_helpers import write_jsonl

from instructembed.errors import InstructEmbedError
from instructembed.scale.batches import Columns, ModelOptions
from instructembed.scale.job import JobConfig, embed_dataset, run_job
from instructembed.scale.shards import MANIFEST, SHARDS, find_inputs, iter_shard_tables, read_manifest
from instructembed.testing import assert_vectors_close

pytestmark = pytest.mark.slow


def test_embed_dataset_equals_one_process(local_ray: Any, minilm: Any, tmp_path: Path) -> None:
    """2000 rows through 2 actors: every vector within 1e-6 of `Embedder.embed` on all rows at once,
    rows in input order (preserve_order=True), each with its id."""
    ray = local_ray
    ids = write_jsonl(tmp_path / "in", files=2, rows=1000, words=16)
    rows = [
        json.loads(line) for f in sorted((tmp_path / "in").iterdir()) for line in f.read_text().splitlines()
    ]
    instruction = "Represent the sentence for retrieval: "
    want = minilm.embed([r["text"] for r in rows], instruction=instruction)  # (3000, 384)

    ds = ray.data.from_items(rows, override_num_blocks=6)
    out = embed_dataset(
        ds,
        ModelOptions("all-MiniLM-L6-v2"),
        instruction=instruction,
        actors=2,
        batch_rows=256,
        preserve_order=True,
    ).take_all()
    assert [r["id"] for r in out] == ids
    got = np.stack([r["embedding"] for r in out])
    assert got.dtype == np.float32 and got.shape == want.shape
    assert_vectors_close(got, want)


def test_embed_dataset_reads_paths_in_any_order_joined_on_id(
    local_ray: Any, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    ids = write_jsonl(tmp_path / "in", files=3, rows=40)
    texts = {
        json.loads(line)["id"]: json.loads(line)["text"]
        for f in sorted((tmp_path / "in").iterdir())
        for line in f.read_text().splitlines()
    }
    options = ModelOptions(str(tiny_bert_dir))
    with pytest.raises(ValueError, match="for reading the files"):  # 2 actors would starve the reads
        embed_dataset(str(tmp_path / "in"), options, actors=2)
    out = embed_dataset(str(tmp_path / "in" / "*.jsonl"), options, actors=1, batch_rows=16).take_all()
    by_id = {r["id"]: r["embedding"] for r in out}
    assert len(out) == len(ids) and sorted(by_id) == sorted(ids)
    want = options.load().embed([texts[i] for i in ids])
    assert_vectors_close(np.stack([by_id[i] for i in ids]), want)


def test_the_job_writes_shards_and_a_rerun_skips_them(
    local_ray: Any, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    ids = write_jsonl(tmp_path / "in", files=4, rows=50)
    options = ModelOptions(str(tiny_bert_dir))
    config = JobConfig(
        str(tmp_path / "in"), tmp_path / "out", options, instruction="Represent: ", actors=2, part_rows=16
    )
    first = run_job(config)
    assert (first.shards, first.skipped, first.embedded, first.rows) == (4, 0, 4, 200)

    manifest = read_manifest(tmp_path / "out")
    assert manifest is not None and manifest.complete and len(manifest.shards) == 4
    tables = list(iter_shard_tables(tmp_path / "out"))
    assert [i for _, t in tables for i in t.column("id").to_pylist()] == ids  # shards in input order
    embedder = options.load()
    for shard, (record, table) in zip(find_inputs(config.input), tables, strict=True):
        texts = [json.loads(line)["text"] for line in Path(shard.path).read_text().splitlines()]
        got = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
        assert_vectors_close(got, embedder.embed(texts, instruction="Represent: "))
        assert record.rows == record.vectors == 50

    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / SHARDS).iterdir()}
    again = run_job(config)
    assert (again.skipped, again.embedded, again.rows) == (4, 0, 0)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / SHARDS).iterdir()} == stamps

    # An input that changed is embedded again; the others are kept.
    changed = Path(find_inputs(config.input)[1].path)
    changed.write_text(changed.read_text() + json.dumps({"id": "new", "text": "one more"}) + "\n")
    third = run_job(config)
    assert (third.skipped, third.embedded, third.rows, third.total_rows) == (3, 1, 51, 201)
    # Another instruction into the same output is refused, naming the field.
    with pytest.raises(Exception, match="instruction: the output has 'Represent: '"):
        run_job(dataclasses.replace(config, instruction="Represent the query: "))


def test_bad_input_names_the_file_and_keeps_finished_shards(
    local_ray: Any, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "in", files=3, rows=20)
    bad = tmp_path / "in" / "part-02.jsonl"
    lines = bad.read_text().splitlines()
    lines[6] = '{"id": "2-6", "text": "unterminated'
    bad.write_text("\n".join(lines) + "\n")
    options = ModelOptions(str(tiny_bert_dir))
    config = JobConfig(str(tmp_path / "in"), tmp_path / "out", options, actors=1)
    with pytest.raises(InstructEmbedError, match=r"part-02.jsonl:7: not valid JSON"):
        run_job(config)
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert not manifest["complete"]
    done = sorted(p.name for p in (tmp_path / "out" / SHARDS).iterdir())
    assert all(not name.startswith(".") for name in done)  # no temporary file left behind
    assert {r["input"] for r in manifest["shards"].values()} <= {"part-00.jsonl", "part-01.jsonl"}

    with pytest.raises(InstructEmbedError, match=r"no field 'body' \(fields present: id, text\)"):
        run_job(dataclasses.replace(config, output=tmp_path / "out2", columns=Columns(text="body")))


def test_the_cli_runs_on_a_local_ray_runtime(local_ray: Any, tiny_bert_dir: Path, tmp_path: Path) -> None:
    """`embed --engine ray` without --address joins the runtime this process already has."""
    from typer.testing import CliRunner

    from instructembed.cli import app

    write_jsonl(tmp_path / "in", files=2, rows=10)
    args = ["embed", "--engine", "ray", "-m", str(tiny_bert_dir), "-i", str(tmp_path / "in" / "*.jsonl")]
    out = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out"), "--actors", "1", "--no-progress"])
    assert out.exit_code == 0, out.output
    assert "embedded 2 shard(s) (20 rows, 20 vectors), skipped 0 complete shard(s)" in out.output
    assert os.listdir(tmp_path / "out" / SHARDS) and not local_ray.is_initialized()
