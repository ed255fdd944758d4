"""The fingerprint records how an instruction is joined to a text (INSTRUCTOR's rule, or a declared
prompt prepended, pooled or not): an index is refused, with a rebuild message, by a model that joins
differently; an index made before the join was recorded reads as INSTRUCTOR's rule and keeps opening
with a model that still joins that way."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from index_helpers import corpus, make

from instructembed import Embedder
from instructembed.checkpoint import INSTRUCTION_JOIN, PROMPT_JOIN
from instructembed.index import FingerprintMismatchError, Index

PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def prompted(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The tiny BERT declaring sentence-transformers prompts: joined prompt + text, prompt pooled."""
    root = tmp_path_factory.mktemp("prompted") / "bert"
    shutil.copytree(tiny_bert_dir, root)
    (root / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": PROMPTS}), encoding="utf-8"
    )
    return Embedder.load(root, max_seq_length=32)


def _build(path: Path, embedder: Embedder, **settings: Any) -> Path:
    with make(path, embedder, **settings) as index:
        index.add(corpus(8))
    return path


def _rewrite_fingerprint(path: Path, drop: tuple[str, ...] = (), **values: object) -> None:
    """Change the stored fingerprint as an older instructembed (or another model) would have written it."""
    with sqlite3.connect(path / "index.sqlite") as conn:
        (raw,) = conn.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        fingerprint = {k: v for k, v in json.loads(raw).items() if k not in drop} | values
        conn.execute("UPDATE meta SET value = ? WHERE key = 'fingerprint'", (json.dumps(fingerprint),))


def test_the_fingerprint_records_the_join(tmp_path: Path, short_bert: Embedder, prompted: Embedder) -> None:
    with Index.open(_build(tmp_path / "instructor", short_bert)) as ix:
        assert (ix.fingerprint.instruction_join, ix.fingerprint.include_prompt) == (INSTRUCTION_JOIN, False)
        assert ix.info()["fingerprint"]["instruction_join"] == INSTRUCTION_JOIN
    with Index.open(
        _build(tmp_path / "prompt", prompted, doc_instruction=None, query_instruction=None)
    ) as ix:
        assert (ix.fingerprint.instruction_join, ix.fingerprint.include_prompt) == (PROMPT_JOIN, True)
        assert ix.fingerprint.doc_instruction == PROMPTS["document"]


def test_an_index_from_before_the_join_was_recorded_opens_with_an_instructor_model(
    tmp_path: Path, short_bert: Embedder
) -> None:
    path = _build(tmp_path / "ix", short_bert)
    with Index.open(path, embedder=short_bert) as index:
        expected = index.search(["trains"], k=3)
    _rewrite_fingerprint(path, drop=("instruction_join", "include_prompt"))
    with Index.open(path, embedder=short_bert) as index:
        assert (index.fingerprint.instruction_join, index.fingerprint.include_prompt) == (
            INSTRUCTION_JOIN,
            False,
        )
        assert [h.id for h in index.search(["trains"], k=3)[0]] == [h.id for h in expected[0]]
    with Index.open(path) as index:  # the model loaded from the fingerprint
        assert len(index.search(["trains"], k=3)[0]) == 3
    with make(path, short_bert, exist_ok=True) as continued:  # a build continued with the same settings
        assert len(continued) == 8


def test_an_index_from_before_the_join_was_recorded_is_refused_by_a_prompt_model(
    tmp_path: Path, prompted: Embedder
) -> None:
    """The same weights: only the join differs (how issue 23 changed prompt-declaring checkpoints)."""
    path = _build(tmp_path / "ix", prompted, doc_instruction=None, query_instruction=None)
    _rewrite_fingerprint(path, drop=("instruction_join", "include_prompt"))
    message = (
        r"instruction_join: the index has 'instructor-1.0.1', this model gives 'sentence-transformers-prompt'; "
        r"include_prompt: the index has False, this model gives True\. This model joins instructions to texts "
        r"differently.*rebuild the index with this model: `instructembed index build --overwrite`"
    )
    with pytest.raises(FingerprintMismatchError, match=message) as caught:
        Index.open(path, embedder=prompted)
    assert not [d for d in caught.value.differences if d.startswith("weights_sha256")]
    with Index.open(path) as index, pytest.raises(FingerprintMismatchError, match=message):
        index.search(["trains"], k=3)  # the model loaded from the fingerprint joins differently too
    with pytest.raises(FingerprintMismatchError, match=message):  # continuing its build
        make(path, prompted, doc_instruction=None, query_instruction=None, exist_ok=True)


def test_an_index_whose_prompt_was_pooled_differently_is_refused(tmp_path: Path, prompted: Embedder) -> None:
    path = _build(tmp_path / "ix", prompted, doc_instruction=None, query_instruction=None)
    _rewrite_fingerprint(path, include_prompt=False)
    with pytest.raises(
        FingerprintMismatchError,
        match=r"built differently: include_prompt: the index has False, this model gives True\.",
    ):
        Index.open(path, embedder=prompted)
