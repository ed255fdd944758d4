"""Helpers every raw-data parser shares: numbered lines, errors that name file and line, numbers.

Kept apart from `loaders.py` so that parsers of other data families (`paper_loaders.py`) use the same
messages without importing the MTEB parsers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instructembed.errors import InputFileError

__all__ = ["bad_line", "json_lines", "need_file", "numbered_lines", "to_float"]


def bad_line(path: Path, line: int, what: str) -> InputFileError:
    """The error for a malformed line: file:line, what is wrong, and how to check the file."""
    return InputFileError(
        f"{path}:{line}: {what}; the file should be byte-identical to the published one "
        "(check with `sha256sum -c MANIFEST.sha256` in the data folder)"
    )


def need_file(path: Path) -> Path:
    """`path` if it is a file; otherwise an error saying to point --data-dir at the shared data."""
    if not path.is_file():
        raise InputFileError(f"{path}: file not found; point --data-dir at the shared data folder")
    return path


def numbered_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its CR/LF) for each line of `path`."""
    with need_file(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise bad_line(path, number, f"not valid {encoding} text ({exc.reason})") from None
            if number == 1 and encoding == "utf-8-sig":
                line = line.removeprefix("\ufeff")
            yield number, line.rstrip("\r\n")


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file (`NaN` accepted, as Python's json)."""
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise bad_line(path, number, f"not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise bad_line(path, number, f"expected a JSON object, got {type(row).__name__}")
        yield number, row


def to_float(path: Path, line: int, value: object, what: str) -> float:
    """`value` as a float, or the file:line error naming `what`."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise bad_line(path, line, f"{what} {value!r} is not a number") from None
