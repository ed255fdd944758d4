"""Instruction-aware tokenization: token ids plus, per row, how many leading positions pooling skips.

This reproduces the released INSTRUCTOR package (InstructorEmbedding 1.0.1) exactly, so vectors in
users' existing indexes stay valid:

- pair (instruction, text): the text is stripped (and lower-cased if the checkpoint says
  `do_lower_case`); the encoder input is ``(instruction + text).strip()`` -- no separator is added, so
  an instruction's trailing space is the separator and its leading whitespace disappears;
- the instruction's length is the token count of the *stripped* instruction encoded on its own,
  special tokens included, minus one; a length of 0 or 1 counts as no instruction;
- the encoder attends over the whole joined sequence; only pooling skips the first `length` positions;
- plain strings are stripped and pooled over all their tokens, special tokens included.

A checkpoint that declares sentence-transformers prompts (`checkpoint.PROMPT_JOIN`) is joined as
sentence-transformers 5/6 joins a prompt instead: the encoder input is ``prompt + text`` exactly as
given (no stripping), the prompt's length is its token count with special tokens minus a trailing
special token, and pooling skips those positions only when the checkpoint says `include_prompt: false`.

The pooling mask itself is built per batch in `batching.collate` from `Encoded.n_masked`.
`load_tokenizer` reads a model directory's fast tokenizer into an `InstructionTokenizer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokenizers import Tokenizer

from instructembed.checkpoint import INSTRUCTION_JOIN, JOINS, PROMPT_JOIN
from instructembed.errors import CheckpointError
from instructembed.inputs import Item

if TYPE_CHECKING:
    from instructembed.checkpoint import ModelSpec

_INSTRUCTION_CACHE_LIMIT = 65536


@dataclass(frozen=True)
class Encoded:
    """One tokenized row. `ids` are already truncated to the model's max length."""

    ids: list[int]
    type_ids: list[int]
    n_masked: int  # leading positions (the instruction) that mean pooling skips
    truncated: bool
    n_tokens: int = -1  # tokens before truncation, special tokens included; -1 = len(ids)

    def __post_init__(self) -> None:
        if self.n_tokens < 0:
            object.__setattr__(self, "n_tokens", len(self.ids))


@dataclass(frozen=True)
class TokenInfo:
    """One token as `/tokenize` shows it (TEI's shape): `start`/`stop` are character offsets into the
    string the encoder reads (instruction + text as INSTRUCTOR joins them), None for special tokens."""

    id: int
    text: str
    special: bool
    start: int | None
    stop: int | None


def join_instruction(item: Item, lower: bool, join: str = INSTRUCTION_JOIN) -> tuple[str, str | None]:
    """Return (encoder input string, instruction as measured or None): stripped as INSTRUCTOR 1.0.1
    builds them, or as given (``prompt + text``) under sentence-transformers' prompts."""
    if join == PROMPT_JOIN:
        joined = item.text if item.instruction is None else item.instruction + item.text
        instruction = item.instruction or None  # an empty prompt is no prompt, as in sentence-transformers
        if lower:
            return joined.lower(), None if instruction is None else instruction.lower()
        return joined, instruction
    text = item.text.strip()
    if lower:
        text = text.lower()
    if item.instruction is None:
        return text, None
    joined = (item.instruction + text).strip()
    instruction = item.instruction.strip()
    if lower:
        joined, instruction = joined.lower(), instruction.lower()
    return joined, instruction


class InstructionTokenizer:
    """Wraps a Hugging Face fast tokenizer; encodes `Item`s into ids and per-row pooling offsets."""

    def __init__(
        self,
        tokenizer: Any,
        max_seq_length: int,
        do_lower_case: bool = False,
        *,
        join: str = INSTRUCTION_JOIN,
        include_prompt: bool = False,
        padding_side: str = "right",
    ) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if not isinstance(backend, Tokenizer):
            raise TypeError(
                f"{type(tokenizer).__name__} has no fast (Rust) tokenizer; instructembed needs a "
                "tokenizer.json in the model directory (save it with a fast tokenizer)"
            )
        if max_seq_length < 2:
            raise ValueError(f"max_seq_length must be at least 2, got {max_seq_length}")
        if join not in JOINS:
            raise ValueError(f"join must be one of {', '.join(JOINS)}, got {join!r}")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        self.join = join
        self.include_prompt = include_prompt and join == PROMPT_JOIN  # INSTRUCTOR's rule never pools it
        self.padding_side = padding_side
        self._special_ids = {int(i) for i in getattr(tokenizer, "all_special_ids", [])}
        self.hf_tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.do_lower_case = do_lower_case
        pad_id = tokenizer.pad_token_id
        self.pad_id = int(pad_id) if pad_id is not None else 0
        self.uses_type_ids = "token_type_ids" in getattr(tokenizer, "model_input_names", [])
        # Two private copies of the Rust tokenizer: one truncating (what the encoder sees), one not
        # (for counting tokens before truncation). Neither pads: batches are padded per batch.
        self._truncating = Tokenizer.from_str(backend.to_str())
        self._truncating.no_padding()
        self._truncating.enable_truncation(max_seq_length)
        self._full = Tokenizer.from_str(backend.to_str())
        self._full.no_padding()
        self._full.no_truncation()
        self._instruction_lengths: dict[str, int] = {}

    def instruction_length(self, instructions: Sequence[str]) -> list[int]:
        """Pooling offsets for instructions (as `join_instruction` returns them).

        INSTRUCTOR: len(tokens incl. specials) - 1, or 0 if that is <= 1. sentence-transformers
        prompts: len(tokens incl. specials), minus one if the last is a special token (an appended
        EOS / SEP); 0 when the checkpoint pools its prompt (`include_prompt`)."""
        if self.include_prompt:
            return [0] * len(instructions)
        missing = sorted({s for s in instructions if s not in self._instruction_lengths})
        if missing:
            if len(self._instruction_lengths) + len(missing) > _INSTRUCTION_CACHE_LIMIT:
                self._instruction_lengths.clear()
            for text, enc in zip(missing, self._truncating.encode_batch(missing), strict=True):
                if self.join == PROMPT_JOIN:
                    n = len(enc.ids) - (1 if enc.ids and enc.ids[-1] in self._special_ids else 0)
                else:
                    n = len(enc.ids) - 1
                    n = n if n > 1 else 0
                self._instruction_lengths[text] = n
        return [self._instruction_lengths[s] for s in instructions]

    def encode(self, items: Sequence[Item]) -> list[Encoded]:
        """Rows as the encoder sees them (truncated), each with its pooling offset and its length
        before truncation."""
        joined = [join_instruction(item, self.do_lower_case, self.join) for item in items]
        encodings = self._truncating.encode_batch([j for j, _ in joined])
        instructions = [i for _, i in joined if i is not None]
        offsets = iter(self.instruction_length(instructions))
        # Lengths before truncation (for limits and usage): only truncated rows need a second pass.
        long_rows = [i for i, enc in enumerate(encodings) if enc.overflowing]
        full = dict(zip(long_rows, self._full_lengths([joined[i][0] for i in long_rows]), strict=True))
        out: list[Encoded] = []
        for row, ((_, instruction), enc) in enumerate(zip(joined, encodings, strict=True)):
            ids = list(enc.ids)
            n_masked = next(offsets) if instruction is not None else 0
            # INSTRUCTOR asserts here; we keep at least the last token so the mean is defined.
            # sentence-transformers pools nothing then (a zero vector before normalizing): so do we.
            n_masked = min(n_masked, len(ids) - (1 if self.join == INSTRUCTION_JOIN else 0))
            out.append(Encoded(ids, list(enc.type_ids), n_masked, row in full, full.get(row, len(ids))))
        return out

    def end_token(self) -> str | None:
        """The special token the tokenizer appends after every text ("</s>", "<|endoftext|>", "[SEP]"),
        or None if it appends none (read from what it does to a probe text)."""
        ids = self._full.encode("probe").ids
        if ids and ids[-1] in self._special_ids:
            return str(self._full.id_to_token(ids[-1]))
        return None

    def token_details(
        self, items: Sequence[Item], *, add_special_tokens: bool = True, truncate: bool = True
    ) -> list[list[TokenInfo]]:
        """Each row's tokens with their text and character span (for `/tokenize`); `truncate=False`
        shows every token, also those the encoder would cut."""
        joined = [join_instruction(item, self.do_lower_case, self.join)[0] for item in items]
        tokenizer = self._truncating if truncate else self._full
        encodings = tokenizer.encode_batch(joined, add_special_tokens=add_special_tokens)
        out: list[list[TokenInfo]] = []
        for text, enc in zip(joined, encodings, strict=True):
            row = []
            for token_id, token, (start, stop), special in zip(
                enc.ids, enc.tokens, enc.offsets, enc.special_tokens_mask, strict=True
            ):
                if special:
                    row.append(TokenInfo(int(token_id), token, True, None, None))
                else:
                    row.append(TokenInfo(int(token_id), text[start:stop], False, int(start), int(stop)))
            out.append(row)
        return out

    def token_counts(self, items: Sequence[Item]) -> list[int]:
        """Tokens per row *before* truncation, special tokens included (what a limit check needs)."""
        return self._full_lengths(
            [join_instruction(item, self.do_lower_case, self.join)[0] for item in items]
        )

    def _full_lengths(self, joined: Sequence[str]) -> list[int]:
        return [len(enc.ids) for enc in self._full.encode_batch(list(joined))] if joined else []


def load_tokenizer(spec: ModelSpec) -> InstructionTokenizer:
    """The fast tokenizer of `spec`'s encoder directory, set to its max length and lower-casing."""
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(str(spec.encoder_dir), local_files_only=True, use_fast=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"could not load the tokenizer from {spec.encoder_dir}: {exc}") from exc
    return InstructionTokenizer(
        hf,
        spec.max_seq_length,
        spec.do_lower_case,
        join=spec.instruction_join,
        include_prompt=spec.include_prompt,
        padding_side=spec.padding_side,
    )
