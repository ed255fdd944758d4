"""Instruction pooling offsets for BERT and T5 tokenizers, and the joined encoder input."""

from __future__ import annotations

from pathlib import Path

import pytest

from instructembed import Embedder
from instructembed.inputs import Item
from instructembed.tokenize import join_instruction


def test_bert_instruction_lengths(minilm: Embedder) -> None:
    tok = minilm.tokenizer
    # [CLS] x [SEP]: length = tokens - 1; 0 or 1 means "no instruction".
    assert tok.instruction_length([""]) == [0]  # [CLS] [SEP] -> 1 -> none
    assert tok.instruction_length(["Hi"]) == [2]  # [CLS] hi [SEP] -> 2: masks [CLS] and "hi"
    assert tok.instruction_length(["Represent the Science title:"]) == [
        6
    ]  # [CLS] represent the science title :


def test_t5_instruction_lengths(tiny_t5_dir: Path) -> None:
    model = Embedder.load(tiny_t5_dir)
    hf = model.tokenizer.hf_tokenizer
    tok = model.tokenizer
    assert hf("")["input_ids"] == [1]  # just </s>
    assert tok.instruction_length([""]) == [0]
    one_piece = next(w for w in ("for", "Represent", "the", "a") if len(hf(w)["input_ids"]) == 2)
    assert tok.instruction_length([one_piece]) == [0]  # "x </s>" -> 1 -> counts as no instruction
    long_instruction = "Represent the Science title for retrieval:"
    assert tok.instruction_length([long_instruction]) == [len(hf(long_instruction)["input_ids"]) - 1]


def test_encode_masks_instruction_positions(minilm: Embedder) -> None:
    rows = minilm.tokenizer.encode(
        [Item("Represent the title: ", "hello world"), Item(None, "hello world"), Item("", "x")]
    )
    assert rows[0].n_masked == 5  # [CLS] represent the title :
    assert len(rows[0].ids) == 8  # [CLS] represent the title : hello world [SEP]
    assert rows[1].n_masked == 0 and rows[2].n_masked == 0


@pytest.mark.parametrize(
    "item,lower,expected",
    [
        (Item("Represent: ", "  text  "), False, ("Represent: text", "Represent:")),
        (Item("  Represent:", "text"), False, ("Represent:text", "Represent:")),  # no separator is added
        (Item("Represent: ", ""), False, ("Represent:", "Represent:")),
        (Item("Rep ", " MiXed "), True, ("rep mixed", "rep")),
        (Item(None, "  plain  "), False, ("plain", None)),
    ],
)
def test_join_instruction_follows_instructor_101(
    item: Item, lower: bool, expected: tuple[str, str | None]
) -> None:
    assert join_instruction(item, lower) == expected


def test_instruction_never_masks_every_token(minilm: Embedder) -> None:
    (row,) = minilm.tokenizer.encode([Item("Represent the whole thing: ", "")])
    assert row.n_masked == len(row.ids) - 1  # the final [SEP] is still pooled, as in INSTRUCTOR


def test_sentence_transformers_prompts_are_joined_unstripped_and_measured_without_the_end_token(
    minilm: Embedder,
) -> None:
    from instructembed.checkpoint import PROMPT_JOIN
    from instructembed.tokenize import InstructionTokenizer

    hf = minilm.tokenizer.hf_tokenizer
    item = Item("query: ", "  Spaced Text ")
    assert join_instruction(item, False, PROMPT_JOIN) == ("query:   Spaced Text ", "query: ")
    assert join_instruction(Item("", "x "), False, PROMPT_JOIN) == ("x ", None)  # "" is no prompt
    excluded = InstructionTokenizer(hf, 64, join=PROMPT_JOIN, include_prompt=False)
    # [CLS] query : [SEP] -> 4 tokens, minus the trailing special [SEP]: 3 ([CLS] query :)
    assert excluded.instruction_length(["query: "]) == [3]
    assert excluded.instruction_length(["q"]) == [2]  # [CLS] q
    included = InstructionTokenizer(hf, 64, join=PROMPT_JOIN, include_prompt=True)
    assert included.instruction_length(["query: "]) == [0]
    assert included.encode([item])[0].n_masked == 0
    assert excluded.encode([Item("query: ", "")])[0].n_masked == 3  # only the [SEP] is pooled, as in ST
    assert excluded.end_token() == "[SEP]"


def test_token_details_show_the_tokens_the_encoder_reads(minilm: Embedder) -> None:
    [row] = minilm.token_details([("Represent the q: ", "Hello wörld")])
    assert [t.text for t in row] == ["[CLS]", "Represent", "the", "q", ":", "Hello", "wörld", "[SEP]"]
    assert [t.special for t in row] == [True] + [False] * 6 + [True]
    assert row[0].start is None and (row[6].start, row[6].stop) == (23, 28)
    assert [t.id for t in row] == minilm.tokenizer.encode([Item("Represent the q: ", "Hello wörld")])[0].ids
    [bare] = minilm.token_details(["hello world"], add_special_tokens=False)
    assert [(t.text, t.start, t.stop) for t in bare] == [("hello", 0, 5), ("world", 6, 11)]
    long_text = " ".join(["word"] * 400)
    [cut] = minilm.token_details([long_text])
    [whole] = minilm.token_details([long_text], truncate=False)
    assert len(cut) == minilm.max_seq_length and len(whole) == 402
