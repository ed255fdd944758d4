"""Token-aware chunking: windows fit the model, spans point into the text, short texts stay whole,
and `embed --chunk` writes what chunking promises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from instructembed import Embedder
from instructembed.chunking import (
    CONTEXT_TOKENS,
    ChunkSettings,
    LegacyChunkingError,
    Splitter,
    chunk_documents,
    context_end,
    pool_chunks,
    token_windows,
)
from instructembed.cli import app
from instructembed.inputs import Item
from instructembed.testing import RUNTIME_ATOL, RUNTIME_MIN_COSINE, assert_vectors_close

INSTRUCTION = "Represent the document for retrieval: "
LONG = " ".join(f"Sentence {i} talks about topic{i % 7} and the weather in town{i}." for i in range(40))


@pytest.fixture(scope="module")
def short_model(tiny_bert_dir: Path) -> Embedder:
    """The tiny BERT with a 32-token window, so ordinary sentences need several chunks."""
    return Embedder.load(tiny_bert_dir, max_seq_length=32)


def _offsets(words: list[str]) -> list[tuple[int, int]]:
    out, pos = [], 0
    for word in words:
        out.append((pos, pos + len(word)))
        pos += len(word) + 1
    return out


def test_token_windows_respect_budget_and_cover_every_token() -> None:
    offsets = _offsets([f"w{i}" for i in range(100)])
    spans = token_windows(offsets, budget=10, overlap=3)
    starts = [s for s, _ in offsets]
    covered: set[int] = set()
    for start, end in spans:
        inside = [i for i, (s, e) in enumerate(offsets) if s >= start and e <= end]
        assert 1 <= len(inside) <= 10
        covered.update(inside)
        assert start in starts  # windows begin on a token
    assert covered == set(range(100))
    # consecutive windows share `overlap` tokens when every token starts a word
    first = {i for i, (s, e) in enumerate(offsets) if s >= spans[0][0] and e <= spans[0][1]}
    second = {i for i, (s, e) in enumerate(offsets) if s >= spans[1][0] and e <= spans[1][1]}
    assert len(first & second) == 3


def test_token_windows_cut_where_a_word_starts() -> None:
    # "ab" + "##cd" style pieces: a token glued to the previous one does not start a word.
    offsets = [(0, 2), (2, 4), (5, 7), (7, 9), (9, 11), (12, 14), (14, 16), (17, 19)]
    spans = token_windows(offsets, budget=4, overlap=0)
    assert spans[0] == (0, 4)  # tokens 0-1; cutting at 4 tokens would split the word 2-4
    for start, _ in spans:
        assert start in (0, 5, 12, 17)


def test_token_windows_empty_and_single_giant_word() -> None:
    assert token_windows([], 5, 0) == [(0, 0)]
    glued = [(i, i + 1) for i in range(12)]  # one 12-token "word": must be cut mid-word
    spans = token_windows(glued, budget=5, overlap=0)
    assert spans == [(0, 5), (5, 10), (10, 12)]


def test_token_windows_can_start_later_at_a_word_start() -> None:
    offsets = _offsets([f"w{i}" for i in range(40)])
    spans = token_windows(offsets, budget=10, overlap=2, first=25)
    assert spans == [(offsets[25][0], offsets[34][1]), (offsets[33][0], offsets[39][1])]
    glued = [(0, 2), (2, 4), (4, 6), (7, 9), (9, 11)]  # words: tokens 0-2, 3-4
    assert token_windows(glued, budget=5, overlap=0, first=2)[0][0] == 0  # back to the word's start


def test_context_end_is_the_first_sentence_or_the_token_cap() -> None:
    text = "Short title here. The abstract goes on for a while."
    offsets = _offsets(text.split())
    assert text[: context_end(text, offsets, 32)] == "Short title here."
    assert text[: context_end(text, offsets, 2)] == "Short title"  # cut after 2 tokens, at a word
    no_stop = "a title without a full stop and more words"
    assert no_stop[: context_end(no_stop, _offsets(no_stop.split()), 3)] == "a title without"
    assert context_end("", [], 5) == 0
    assert text[: context_end(text, offsets, 3)] == "Short title here."  # exactly 3 tokens: the sentence


def test_short_documents_are_one_chunk_identical_to_embed(short_model: Embedder) -> None:
    texts = ["a short text", "another one"]
    batch = chunk_documents(short_model, [Item(INSTRUCTION, t) for t in texts], ChunkSettings())
    assert [(c.doc, c.index, c.start, c.end) for c in batch.chunks] == [(0, 0, 0, 12), (1, 0, 0, 11)]
    assert_vectors_close(
        short_model.embed_tokenized(batch.rows), short_model.embed(texts, instruction=INSTRUCTION)
    )
    assert batch.truncated_docs == 0


def test_long_document_chunks_fit_the_window_and_point_into_the_text(short_model: Embedder) -> None:
    batch = chunk_documents(
        short_model, [Item(INSTRUCTION, LONG), Item(None, LONG)], ChunkSettings(overlap=4)
    )
    assert batch.truncated_docs == 0
    for doc in (0, 1):
        chunks = [c for c in batch.chunks if c.doc == doc]
        assert len(chunks) > 5
        assert [c.index for c in chunks] == list(range(len(chunks)))
        rows = [r for c, r in zip(batch.chunks, batch.rows, strict=True) if c.doc == doc]
        for c, row in zip(chunks, rows, strict=True):
            assert c.text == LONG[c.start : c.end]
            assert not row.truncated and len(row.ids) <= 32
        assert chunks[0].start == 0 and chunks[-1].end == len(LONG.rstrip())
        # every word of the text is in some chunk (the head may end mid-word, as truncation cuts)
        assert set(LONG.split()) <= {w for c in chunks for w in c.text.split()}
        assert {w for c in chunks[1:] for w in c.text.split()} <= set(LONG.split())
        # the windows after the head start inside it (they share `overlap` tokens with it)
        assert chunks[1].start < chunks[0].end
    # the instruction takes room: chunks under it hold fewer tokens than chunks without one
    assert sum(c.doc == 0 for c in batch.chunks) > sum(c.doc == 1 for c in batch.chunks)


def test_the_head_is_the_truncated_document_and_the_windows_follow_it(short_model: Embedder) -> None:
    batch = chunk_documents(short_model, [Item(INSTRUCTION, LONG)], ChunkSettings(overlap=4))
    head_row = short_model.tokenize([(INSTRUCTION, LONG)])[0]
    assert batch.rows[0].ids == head_row.ids and head_row.truncated  # exactly embed's (truncated) row
    assert_vectors_close(
        short_model.embed_tokenized(batch.rows[:1]), short_model.embed([(INSTRUCTION, LONG)])
    )
    assert LONG.startswith(batch.chunks[0].text) and len(batch.chunks[0].text) < len(LONG)
    # the windows: from `overlap` tokens before the head's end, each embedded alone (no context)
    splitter = Splitter(short_model.tokenizer, ChunkSettings(overlap=4))
    offsets = splitter.offsets([LONG])[0]
    kept = splitter.window(INSTRUCTION)
    spans = token_windows(offsets, splitter.budget(INSTRUCTION), 4, first=kept - 4)
    assert [(c.start, c.end) for c in batch.chunks[1:]] == spans
    rows = short_model.tokenize([(INSTRUCTION, LONG[s:e]) for s, e in spans])
    assert [r.ids for r in batch.rows[1:]] == [r.ids for r in rows]


def test_first_sentence_context_goes_in_front_of_every_window(short_model: Embedder) -> None:
    settings = ChunkSettings(overlap=4, context="first-sentence")
    batch = chunk_documents(short_model, [Item(INSTRUCTION, LONG)], settings)
    splitter = Splitter(short_model.tokenizer, settings)
    offsets = splitter.offsets([LONG])[0]
    limit = min(CONTEXT_TOKENS, splitter.budget(INSTRUCTION) // 4)
    context = LONG[: context_end(LONG, offsets, limit)].strip()
    assert context and LONG.startswith(context)
    assert batch.rows[0].ids == short_model.tokenize([(INSTRUCTION, LONG)])[0].ids  # the head as ever
    for chunk, row in zip(batch.chunks[1:], batch.rows[1:], strict=True):
        assert chunk.text == LONG[chunk.start : chunk.end]  # the span is the window's own text
        expected = short_model.tokenize([(INSTRUCTION, f"{context} {chunk.text}")])[0]
        assert row.ids == expected.ids and not row.truncated


def test_without_head_and_context_windows_start_at_the_text(short_model: Embedder) -> None:
    settings = ChunkSettings(overlap=4, head=False, context="none")
    batch = chunk_documents(short_model, [Item(INSTRUCTION, LONG)], settings)
    splitter = Splitter(short_model.tokenizer, settings)
    spans = token_windows(splitter.offsets([LONG])[0], splitter.budget(INSTRUCTION), 4)
    assert [(c.start, c.end) for c in batch.chunks] == spans
    rows = short_model.tokenize([(INSTRUCTION, LONG[s:e]) for s, e in spans])
    assert [r.ids for r in batch.rows] == [r.ids for r in rows]


def test_settings_recorded_before_the_head_are_refused_when_chunked() -> None:
    with pytest.raises(LegacyChunkingError, match="old scheme"):
        ChunkSettings.from_json({"enabled": True, "overlap": 32, "max_tokens": None})
    old_off = ChunkSettings.from_json({"enabled": False, "overlap": 32, "max_tokens": None})
    assert old_off == ChunkSettings(enabled=False)  # truncated vectors are the same today
    assert ChunkSettings.from_json(ChunkSettings(overlap=3).to_json()) == ChunkSettings(overlap=3)
    with pytest.raises(ValueError, match="unknown chunk settings"):
        ChunkSettings.from_json({**ChunkSettings().to_json(), "stride": 3})
    with pytest.raises(ValueError, match="context must be one of"):
        ChunkSettings(context="title")


def test_chunking_off_counts_truncation(short_model: Embedder) -> None:
    batch = chunk_documents(
        short_model, [Item(INSTRUCTION, LONG), Item(None, "tiny")], ChunkSettings(enabled=False)
    )
    assert len(batch.chunks) == 2 and batch.truncated_docs == 1


def test_budget_refuses_an_instruction_that_leaves_no_room(short_model: Embedder) -> None:
    splitter = Splitter(short_model.tokenizer, ChunkSettings(overlap=4))
    assert splitter.budget(None) == 30  # [CLS] and [SEP] take two of 32
    assert splitter.budget(INSTRUCTION) < 30
    with pytest.raises(ValueError, match="shorten the instruction"):
        splitter.budget("Represent " * 25)
    with pytest.raises(ValueError, match="overlap"):
        ChunkSettings(overlap=-1)


def test_pool_chunks_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 5)).astype(np.float32)
    docs = np.array([0, 0, 1, 2, 2, 2, 3])
    got = pool_chunks(vectors, docs, 4, normalize=True)
    for d in range(4):
        mean = vectors[docs == d].mean(axis=0)
        assert_vectors_close(got[d], mean / np.linalg.norm(mean))
    raw = pool_chunks(vectors, docs, 4, normalize=False)
    assert_vectors_close(raw[2], vectors[3:6].mean(axis=0))
    with pytest.raises(ValueError, match="at least one chunk"):
        pool_chunks(vectors, docs, 5, normalize=True)


# ---- the command line -------------------------------------------------------------------------

runner = CliRunner()


def _write_input(tmp_path: Path) -> Path:
    source = tmp_path / "docs.jsonl"
    rows = [{"id": "long", "text": LONG}, {"id": "short", "text": "just a few words"}]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return source


def test_embed_chunk_writes_one_row_per_chunk(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    source, out = _write_input(tmp_path), tmp_path / "chunks.parquet"
    args = ["embed", "-m", str(tiny_bert_dir), "-i", str(source), "--max-seq-length", "32"]
    args += ["--instruction", INSTRUCTION, "--chunk-overlap", "4"]
    result = runner.invoke(app, [*args, "-o", str(out), "--chunk"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pydict()
    model = Embedder.load(tiny_bert_dir, max_seq_length=32)
    expected = chunk_documents(
        model, [Item(INSTRUCTION, LONG), Item(INSTRUCTION, "just a few words")], ChunkSettings(overlap=4)
    )
    assert table["id"] == ["long"] * (len(expected.chunks) - 1) + ["short"]
    assert table["doc"] == [c.doc for c in expected.chunks]
    assert table["chunk"] == [c.index for c in expected.chunks]
    assert table["start"] == [c.start for c in expected.chunks]
    assert table["end"] == [c.end for c in expected.chunks]
    assert_vectors_close(
        np.array(table["embedding"], dtype=np.float32),
        model.embed_tokenized(expected.rows),
        atol=RUNTIME_ATOL,
        min_cosine=RUNTIME_MIN_COSINE,
    )
    assert f"split 1 text(s) longer than 32 tokens into {len(expected.chunks) - 1} chunks" in result.output

    pooled = tmp_path / "pooled.npy"
    result = runner.invoke(app, [*args, "-o", str(pooled), "--chunk-pool", "mean"])
    assert result.exit_code == 0, result.output
    vectors = np.array(table["embedding"], dtype=np.float32)
    assert_vectors_close(
        np.load(pooled),
        pool_chunks(vectors, np.array(table["doc"]), 2, normalize=True),
        atol=RUNTIME_ATOL,
        min_cosine=RUNTIME_MIN_COSINE,
    )


def test_embed_reports_truncation_and_refuses_chunks_in_npy(tiny_bert_dir: Path, tmp_path: Path) -> None:
    source = _write_input(tmp_path)
    args = ["embed", "-m", str(tiny_bert_dir), "-i", str(source), "--max-seq-length", "32"]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "plain.npy")])
    assert result.exit_code == 0, result.output
    assert "1 text(s) longer than 32 tokens" in result.output and "--chunk embeds them whole" in result.output
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "chunks.npy"), "--chunk"])
    assert result.exit_code == 1 and "write .parquet, or add --chunk-pool mean" in result.output
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "x.npy"), "--chunk-overlap", "3"])
    assert result.exit_code == 1 and "add --chunk" in result.output
    assert not (tmp_path / "chunks.npy").exists() and not (tmp_path / "x.npy").exists()


def test_embed_reads_parquet_input(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["first text", "second text"]}), source)
    out = tmp_path / "out.npy"
    result = runner.invoke(app, ["embed", "-m", str(tiny_bert_dir), "-i", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    expected = Embedder.load(tiny_bert_dir).embed(["first text", "second text"])
    assert_vectors_close(np.load(out), expected)
