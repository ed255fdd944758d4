"""The one encode path: exact INSTRUCTOR semantics, input forms, batching invariance, errors."""

from __future__ import annotations

import logging
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from instructembed import EmbedConfig, Embedder
from instructembed.checkpoint import read_spec
from instructembed.model import load_model
from instructembed.testing import RUNTIME_ATOL, RUNTIME_MIN_COSINE, assert_vectors_close

PAIRS: list[Any] = [
    ("Represent the Science title: ", "3D ActionSLAM: wearable person tracking in multi-floor environments"),
    [
        "Represent the Wikipedia document for retrieval: ",
        "  Capitalism has been dominant in the Western world.  ",
    ],
    ("", "an empty instruction means a plain text"),
    ("Hi", "a one-word instruction"),
    ("   Represent the question:   ", "leading and trailing whitespace"),
    ("Represent the café review: ", "Ünïcödé tëxt — naïve résumé, 東京"),
    ("Represent the sentence: ", ""),
    ("Represent the long document: ", " ".join(["word"] * 400)),
    "a plain string, pooled over all tokens",
]


def naive_instructor(model_dir: Path, items: list[Any]) -> np.ndarray:
    """InstructorEmbedding 1.0.1's recipe, one row at a time, straight through transformers."""
    from transformers import AutoTokenizer

    spec = read_spec(model_dir)
    model = load_model(spec)
    tok = AutoTokenizer.from_pretrained(str(spec.encoder_dir))
    rows = []
    for item in items:
        if isinstance(item, str):
            joined, skip = item.strip(), 0
        else:
            instruction, text = item
            joined = (instruction + text.strip()).strip()
            skip = (
                len(tok(instruction.strip(), truncation=True, max_length=spec.max_seq_length)["input_ids"])
                - 1
            )
            skip = 0 if skip <= 1 else skip
        enc = tok(joined, truncation=True, max_length=spec.max_seq_length, return_tensors="pt")
        with torch.no_grad():
            kwargs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            states = model.encoder(**kwargs).last_hidden_state[0]  # (T, H)
            vec = states[skip:].mean(dim=0)
            if model.dense is not None:
                vec = model.dense(vec)
            if model.normalize:
                vec = vec / vec.norm()
        rows.append(vec.numpy())
    return np.stack(rows)


@pytest.mark.parametrize("arch", ["bert", "t5"])
def test_matches_a_naive_per_row_instructor_loop(arch: str, request: pytest.FixtureRequest) -> None:
    model_dir = request.getfixturevalue(f"tiny_{arch}_dir")
    model = Embedder.load(model_dir)
    got = model.embed(PAIRS)
    expected = naive_instructor(model_dir, PAIRS)
    assert got.dtype == np.float32 and got.shape == (len(PAIRS), model.dimension)
    assert_vectors_close(got, expected, atol=RUNTIME_ATOL, min_cosine=RUNTIME_MIN_COSINE)


def test_real_model_matches_naive_loop(minilm: Embedder) -> None:
    expected = naive_instructor(minilm.spec.root, PAIRS)
    assert_vectors_close(minilm.embed(PAIRS), expected, atol=RUNTIME_ATOL, min_cosine=RUNTIME_MIN_COSINE)


def test_parity_with_sentence_transformers_prompt(minilm: Embedder) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm.spec.root), device="cpu")
    st[1].include_prompt = False
    instruction = "Represent the Wikipedia question for retrieving supporting documents: "
    texts = [t for t in (p[1].strip() if not isinstance(p, str) else p for p in PAIRS) if t]
    ours = minilm.embed(texts, instruction=instruction)
    theirs = st.encode(texts, prompt=instruction, convert_to_numpy=True)
    assert np.abs(ours - theirs).max() <= 1e-5


def test_input_forms_agree(minilm: Embedder) -> None:
    instruction = "Represent the question for retrieval: "
    texts = ["first text", "second text"]
    shared = minilm.embed(texts, instruction=instruction)
    tuples = minilm.embed([(instruction, t) for t in texts])
    lists = minilm.embed([[instruction, t] for t in texts])
    np.testing.assert_array_equal(shared, tuples)
    np.testing.assert_array_equal(tuples, lists)
    mixed = minilm.embed(["first text", (instruction, "second text")])
    assert_vectors_close(mixed[0], minilm.embed(["first text"])[0])
    assert_vectors_close(mixed[1], tuples[1])
    assert minilm.embed(t for t in texts).shape == (2, 384)  # any iterable


def test_empty_input_gives_zero_rows(minilm: Embedder) -> None:
    out = minilm.embed([])
    assert out.shape == (0, 384) and out.dtype == np.float32


@pytest.mark.parametrize(
    "inputs,kwargs,error,message",
    [
        ("a single string", {}, TypeError, r"wrap it in a list"),
        (b"bytes", {}, TypeError, r"wrap it in a list"),
        ({"text": "x"}, {}, TypeError, r"accepted"),
        (42, {}, TypeError, r"accepted"),
        (["ok", 3], {}, TypeError, r"inputs\[1\] is int"),
        (["ok", None], {}, TypeError, r"inputs\[1\] is NoneType"),
        ([("only one",)], {}, ValueError, r"inputs\[0\] has 1 elements"),
        ([("a", "b", "c")], {}, ValueError, r"inputs\[0\] has 3 elements"),
        ([("instruction", 5)], {}, TypeError, r"pair of two strings"),
        ([(None, "text")], {}, TypeError, r"pair of two strings"),
        ([("instr", "text")], {"instruction": "also"}, ValueError, r"not both|one or the other"),
        (["text"], {"instruction": 3}, TypeError, r"instruction= must be a string"),
    ],
)
def test_bad_inputs_say_what_is_accepted(
    minilm: Embedder, inputs: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        minilm.embed(inputs, **kwargs)


def test_results_do_not_depend_on_batch_composition(minilm: Embedder) -> None:
    items = [p if isinstance(p, str) else tuple(p) for p in PAIRS] * 2 + [
        f"text number {i}" for i in range(9)
    ]
    reference = minilm.embed(items)
    for config in (
        EmbedConfig(max_batch_size=1),
        EmbedConfig(max_batch_size=7),
        EmbedConfig(token_budget=300),
    ):
        other = Embedder(minilm.spec, minilm.tokenizer, minilm.backend, name="x", config=config)
        assert_vectors_close(other.embed(items), reference)
    order = list(range(len(items)))
    random.Random(0).shuffle(order)
    shuffled = minilm.embed([items[i] for i in order])
    assert_vectors_close(shuffled, reference[order])


@pytest.mark.parametrize("arch", ["bert", "t5"])
def test_save_then_load_gives_identical_vectors(
    arch: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model = Embedder.load(request.getfixturevalue(f"tiny_{arch}_dir"))
    saved = model.save(tmp_path / "saved")
    again = Embedder.load(saved)
    assert again.spec.layout.value == "instructembed"
    assert again.info()["dimension"] == model.info()["dimension"]
    np.testing.assert_array_equal(again.embed(PAIRS), model.embed(PAIRS))
    with pytest.raises(FileExistsError, match="not empty"):
        model.save(saved)


def test_truncation_is_logged_once(tiny_bert_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = Embedder.load(tiny_bert_dir, max_seq_length=16)
    with caplog.at_level(logging.WARNING, logger="instructembed"):
        model.embed(["word " * 50, "word " * 60])
        model.embed(["word " * 70])
    assert sum("truncated" in r.message for r in caplog.records) == 1
    assert model.token_counts(["word " * 50]) == [52]


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_t5_dir"])
def test_tokenize_once_then_embed_matches_embed(fixture: str, request: pytest.FixtureRequest) -> None:
    """The server's path: one tokenization gives both the counts and the rows it embeds."""
    model = Embedder.load(request.getfixturevalue(fixture), max_seq_length=16)
    inputs = [*PAIRS, "word " * 40, ("Represent the title: ", "word " * 30), "short"]
    rows = model.tokenize(inputs)
    assert [row.n_tokens for row in rows] == model.token_counts(inputs)
    assert [row.truncated for row in rows] == [n > 16 for n in model.token_counts(inputs)]
    assert all(len(row.ids) <= 16 for row in rows)
    np.testing.assert_array_equal(model.embed_tokenized(rows), model.embed(inputs))
    assert model.embed_tokenized([]).shape == (0, model.dimension)


def test_lower_case_checkpoint_lowercases_text(tmp_path: Path) -> None:
    from instructembed.testing import build_checkpoint

    lower = Embedder.load(build_checkpoint(tmp_path / "lower", "t5", lower=True))
    np.testing.assert_array_equal(
        lower.embed([("Represent THE Title: ", "HELLO World")]),
        lower.embed([("represent the title: ", "hello world")]),
    )


def test_torch_backend_without_torch_says_what_to_do(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from instructembed.errors import InstructEmbedError

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(InstructEmbedError, match=r"needs PyTorch.*backend='openvino'"):
        Embedder.load(tiny_bert_dir)
