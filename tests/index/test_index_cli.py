"""`instructembed index ...` and `instructembed search` end to end on small files (tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from index_helpers import DOC, QUERY, corpus
from typer.testing import CliRunner

from instructembed import Embedder
from instructembed.cli import app
from instructembed.index import Index

runner = CliRunner()


def invoke(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def build_args(source: Path, out: Path, model: Path, *extra: object) -> list[object]:
    return [
        "index", "build", "-i", source, "-o", out, "-m", model, "--max-seq-length", 32,
        "--instruction", DOC, "--query-instruction", QUERY, "--chunk-overlap", 4,
        "--metadata-field", "metadata", "--commit-every", 16, "--no-progress", *extra,
    ]  # fmt: skip


def test_build_search_add_delete_rebuild(tiny_bert_dir: Path, tmp_path: Path) -> None:
    records = corpus(40)
    source = write_jsonl(tmp_path / "docs.jsonl", records)
    out = tmp_path / "ix"
    code, output = invoke(*build_args(source, out, tiny_bert_dir))
    assert code == 0, output
    assert "40 documents" in output and "40 added" in output

    code, output = invoke(*build_args(source, out, tiny_bert_dir))  # a finished build, run again
    assert code == 0 and "0 added, 0 replaced, 40 unchanged" in output

    code, output = invoke("index", "info", out, "--json")
    info = json.loads(output)
    assert (
        info["documents"] == 40
        and info["build"]["complete"] is True
        and info["fingerprint"]["doc_instruction"] == DOC
    )

    queries = tmp_path / "queries.jsonl"
    write_jsonl(queries, [{"id": "q1", "text": "trains"}, {"id": "q2", "text": "bread and rivers"}])
    hits_path = tmp_path / "hits.jsonl"
    code, output = invoke(
        "search", "--index", out, "-i", queries, "-k", 4, "-o", hits_path, "--filter", '{"even": true}'
    )
    assert code == 0, output
    lines = [json.loads(line) for line in hits_path.read_text(encoding="utf-8").splitlines()]
    assert [line["query_id"] for line in lines] == ["q1", "q2"]
    with Index.open(out) as index:
        expected = index.search(["trains", "bread and rivers"], k=4, filter={"even": True})
    for line, want in zip(lines, expected, strict=True):
        assert [h["id"] for h in line["hits"]] == [h.id for h in want]
        np.testing.assert_allclose([h["score"] for h in line["hits"]], [h.score for h in want], atol=1e-6)
        assert all(h["metadata"]["even"] is True for h in line["hits"])

    args = ["search", "--index", out, "-q", "trains", "-q", "violins", "-k", 2, "--pool", "mean"]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]  # stdout: JSON lines only
    assert [p["query"] for p in printed] == ["trains", "violins"] and all(
        len(p["hits"]) == 2 for p in printed
    )

    update = write_jsonl(tmp_path / "more.jsonl", [
        {"id": "doc-001", "text": "now about lighthouses", "metadata": {"topic": "sea"}},
        {"id": "new-1", "text": "a brand new document", "metadata": {}},
    ])  # fmt: skip
    code, output = invoke("index", "add", out, "-i", update, "--metadata-field", "metadata", "--no-progress")
    assert code == 0 and "1 added, 1 replaced, 0 unchanged" in output and "41 documents" in output

    ids = tmp_path / "ids.txt"
    ids.write_text("doc-002\nnot-there\n", encoding="utf-8")
    code, output = invoke("index", "delete", out, "--id", "doc-003", "--ids-file", ids)
    assert code == 0 and "deleted 2 of 3 id(s); 39 documents remain" in output

    code, output = invoke("index", "rebuild", out, "--approximate", "hnsw")
    assert code == 0 and "approximate (hnsw)" in output
    code, output = invoke("index", "info", out)
    assert code == 0 and "dead_vectors         0" in output


def test_build_reads_csv_and_parquet_with_json_metadata(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = corpus(10)
    csv_path = tmp_path / "docs.csv"
    lines = ["key,body,metadata"]
    for r in records:
        meta = json.dumps(r["metadata"]).replace('"', '""')
        lines.append(f'{r["id"]},"{r["text"]}","{meta}"')
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parquet_path = tmp_path / "docs.parquet"
    pq.write_table(
        pa.table({
            "key": [r["id"] for r in records],
            "body": [r["text"] for r in records],
            "metadata": [json.dumps(r["metadata"]) for r in records],
        }),
        parquet_path,
    )  # fmt: skip
    for source in (csv_path, parquet_path):
        out = tmp_path / f"ix-{source.suffix[1:]}"
        code, output = invoke(
            *build_args(source, out, tiny_bert_dir, "--id-field", "key", "--text-field", "body")
        )
        assert code == 0, output
        with Index.open(out) as index:
            assert len(index) == 10
            hit = index.search(["x"], k=1, filter={"topic": "rivers", "year": 2000})[0][0]
            assert hit.id == "doc-000"


def test_rerun_refuses_other_inputs_and_settings(tiny_bert_dir: Path, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "docs.jsonl", corpus(5))
    other = write_jsonl(tmp_path / "other.jsonl", corpus(3))
    out = tmp_path / "ix"
    assert invoke(*build_args(source, out, tiny_bert_dir))[0] == 0
    code, output = invoke(*build_args(other, out, tiny_bert_dir))
    assert code == 1 and "index add" in output and "--overwrite" in output
    args = build_args(source, out, tiny_bert_dir)
    args[args.index(DOC)] = "Represent the passage: "
    code, output = invoke(*args)
    assert code == 1 and "doc_instruction: the index has" in output
    code, output = invoke(*build_args(other, out, tiny_bert_dir, "--overwrite"))
    assert code == 0 and "3 documents" in output
    (tmp_path / "empty").mkdir()  # an existing empty directory is a fine place for a new index
    code, output = invoke(*build_args(source, tmp_path / "empty", tiny_bert_dir))
    assert code == 0 and "5 documents" in output


@pytest.mark.parametrize("args", [["-q", "x", "-i", "q.jsonl"], []])
def test_search_needs_exactly_one_query_source(tiny_bert_dir: Path, tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "ix"
    Index.create(out, model=str(tiny_bert_dir), embedder=Embedder.load(tiny_bert_dir)).close()
    code, output = invoke("search", "--index", out, *args)
    assert code == 1 and "--query TEXT (repeatable) or --input FILE" in output


def test_search_refuses_bad_filters_and_outputs(tiny_bert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ix"
    with Index.create(out, model=str(tiny_bert_dir), embedder=Embedder.load(tiny_bert_dir)) as index:
        index.add([{"id": "a", "text": "hello"}])
    code, output = invoke("search", "--index", out, "-q", "x", "--filter", "{lang: en}")
    assert code == 1 and "--filter is not JSON" in output
    code, output = invoke("search", "--index", out, "-q", "x", "--filter", '{"a": {"b": 1}}')
    assert code == 1 and "cannot be matched" in output
    code, output = invoke("search", "--index", out, "-q", "x", "-o", tmp_path / "hits.csv")
    assert code == 1 and "must end in .jsonl" in output
    code, output = invoke("search", "--index", tmp_path / "missing", "-q", "x")
    assert code == 1 and "does not exist" in output
