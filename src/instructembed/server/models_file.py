"""`serve --models-file models.toml`: several models, each with its own path, load options and limits.

    [models.small]                    # served as "small"; the first table is the default model
    path = "all-MiniLM-L6-v2"         # packaged name, local directory or hub id
    batch_tokens = 8192               # this model's queue: token budget per batch ...
    max_queue_items = 4096            # ... and inputs queued before 429

    [models.large]
    path = "hkunlp/instructor-large"
    backend = "onnx"
    max_wait_ms = 20

Read once at the edge (the CLI) into frozen `ModelEntry`s; every mistake is a `ModelsFileError` that
names the file, the table and the key, and says what to write instead.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructembed.server.settings import OverlongPolicy, ServerSettings, parse_microbatch_overhead

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the `server` extra installs tomli, the same parser
    import tomli as tomllib

#: Per-model limits: fields of `ServerSettings` that belong to one model's queue and routes. The body
#: limit, the API key and the network stay server-wide (a body is read before its `model` is known).
LIMIT_KEYS: dict[str, type | tuple[type, ...]] = {
    "batch_tokens": int,
    "max_queue_items": int,
    "max_items_per_request": int,
    "max_wait_ms": (int, float),
    "microbatch_overhead_tokens": (str, int),  # "off", "auto" or N, as --microbatch-overhead-tokens
    "overlong": str,
}
#: Per-model keyword arguments of `Embedder.load`. `threads` is not here: torch's thread count is one
#: setting for the whole process, so it stays the server-wide `--threads`.
LOAD_KEYS: dict[str, type | tuple[type, ...]] = {
    "backend": str,
    "quantize": str,
    "dtype": str,
    "device": str,
    "max_seq_length": int,
    "allow_pickle": bool,
}
_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_EXAMPLE = '[models.small]\npath = "all-MiniLM-L6-v2"'


class ModelsFileError(ValueError):
    """A models file that cannot be used, with the file, table and key in the message."""


@dataclass(frozen=True)
class ModelEntry:
    """One `[models.NAME]` table: served as `name`, loaded from `path`."""

    name: str
    path: str
    limits: Mapping[str, Any]  # overrides of the server-wide `ServerSettings`
    load_options: Mapping[str, Any]  # overrides of the server-wide `Embedder.load` options
    source: Path

    def settings(self, base: ServerSettings) -> ServerSettings:
        """`base` with this model's limits, validated by `ServerSettings` itself."""
        limits = dict(self.limits)
        if "overlong" in limits:
            limits["overlong"] = OverlongPolicy(limits["overlong"])  # checked in read_models_file
        try:
            if "microbatch_overhead_tokens" in limits:
                limits["microbatch_overhead_tokens"] = parse_microbatch_overhead(
                    limits["microbatch_overhead_tokens"]
                )
            return dataclasses.replace(base, **limits)
        except ValueError as error:
            raise ModelsFileError(f"{self.source}: [models.{self.name}]: {error}") from None


def read_models_file(path: str | Path) -> list[ModelEntry]:
    """The models of a TOML file, in file order (the first is the default model)."""
    source = Path(path)
    try:
        with source.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ModelsFileError(
            f"{source}: no such file; give the path of a TOML file with one [models.NAME] table per model"
        ) from None
    except OSError as error:
        raise ModelsFileError(f"{source}: cannot be read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ModelsFileError(f"{source}: not valid TOML ({error}); fix the line it names") from None
    unknown = sorted(set(data) - {"models"})
    if unknown:
        raise ModelsFileError(
            f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; the file holds only "
            f"[models.NAME] tables, e.g.\n{_EXAMPLE}"
        )
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise ModelsFileError(f"{source}: no [models.NAME] tables; add one per model, e.g.\n{_EXAMPLE}")
    return [_entry(source, name, table) for name, table in models.items()]


def _entry(source: Path, name: str, table: Any) -> ModelEntry:
    where = f"{source}: [models.{name}]"
    if not name.strip():
        raise ModelsFileError(
            f'{source}: a model has an empty name; write [models.NAME] with NAME = "small" etc.'
        )
    if not isinstance(table, dict):
        raise ModelsFileError(f"{source}: models.{name} must be a table ([models.{name}] with a path = ...)")
    known = {"path": str, **LIMIT_KEYS, **LOAD_KEYS}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ModelsFileError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known keys: {', '.join(known)}"
        )
    for key, value in table.items():
        kind = known[key]
        wrong_bool = isinstance(value, bool) and kind is not bool
        if wrong_bool or not isinstance(value, kind):
            wanted = _WORDS[kind[-1] if isinstance(kind, tuple) else kind]
            raise ModelsFileError(f"{where}: {key} must be {wanted}, got {value!r}")
    path = table.get("path")
    if path is None or not path.strip():
        raise ModelsFileError(
            f'{where}: no path; add path = "all-MiniLM-L6-v2" (a model name, directory or hub id)'
        )
    overlong = table.get("overlong")
    policies = [p.value for p in OverlongPolicy]
    if overlong is not None and overlong not in policies:
        raise ModelsFileError(f"{where}: overlong must be one of {policies}, got {overlong!r}")
    if table.get("max_seq_length", 1) < 1:
        raise ModelsFileError(f"{where}: max_seq_length must be >= 1, got {table['max_seq_length']!r}")
    return ModelEntry(
        name=name,
        path=path,
        limits={k: v for k, v in table.items() if k in LIMIT_KEYS},
        load_options={k: v for k, v in table.items() if k in LOAD_KEYS},
        source=source,
    )
