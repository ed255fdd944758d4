"""Bad input gets a clear error naming the file and line (or the broken file), and the index stays at
its last commit: nothing is half-added, nothing already written is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from index_helpers import CHUNKING, DOC, QUERY, corpus
from typer.testing import CliRunner

from instructembed import Embedder
from instructembed.cli import app
from instructembed.index import AnnKind, AnnSettings, Index, IndexCorruptError

runner = CliRunner()
GOOD = [json.dumps({"id": f"g{i}", "text": f"good text {i}", "meta": {"n": i}}) for i in range(3)]


def invoke(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def existing(tmp_path: Path, short_bert: Embedder) -> Path:
    out = tmp_path / "ix"
    with Index.create(out, model=str(short_bert.spec.root), doc_instruction=DOC, query_instruction=QUERY,
                      chunking=CHUNKING, embedder=short_bert, max_seq_length=32) as index:  # fmt: skip
        index.add(corpus(12))
    return out


def _state(path: Path) -> tuple[int, int, dict[str, int]]:
    with Index.open(path) as index:
        info = index.info()
    files = {k: v for k, v in info["files"].items() if not k.startswith("index.sqlite")}
    return info["documents"], info["commit"], files


BAD_FILES = [
    (
        "docs.jsonl",
        [GOOD[0], GOOD[1], json.dumps({"text": "no id here"})],
        "docs.jsonl:3: no id (field 'id')",
    ),
    (
        "docs.jsonl",
        [
            GOOD[0],
            json.dumps({"id": "a", "text": "x"}),
            GOOD[1],
            GOOD[2],
            json.dumps({"id": "a", "text": "y"}),
        ],
        "docs.jsonl:5: duplicate id 'a' (first at {dir}/docs.jsonl:2)",
    ),
    (
        "docs.jsonl",
        [GOOD[0], GOOD[1], GOOD[2], json.dumps({"id": "c", "text": "  \t "})],
        "docs.jsonl:4: the text of id 'c' is empty",
    ),
    (
        "docs.jsonl",
        [GOOD[0], '{"id": "d", "text": "caf\udce9"}'],
        "docs.jsonl:2: not UTF-8 text (byte 0xe9 at column 25)",
    ),
    (
        "docs.jsonl",
        [GOOD[0], json.dumps({"id": "e", "text": "t", "meta": [1, 2]})],
        "docs.jsonl:2: metadata field 'meta' must be a JSON object",
    ),
    ("docs.jsonl", [GOOD[0], GOOD[1], "{not json"], "docs.jsonl:3: not valid JSON"),
    (
        "docs.csv",
        ["id,text,meta", 'a,first,"{""n"": 1}"', "b,second,{n: 2}"],
        "docs.csv:3: metadata field 'meta' is not JSON",
    ),
    ("docs.csv", ["id,text,meta", "a,first,", ",second,"], "docs.csv:3: no id (field 'id')"),
    ("docs.txt", ["just lines", "of text"], "docs.txt: an index needs an id per document"),
]


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    """Lines as UTF-8; a surrogate escape such as "\\udce9" becomes the raw byte 0xe9 (not UTF-8)."""
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape"))
    return path


@pytest.mark.parametrize(("name", "lines", "message"), BAD_FILES)
def test_bad_files_are_refused_before_anything_is_written(
    tmp_path: Path, existing: Path, tiny_bert_dir: Path, name: str, lines: list[str], message: str
) -> None:
    source = _write(tmp_path, name, lines)
    expected = message.replace("{dir}", str(tmp_path))
    fresh = tmp_path / "fresh"
    code, output = invoke(
        "index", "build", "-i", source, "-o", fresh, "-m", tiny_bert_dir, "--metadata-field", "meta"
    )
    assert code == 1 and expected in " ".join(output.split()), output
    assert not fresh.exists()  # checked before a model was loaded or a directory made

    before = _state(existing)
    code, output = invoke("index", "add", existing, "-i", source, "--metadata-field", "meta", "--no-progress")
    assert code == 1 and expected in " ".join(output.split()), output
    assert _state(existing) == before  # the index is exactly at its last commit


def test_a_damaged_approximate_index_is_named_and_rebuilt(existing: Path, short_bert: Embedder) -> None:
    with Index.open(existing, embedder=short_bert) as index:
        index.rebuild(AnnSettings(kind=AnnKind.IVF))
        ann_file = existing / index.info()["approximate"]["file"]
        expected = index.search(["rivers"], k=3, exact=True)
    data = ann_file.read_bytes()
    ann_file.write_bytes(data[: len(data) // 2])  # truncated
    code, output = invoke("search", "--index", existing, "-q", "rivers", "-k", 3)
    assert code == 1 and "(the approximate index) is damaged" in output and "index rebuild" in output
    ann_file.write_bytes(b"\x00" * len(data))  # garbage
    code, output = invoke("search", "--index", existing, "-q", "rivers", "-k", 3)
    assert code == 1 and "(the approximate index) is damaged" in output
    assert invoke("index", "rebuild", existing)[0] == 0  # "keep": the same kind, from the intact vectors
    with Index.open(existing, embedder=short_bert) as index:
        assert [h.id for h in index.search(["rivers"], k=3)[0]] == [h.id for h in expected[0]]


def test_a_truncated_vectors_file_is_named_and_never_written_over(existing: Path, tmp_path: Path) -> None:
    vectors = existing / "vectors-0.f32"
    data = vectors.read_bytes()
    vectors.write_bytes(data[: len(data) // 2])
    more = _write(tmp_path, "more.jsonl", GOOD)
    for args in (["index", "info", existing], ["search", "--index", existing, "-q", "x"],
                 ["index", "add", existing, "-i", more, "--no-progress"]):  # fmt: skip
        code, output = invoke(*args)
        assert code == 1 and "vectors-0.f32 is truncated" in output and "committed vectors" in output, output
    assert vectors.read_bytes() == data[: len(data) // 2]  # the add refused before touching it
    vectors.unlink()
    code, output = invoke("index", "info", existing)
    assert code == 1 and "vectors-0.f32 is missing" in output


def test_a_damaged_database_is_named(existing: Path) -> None:
    db = existing / "index.sqlite"
    data = bytearray(db.read_bytes())
    data[:100] = b"\xff" * 100  # the header
    db.write_bytes(bytes(data))
    code, output = invoke("index", "info", existing)
    assert code == 1 and "index.sqlite is damaged" in output and "rebuild the index from its source" in output
    with pytest.raises(IndexCorruptError, match=r"index\.sqlite is damaged"):
        Index.open(existing)


def test_not_an_index(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    code, output = invoke("index", "info", tmp_path / "plain")
    assert code == 1 and "is not an index" in output and "index build" in output
