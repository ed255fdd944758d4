"""scale/ without Ray: the map_batches callable, its chunking, shard files, manifest, errors."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scale_helpers import write_jsonl

from instructembed.chunking import ChunkSettings, chunk_documents
from instructembed.errors import InputFileError, InstructEmbedError
from instructembed.inputs import Item
from instructembed.scale.batches import Columns, EmbedBatches, ModelOptions, embed_items
from instructembed.scale.job import JobConfig, check_reachable, plan, user_error
from instructembed.scale.shards import (
    SHARDS,
    Manifest,
    ShardWriter,
    clean_temporaries,
    complete_record,
    find_inputs,
    fingerprint_of,
    iter_shard,
    iter_shard_tables,
    read_manifest,
    write_manifest,
)
from instructembed.testing import assert_vectors_close


@pytest.fixture(scope="module")
def options(tiny_bert_dir: Path) -> ModelOptions:
    return ModelOptions(str(tiny_bert_dir), threads=1)


@pytest.fixture(scope="module")
def embedder(options: ModelOptions) -> Any:
    return options.load()


# ---------------------------------------------------------------------------------------- the callable
def test_embed_batches_adds_the_vectors_embed_gives(options: ModelOptions, embedder: Any) -> None:
    texts = np.asarray(["a short one", "a longer text about the quick brown fox " * 3, ""], dtype=object)
    instructions = np.asarray(["Represent the title: ", "Represent the doc: ", "Represent: "], dtype=object)
    batch = {"id": np.asarray(["x", "y", "z"]), "text": texts, "inst": instructions}

    per_row = EmbedBatches(options, Columns(instruction="inst"))(batch)
    assert list(per_row["id"]) == ["x", "y", "z"] and per_row["text"] is texts
    want = embedder.embed(list(zip(instructions, texts, strict=True)))
    assert_vectors_close(per_row["embedding"], want)

    one = EmbedBatches(options, instruction="Represent the doc: ")(batch)
    assert_vectors_close(one["embedding"], embedder.embed(list(texts), instruction="Represent the doc: "))


def test_embed_batches_names_a_missing_column(options: ModelOptions) -> None:
    with pytest.raises(InputFileError, match=r"no text column 'body' \(columns: id, text\).*--field"):
        EmbedBatches(options, Columns(text="body"))({"id": np.asarray(["a"]), "text": np.asarray(["t"])})
    with pytest.raises(ValueError, match="not both"):
        EmbedBatches(options, Columns(instruction="inst"), instruction="Represent: ")


def test_chunking_gives_the_rows_of_embed_chunk(tiny_bert_dir: Path) -> None:
    """`chunking=` cuts long documents with `embed --chunk`'s own `chunk_documents`: one row per chunk,
    its span, and its vector (chunk 0 = the truncated document's); short documents stay whole."""
    options = ModelOptions(str(tiny_bert_dir), threads=1, max_seq_length=24)
    embedder = options.load()
    texts = [" ".join(f"word{i}" for i in range(60)), "short"]
    settings = ChunkSettings(overlap=4)
    batch = {"id": np.asarray(["long", "short"]), "text": np.asarray(texts, dtype=object)}
    out = EmbedBatches(options, instruction="Represent: ", chunking=settings)(batch)

    want = chunk_documents(embedder, [Item("Represent: ", t) for t in texts], settings)
    n_long = sum(c.doc == 0 for c in want.chunks)
    assert n_long > 2 and list(out["id"]) == ["long"] * n_long + ["short"]
    assert list(out["chunk"]) == [c.index for c in want.chunks]
    assert [(s, e) for s, e in zip(out["start"], out["end"], strict=True)] == [
        (c.start, c.end) for c in want.chunks
    ]
    assert_vectors_close(out["embedding"], embedder.embed_tokenized(want.rows))
    # chunk 0 of the long document is its truncated head: exactly what embedding it whole gives
    assert_vectors_close(out["embedding"][:1], embedder.embed([texts[0]], instruction="Represent: "))
    embedded = embed_items(embedder, [Item(None, t) for t in texts], settings)
    assert embedded.spans is not None and embedded.doc.tolist() == [0] * len(embedded.doc[:-1]) + [1]
    assert not embedded.truncated.any()
    whole = embed_items(embedder, [Item(None, t) for t in texts], None)  # no chunking: truncated, counted
    assert whole.spans is None and whole.truncated.tolist() == [True, False]
    assert embed_items(embedder, [Item(None, t) for t in texts], ChunkSettings(enabled=False)).spans is None


# ---------------------------------------------------------------------------------------- inputs
def test_find_inputs_reads_a_directory_a_glob_or_a_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "sub", files=2, rows=1)
    (tmp_path / "in" / "notes.md").write_text("ignored")
    (tmp_path / "in" / ".hidden.jsonl").write_text("{}")
    found = find_inputs(str(tmp_path / "in"))
    assert [s.rel for s in found] == ["sub/part-00.jsonl", "sub/part-01.jsonl"]
    assert found[0].name.startswith("sub__part-00.jsonl-") and len({s.name for s in found}) == 2
    assert [s.rel for s in find_inputs(str(tmp_path / "in" / "sub" / "*-01.jsonl"))] == ["part-01.jsonl"]
    with pytest.raises(InputFileError, match=r"not \.jsonl.*notes\.md"):
        find_inputs(str(tmp_path / "in" / "*"))
    with pytest.raises(InputFileError, match="does not exist"):
        find_inputs(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="nothing to embed"):
        find_inputs(str(tmp_path / "empty"))


def test_a_malformed_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "in" / "bad.jsonl"
    path.parent.mkdir()
    path.write_text('{"id": "a", "text": "fine"}\n\n{"id": "b", "text": broken\n', encoding="utf-8")
    (shard,) = find_inputs(str(path.parent))
    with pytest.raises(InputFileError, match=r"bad.jsonl:3: not valid JSON"):
        list(iter_shard(shard, Columns()))
    path.write_text('{"id": "a", "body": "no text field"}\n', encoding="utf-8")
    (shard,) = find_inputs(str(path.parent))
    with pytest.raises(InputFileError, match=r"bad.jsonl:1: no field 'text' \(fields present: body, id\)"):
        list(iter_shard(shard, Columns()))


def test_parquet_input_parts_ids_and_missing_columns(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "in").mkdir()
    pq.write_table(
        pa.table({"text": ["a", "b", "c"], "inst": ["I: ", "I: ", "J: "]}), tmp_path / "in" / "p.parquet"
    )
    (shard,) = find_inputs(str(tmp_path / "in"))
    parts = list(iter_shard(shard, Columns(instruction="inst"), part_rows=2))
    assert [ids for ids, _ in parts] == [["p.parquet#0", "p.parquet#1"], ["p.parquet#2"]]
    assert parts[1][1] == [Item("J: ", "c")]
    with pytest.raises(InputFileError, match=r"p.parquet: no text column 'body' \(columns: text, inst\)"):
        list(iter_shard(shard, Columns(text="body")))
    pq.write_table(pa.table({"text": ["a", None]}), tmp_path / "in" / "p.parquet")
    with pytest.raises(InputFileError, match="row 2: column 'text' is NoneType"):
        list(iter_shard(find_inputs(str(tmp_path / "in"))[0], Columns()))


# ---------------------------------------------------------------------------------------- shards
def test_a_shard_appears_whole_or_not_at_all(tmp_path: Path, embedder: Any) -> None:
    write_jsonl(tmp_path / "in", files=1, rows=5)
    (shard,) = find_inputs(str(tmp_path / "in"))
    (tmp_path / "out" / SHARDS).mkdir(parents=True)
    writer = ShardWriter(tmp_path / "out", shard, embedder.dimension, chunked=False, fingerprint_sha="f")
    ids, items = next(iter_shard(shard, Columns()))
    writer.write(ids, embed_items(embedder, items))
    assert not (tmp_path / "out" / SHARDS / shard.name).exists()  # only the temporary file so far
    writer.abort()
    assert list((tmp_path / "out" / SHARDS).iterdir()) == []

    writer = ShardWriter(tmp_path / "out", shard, embedder.dimension, chunked=False, fingerprint_sha="f")
    writer.write(ids, embed_items(embedder, items))
    record = writer.finish()
    assert (record.rows, record.vectors) == (5, 5)
    # the driver died before recording it: adopted from the shard's own metadata, if made the same way
    assert complete_record(tmp_path / "out", shard, "f", None) == record
    assert complete_record(tmp_path / "out", shard, "other fingerprint", None) is None
    # an input changed since is redone
    moved = dataclasses.replace(shard, mtime_ns=shard.mtime_ns + 1)
    assert complete_record(tmp_path / "out", moved, "f", None) is None
    (tmp_path / "out" / SHARDS / f".{shard.name}.tmp-0123").write_bytes(b"half")
    assert clean_temporaries(tmp_path / "out") == 1 and (tmp_path / "out" / SHARDS / shard.name).exists()


def test_the_manifest_refuses_vectors_made_differently(
    tmp_path: Path, options: ModelOptions, embedder: Any
) -> None:
    write_jsonl(tmp_path / "in", files=2, rows=3)
    config = JobConfig(str(tmp_path / "in"), tmp_path / "out", options, instruction="Represent: ")
    fp = fingerprint_of(embedder, options.model, config.columns, config.instruction, None)
    manifest, todo = plan(config, fp)
    assert len(todo) == 2 and not manifest.complete
    write_manifest(config.output, manifest)
    other = dataclasses.replace(fp, instruction="Represent the query: ")
    with pytest.raises(InputFileError, match="instruction: the output has 'Represent: ', this run gives"):
        plan(config, other)
    loaded = read_manifest(config.output)
    assert isinstance(loaded, Manifest) and loaded.fingerprint == fp
    with pytest.raises(InputFileError, match="has not finished"):
        list(iter_shard_tables(config.output))
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "x").write_text("")
    with pytest.raises(FileExistsError, match="no manifest"):
        plan(dataclasses.replace(config, output=tmp_path / "stray"), fp)


# ---------------------------------------------------------------------------------------- errors
def test_an_unreachable_address_fails_fast() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket is closed
    started = time.monotonic()
    with pytest.raises(
        InstructEmbedError, match=f"cannot reach a Ray cluster at 127.0.0.1:{port}.*ray start --head"
    ):
        check_reachable(f"127.0.0.1:{port}", timeout_s=5)
    assert time.monotonic() - started < 30  # a hang guard, not a speed claim
    with pytest.raises(ValueError, match="HOST:PORT"):
        check_reachable("somewhere")


def test_user_error_finds_ours_inside_rays_text() -> None:
    class Wrapped(Exception):
        pass

    inner = InputFileError("/data/a.jsonl:3: not valid JSON")
    outer = Wrapped("UDF failed")
    outer.__cause__ = inner
    assert user_error(outer) is inner
    text = Wrapped(
        "ray::MapWorker\n  File x\ninstructembed.errors.InputFileError: /data/b.jsonl:7: not valid JSON\n"
    )
    assert str(user_error(text)) == "/data/b.jsonl:7: not valid JSON"
    plain = RuntimeError("a bug")
    assert user_error(plain) is plain


def test_the_cli_checks_ray_options_before_any_cluster(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from instructembed.cli import app

    write_jsonl(tmp_path / "in", files=1, rows=1)
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "embed",
            "-i",
            str(tmp_path / "in" / "part-00.jsonl"),
            "-o",
            str(tmp_path / "v.npy"),
            "--actors",
            "2",
        ],
    )
    assert out.exit_code == 1 and "need --engine ray" in out.output
    args = ["embed", "--engine", "ray", "-i", str(tmp_path / "in"), "--no-progress"]
    out = runner.invoke(app, [*args, "-o", str(tmp_path / "v.parquet")])
    assert out.exit_code == 1 and "give a directory" in out.output
    out = runner.invoke(app, [*args, "-o", str(tmp_path / "out"), "--overwrite"])
    assert out.exit_code == 1 and "--overwrite does not apply to --engine ray" in out.output
    out = runner.invoke(
        app, ["embed", "--engine", "ray", "-i", str(tmp_path / "none"), "-o", str(tmp_path / "out")]
    )
    assert out.exit_code == 1 and "does not exist" in out.output
    assert not (tmp_path / "out").exists()


def test_importing_scale_needs_no_ray(tmp_path: Path) -> None:
    """The core and scale/'s Ray-free modules import without Ray; job.py names the extra."""
    import subprocess
    import sys

    blocker = tmp_path / "ray.py"
    blocker.write_text("raise ImportError('no ray here')\n")
    script = (
        "import instructembed.cli, instructembed.scale, instructembed.scale.shards\n"
        "from instructembed.scale.job import require_ray\n"
        "try:\n    require_ray()\nexcept ImportError as e:\n    print(e)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parents[2] / "src")]),
    }
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "install the [ray] extra" in out.stdout
    assert json.dumps is not None
