"""What `embed` accepts, checked once at the edge and turned into one shape: a list of `Item`s.

Accepted: plain strings; (instruction, text) pairs as tuples or 2-item lists (so the
`[[instruction, text], ...]` lists INSTRUCTOR users already have work unchanged); or strings with a
shared `instruction=`. Pairs and strings may be mixed, and every row may carry its own instruction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: One input to `embed`: a text, or an (instruction, text) pair.
EmbedInput = str | tuple[str, str] | Sequence[str]

ACCEPTED = (
    "a list of strings, a list of (instruction, text) pairs (tuples or 2-item lists of strings), "
    "or a list of strings with instruction='...'"
)


@dataclass(frozen=True)
class Item:
    """One row to embed. `instruction is None` means a plain text (pooled over all its tokens)."""

    instruction: str | None
    text: str


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def to_items(inputs: Iterable[EmbedInput], instruction: str | None = None) -> list[Item]:
    """Validate `inputs` and return one `Item` per row, in input order.

    Raises TypeError for wrong types and ValueError for wrong shapes, naming the offending row.
    """
    if isinstance(inputs, (str, bytes)):
        raise TypeError(
            f"embed() takes a list of inputs, got a single {type(inputs).__name__}; "
            f"wrap it in a list: embed([text]). Accepted: {ACCEPTED}"
        )
    if isinstance(inputs, dict) or not isinstance(inputs, Iterable):
        raise TypeError(f"embed() got {_describe(inputs)}; accepted: {ACCEPTED}")
    if instruction is not None and not isinstance(instruction, str):
        raise TypeError(f"instruction= must be a string or None, got {_describe(instruction)}")

    items: list[Item] = []
    for index, value in enumerate(inputs):
        if isinstance(value, str):
            items.append(Item(instruction, value))
            continue
        if isinstance(value, (tuple, list)):
            if len(value) != 2:
                raise ValueError(
                    f"inputs[{index}] has {len(value)} elements; a pair must be exactly "
                    f"(instruction, text). Accepted: {ACCEPTED}"
                )
            pair_instruction, text = value
            if not isinstance(pair_instruction, str) or not isinstance(text, str):
                raise TypeError(
                    f"inputs[{index}] must be a pair of two strings (instruction, text), got "
                    f"({type(pair_instruction).__name__}, {type(text).__name__})"
                )
            if instruction is not None:
                raise ValueError(
                    f"inputs[{index}] is an (instruction, text) pair but instruction= was also given; "
                    "use one or the other: pairs carry their own instruction"
                )
            items.append(Item(pair_instruction, text))
            continue
        raise TypeError(f"inputs[{index}] is {_describe(value)}; accepted: {ACCEPTED}")
    return items
