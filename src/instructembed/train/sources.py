"""Which datasets a run trains on, from its `TrainConfig`: one `--data` file described by the
command-line flags, or a `--datasets` TOML file of several, each its own task (one task per batch):

    [[dataset]]
    path = "faq_pairs.csv"          # relative to the TOML file
    shape = "pairs"                 # pairs | triplets | scored | labelled | medi
    query_field = "question"
    positive_field = "answer"
    query_instruction = "Represent the customer question for retrieving an answer: "
    document_instruction = "Represent the answer for retrieval: "
    weight = 2.0                    # twice its share of batches
    name = "faq"                    # the task name (default: the file's stem)

The `--eval` / `--test` files are described by the command-line flags (shape, fields, instructions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from instructembed.train.config import Shape, TrainConfig
from instructembed.train.user_data import DatasetSpec, Fields

_FIELD_KEYS = {
    "query_field": "query",
    "positive_field": "positive",
    "negative_field": "negatives",
    "score_field": "score",
    "label_field": "label",
    "text_field": "text",
    "query_instruction_field": "query_instruction",
    "document_instruction_field": "document_instruction",
}
_KEYS = {"path", "shape", "weight", "name", "query_instruction", "document_instruction", *_FIELD_KEYS}


def fields_of(config: TrainConfig) -> Fields:
    return Fields(
        query=config.query_field,
        positive=config.positive_field,
        negatives=config.negative_field,
        score=config.score_field,
        label=config.label_field,
        text=config.text_field,
        query_instruction=config.query_instruction_field,
        document_instruction=config.document_instruction_field,
    )


def spec_for(config: TrainConfig, path: Path, shape: Shape | None = None) -> DatasetSpec:
    """A file described by the run's flags (its --data, --eval or --test)."""
    return DatasetSpec(
        path,
        shape or config.shape,
        fields_of(config),
        config.query_instruction,
        config.document_instruction,
    )


def _spec_from_table(table: dict[str, Any], where: str, root: Path) -> DatasetSpec:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    if "path" not in table:
        raise ValueError(f"{where}: every [[dataset]] needs a path")
    try:
        shape = Shape(table.get("shape", "medi"))
    except ValueError:
        raise ValueError(
            f"{where}: shape {table['shape']!r} is not one of {', '.join(s.value for s in Shape)}"
        ) from None
    fields: dict[str, Any] = {}
    for key, name in _FIELD_KEYS.items():
        if key in table:
            value = table[key]
            if key == "negative_field":
                value = (value,) if isinstance(value, str) else tuple(value)
            fields[name] = value
    path = Path(table["path"])
    try:
        return DatasetSpec(
            path if path.is_absolute() else root / path,
            shape,
            Fields(**fields),
            str(table.get("query_instruction", "")),
            str(table.get("document_instruction", "")),
            float(table.get("weight", 1.0)),
            table.get("name"),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_datasets_toml(path: Path) -> list[DatasetSpec]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"datasets file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    tables = raw.get("dataset")
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"{path}: no [[dataset]] tables; each needs at least `path` and `shape`")
    specs = [_spec_from_table(t, f"{path}: dataset {i + 1}", path.parent) for i, t in enumerate(tables)]
    names = [s.task for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{path}: two datasets share the task name {', '.join(twice)}; give each a `name`")
    return specs


def dataset_specs(config: TrainConfig) -> list[DatasetSpec]:
    if config.datasets is not None:
        return read_datasets_toml(config.datasets)
    if config.data is None:  # pragma: no cover - TrainConfig refuses it
        raise ValueError("--data or --datasets is required")
    return [spec_for(config, config.data)]
