"""The Python API of the index on real FAISS and SQLite with a tiny model: results equal a brute-force
numpy ranking; upsert, delete, filters, approximate search, fingerprint refusal, the writer lock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from index_helpers import CHUNKING, DOC, QUERY, brute_force, corpus, make

from instructembed import Embedder
from instructembed.chunking import chunk_documents
from instructembed.index import (
    AnnKind,
    AnnSettings,
    ChunkSettings,
    FingerprintMismatchError,
    Index,
    IndexLockedError,
    IndexStoreError,
    Record,
    RecordError,
)
from instructembed.index import core as index_core
from instructembed.inputs import Item

QUESTIONS = ["which document is about trains?", "bread and violins", "glaciers on planets", "rivers"]


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, short_bert: Embedder
) -> tuple[Path, list[dict[str, object]]]:
    """One index over the corpus, added in several commits; tests that change it copy it first."""
    records = corpus()
    path = tmp_path_factory.mktemp("index") / "ix"
    with make(path, short_bert) as index:
        report = index.add(records, commit_every=16)
    assert report.added == 60 and report.commits == 4 and report.truncated == 0
    assert report.chunks > 60  # long documents became several chunks
    return path, records


def _as_tuples(hits: list[list[index_core.Hit]]) -> list[list[tuple[str, float, int]]]:
    return [[(h.id, h.score, h.chunk) for h in row] for row in hits]


def _same(got: list[list[tuple[str, float, int]]], expected: list[list[tuple[str, float, int]]]) -> None:
    assert [[g[0] for g in row] for row in got] == [[e[0] for e in row] for row in expected]
    for g_row, e_row in zip(got, expected, strict=True):
        np.testing.assert_allclose([g[1] for g in g_row], [e[1] for e in e_row], atol=1e-5)
        assert [g[2] for g in g_row] == [e[2] for e in e_row]


@pytest.mark.parametrize("pool", ["head", "max", "mean"])
def test_search_equals_brute_force(
    built: tuple[Path, list[dict[str, object]]], short_bert: Embedder, pool: str
) -> None:
    path, records = built
    queries = short_bert.embed(QUESTIONS, instruction=QUERY)
    with Index.open(path, embedder=short_bert) as index:
        assert len(index) == 60
        got = index.search(QUESTIONS, k=7, pool=pool)
    _same(_as_tuples(got), brute_force(short_bert, records, queries, 7, pool))


def test_open_loads_the_model_from_the_fingerprint(
    built: tuple[Path, list[dict[str, object]]], short_bert: Embedder
) -> None:
    path, records = built
    with Index.open(path) as index:  # no embedder: loaded from the recorded model and options
        got = index.search(QUESTIONS[:1], k=3)
        assert index.embedder.max_seq_length == 32
    expected = brute_force(short_bert, records, short_bert.embed(QUESTIONS[:1], instruction=QUERY), 3)
    _same(_as_tuples(got), expected)


def test_hits_carry_chunk_spans_text_and_metadata(
    built: tuple[Path, list[dict[str, object]]], short_bert: Embedder
) -> None:
    path, records = built
    by_id = {r["id"]: r for r in records}
    # a query that is exactly the vector of a later chunk of a long document finds that chunk (max
    # pooling: the tiny random model's vectors are so alike that the head blend can rank another first)
    batch = chunk_documents(short_bert, [Item(DOC, str(by_id["doc-010"]["text"]))], CHUNKING)
    target = batch.chunks[3]
    query = short_bert.embed_tokenized([batch.rows[3]])
    with Index.open(path, embedder=short_bert) as index:
        hits = index.search_vectors(query, k=5, pool="max")[0]
        info = index.info()
    assert (hits[0].id, hits[0].chunk, hits[0].start, hits[0].end) == ("doc-010", 3, target.start, target.end)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    for hit in hits:
        source = str(by_id[hit.id]["text"])
        assert hit.text == source[hit.start : hit.end]
        assert hit.metadata == by_id[hit.id]["metadata"]
    assert info["documents"] == 60 and info["chunks"] == info["vectors"] > 60 and info["dead_vectors"] == 0
    assert info["fingerprint"]["doc_instruction"] == DOC and info["fingerprint"]["chunking"]["overlap"] == 4


def test_upsert_replaces_changed_text_and_skips_unchanged(tmp_path: Path, short_bert: Embedder) -> None:
    records = corpus(20)
    with make(tmp_path / "ix", short_bert) as index:
        index.add(records)
        again = index.add(records)
        assert (again.added, again.replaced, again.unchanged, again.chunks) == (0, 0, 20, 0)
        slots = index.info()["vectors"]
        changed = [
            dict(records[3], text="A new text about lighthouses and the sea."),
            dict(records[4], metadata={"topic": "changed"}),
        ]
        report = index.add(changed)
        assert (report.replaced, report.metadata_updated, report.chunks) == (1, 1, 1)
        info = index.info()
        assert info["vectors"] == slots + 1 and info["dead_vectors"] == 1 and len(index) == 20
        top = index.search(["lighthouses and the sea"], k=1)[0][0]
        assert top.id == records[3]["id"] and top.text == "A new text about lighthouses and the sea."
        assert index.search(["x"], k=20, filter={"topic": "changed"})[0][0].id == records[4]["id"]
        expected_records = [*records[:3], changed[0], *records[4:]]
        queries = short_bert.embed(QUESTIONS, instruction=QUERY)
        _same(_as_tuples(index.search(QUESTIONS, k=5)), brute_force(short_bert, expected_records, queries, 5))


def test_delete_then_compact_keeps_the_same_answers(tmp_path: Path, short_bert: Embedder) -> None:
    records = corpus(30)
    with make(tmp_path / "ix", short_bert) as index:
        index.add(records)
        assert index.delete(["doc-000", "doc-001", "no-such-id", "doc-001"]) == 2
        assert len(index) == 28
        before = index.search(QUESTIONS, k=28)
        assert all(h.id not in ("doc-000", "doc-001") for row in before for h in row)
        assert all(len(row) == 28 for row in before)
        dead = index.info()["dead_vectors"]
        assert dead > 2  # doc-000 is long: several chunks
        assert index.rebuild(None)["compacted"] == dead
        info = index.info()
        assert info["dead_vectors"] == 0 and info["vectors"] == info["chunks"]
        assert sorted(p for p in info["files"] if p.startswith("vectors-")) == [
            f"vectors-{info['commit']}.f32"
        ]
        _same(_as_tuples(index.search(QUESTIONS, k=28)), _as_tuples(before))
    queries = short_bert.embed(QUESTIONS, instruction=QUERY)
    _same(_as_tuples(before), brute_force(short_bert, records[2:], queries, 28))


@pytest.mark.parametrize(
    ("flt", "keep"),
    [
        ({"topic": "trains"}, lambda m: m["topic"] == "trains"),
        ({"topic": ["trains", "bread"]}, lambda m: m["topic"] in ("trains", "bread")),
        ({"even": True, "year": 2002}, lambda m: m["even"] is True and m["year"] == 2002),
        ({"note": None}, lambda m: "note" in m and m["note"] is None),
        ({"year": "2002"}, lambda m: False),  # a string never equals a number
        ({"missing": 1}, lambda m: False),
    ],
)
@pytest.mark.parametrize("wide", [False, True])
def test_filters_equal_brute_force_over_the_matching_documents(
    built: tuple[Path, list[dict[str, object]]],
    short_bert: Embedder,
    monkeypatch: pytest.MonkeyPatch,
    flt: dict[str, object],
    keep: object,
    wide: bool,
) -> None:
    path, records = built
    if wide:  # force the other strategy: filter chunks as they are fetched instead of gathering rows
        monkeypatch.setattr(index_core, "_GATHER_ROWS", 0)
    allowed = {str(r["id"]) for r in records if keep(r["metadata"])}  # type: ignore[operator]
    queries = short_bert.embed(QUESTIONS, instruction=QUERY)
    with Index.open(path, embedder=short_bert) as index:
        got = index.search(QUESTIONS, k=5, filter=flt)
    _same(_as_tuples(got), brute_force(short_bert, records, queries, 5, keep=allowed))


def test_bad_filters_and_searches_are_refused(
    built: tuple[Path, list[dict[str, object]]], short_bert: Embedder
) -> None:
    path, _ = built
    with Index.open(path, embedder=short_bert) as index:
        for flt, message in [
            ({"topic": {"$gt": 1}}, "cannot be matched"),
            ({'a"b': 1}, "without quotes"),
            ({"topic": []}, "empty list"),
            (["topic"], "JSON object"),
        ]:
            with pytest.raises(IndexStoreError, match=message):
                index.search(["q"], filter=flt)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="wrap a single query"):
            index.search("one query")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="query 1 is empty"):
            index.search(["fine", "  "])
        with pytest.raises(ValueError, match="k must be a positive integer"):
            index.search(["q"], k=0)
        with pytest.raises(ValueError, match=r"\(Q, 16\)"):
            index.search_vectors(np.zeros((2, 8), np.float32))


@pytest.mark.parametrize("kind", list(AnnKind))
def test_approximate_index_and_rows_added_after_it(
    tmp_path: Path, short_bert: Embedder, kind: AnnKind
) -> None:
    records = corpus(60)
    with make(tmp_path / "ix", short_bert) as index:
        index.add(records[:50])
        built = index.rebuild(AnnSettings(kind=kind, nprobe=64))["approximate"]
        assert built["rows"] == index.info()["vectors"]
        index.add(records[50:])  # newer rows: searched exactly beside the approximate index
        assert "exact over" in index.info()["search"]
        approx = index.search(QUESTIONS, k=10)
        exact = index.search(QUESTIONS, k=10, exact=True)
        recall = np.mean(
            [len({h.id for h in a} & {h.id for h in e}) / 10 for a, e in zip(approx, exact, strict=True)]
        )
        assert recall >= 0.9
        assert {h.id for row in approx for h in row} & {str(r["id"]) for r in records[50:]}
        if kind.quantized:  # codes only choose candidates: every score is the exact float one
            exact_scores = {(i, h.id): h.score for i, row in enumerate(exact) for h in row}
            for i, row in enumerate(approx):
                for h in row:
                    if (i, h.id) in exact_scores:
                        assert h.score == pytest.approx(exact_scores[(i, h.id)], abs=1e-5)
            assert "rescored from float" in index.info()["search"]
        index.rebuild()  # "keep": the same kind again, now over every row
        assert index.info()["approximate"]["rows"] == index.info()["vectors"]
        index.rebuild(None)
        assert index.info()["search"] == "exact" and not [
            p for p in index.info()["files"] if p.startswith("ann-")
        ]


def test_fingerprint_refuses_other_vectors(
    built: tuple[Path, list[dict[str, object]]], tmp_path: Path, short_bert: Embedder
) -> None:
    from instructembed.testing import build_checkpoint

    path, _ = built
    other = Embedder.load(build_checkpoint(tmp_path / "other", "bert", seed=1), max_seq_length=32)
    with pytest.raises(FingerprintMismatchError, match="weights_sha256: the index has"):
        Index.open(path, embedder=other)
    bf16 = Embedder.load(short_bert.spec.root, max_seq_length=32, dtype="bfloat16")
    with pytest.raises(
        FingerprintMismatchError, match="precision: the index has 'fp32', this model gives 'bf16'"
    ):
        Index.open(path, embedder=bf16)
    longer = Embedder.load(short_bert.spec.root, max_seq_length=64)
    with pytest.raises(FingerprintMismatchError, match="max_seq_length"):
        Index.open(path, embedder=longer)
    # continuing a build with other document settings is refused, naming each difference
    with pytest.raises(FingerprintMismatchError, match=r"doc_instruction.*chunking"):
        Index.create(
            path,
            model=str(short_bert.spec.root),
            doc_instruction="Represent the text: ",
            query_instruction=QUERY,
            chunking=ChunkSettings(overlap=2),
            embedder=short_bert,
            exist_ok=True,
        )
    with make(path, short_bert, exist_ok=True) as same:  # same settings: opened, to continue
        assert len(same) == 60


def _as_if_built_before_the_head(path: Path, **chunking: object) -> None:
    """Rewrite the stored fingerprint's chunking as instructembed recorded it before issue 26."""
    import json
    import sqlite3

    with sqlite3.connect(path / "index.sqlite") as conn:
        (raw,) = conn.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        fingerprint = json.loads(raw)
        fingerprint["chunking"] = {"enabled": True, "overlap": 4, "max_tokens": None, **chunking}
        conn.execute("UPDATE meta SET value = ? WHERE key = 'fingerprint'", (json.dumps(fingerprint),))


def test_an_index_chunked_by_the_old_default_is_refused_with_a_rebuild_message(
    built: tuple[Path, list[dict[str, object]]], tmp_path: Path, short_bert: Embedder
) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(built[0], old)
    _as_if_built_before_the_head(old)
    for attempt in (lambda: Index.open(old), lambda: Index.open(old, embedder=short_bert)):
        with pytest.raises(
            IndexStoreError, match=r"built by an older instructembed: .*old scheme.*Rebuild it"
        ):
            attempt()
    with pytest.raises(IndexStoreError, match="Rebuild it"):  # continuing a build is refused too
        make(old, short_bert, exist_ok=True)
    # truncated (--no-chunk) vectors are the same in both versions: such an index still opens
    unchunked = tmp_path / "unchunked"
    off = ChunkSettings(enabled=False)
    with Index.create(unchunked, model=str(short_bert.spec.root), chunking=off, embedder=short_bert) as index:
        index.add(corpus(8))
    _as_if_built_before_the_head(unchunked, enabled=False)
    with Index.open(unchunked, embedder=short_bert) as index:
        assert index.fingerprint.chunk_settings == ChunkSettings(enabled=False, overlap=4)
        assert len(index.search(QUESTIONS, k=3)) == len(QUESTIONS)
        index.add(corpus(10))  # and takes more documents
        assert len(index) == 10


def test_create_refuses_existing_directories(
    built: tuple[Path, list[dict[str, object]]], tmp_path: Path, short_bert: Embedder
) -> None:
    path, _ = built
    with pytest.raises(IndexStoreError, match="already holds an index"):
        make(path, short_bert)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    with pytest.raises(IndexStoreError, match="is not an index"):
        make(tmp_path / "busy", short_bert)
    with pytest.raises(IndexStoreError, match="does not exist"):
        Index.open(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="shorten the instruction"):  # no room left for text: refused at once
        Index.create(
            tmp_path / "tight", doc_instruction="Represent " * 25, embedder=short_bert, chunking=CHUNKING
        )
    assert not (tmp_path / "tight").exists()


def test_store_text_off_and_records_as_objects(tmp_path: Path, short_bert: Embedder) -> None:
    with make(tmp_path / "ix", short_bert, store_text=False) as index:
        index.add([Record("a", "about rivers"), Record("b", "about trains", {"k": [1, 2]})])
        hit = index.search(["trains"], k=1)[0][0]
        assert (hit.id, hit.text, hit.metadata) == ("b", None, {"k": [1, 2]})


def test_invalid_records_are_refused_before_anything_is_written(tmp_path: Path, short_bert: Embedder) -> None:
    with make(tmp_path / "ix", short_bert) as index:
        good = [{"id": f"g{i}", "text": "fine"} for i in range(20)]
        cases = [
            ({"text": "no id"}, "record 21: the record has no id"),
            ({"id": "g3", "text": "again"}, "record 21: duplicate id 'g3' \\(first at record 4\\)"),
            ({"id": "e", "text": "   "}, "record 21: the text of id 'e' is empty"),
            ({"id": "m", "text": "t", "metadata": {"x": float("nan")}}, "record 21: metadata is not JSON"),
            ({"id": "m", "text": "t", "metadata": {"x": {1, 2}}}, "record 21: metadata is not JSON"),
            ({"id": "m", "text": "t", "metadata": "lang=en"}, "must be a JSON object"),
            ({"id": 5, "text": "t"}, "id must be a string"),
            ({"id": "s", "text": "bad \ud800"}, "unpaired surrogate"),
            ({"id": "u", "text": "t", "extra": 1}, "unknown key"),
        ]
        for bad, message in cases:
            with pytest.raises(RecordError, match=message):
                index.add([*good, bad], commit_every=8)
            assert len(index) == 0
        # an iterator streams: the batches before the bad record are committed, and say so by count
        with pytest.raises(RecordError, match="record 21"):
            index.add(iter([*good, {"id": "g0", "text": "dup"}]), commit_every=8)
        assert len(index) == 16


def test_one_writer_at_a_time(built: tuple[Path, list[dict[str, object]]], short_bert: Embedder) -> None:
    import os

    path, _ = built
    with Index.open(path, embedder=short_bert) as first, Index.open(path, embedder=short_bert) as second:
        with first.writer():
            with pytest.raises(IndexLockedError, match=f"another process \\(pid {os.getpid()}\\) is writing"):
                second.add([{"id": "x", "text": "y"}])
            with pytest.raises(IndexLockedError):
                second.delete(["doc-001"])
            assert len(second.search(["q"], k=3)[0]) == 3  # reading needs no lock
        second.delete(["none-such"])  # the lock is free again
