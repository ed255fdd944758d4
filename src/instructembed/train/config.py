"""`TrainConfig`: every training option, built once at the edge (CLI, TOML file, tests) and passed down.

Defaults are the recipe this project measured and froze (docs/results/recipe.json, chosen on dev in
docs/results.md): temperature 0.05, lr 5e-6, warm-up ratio 0.1, global batch 32, AdamW, gradient
clipping at 1.0. INSTRUCTOR's own script used temperature 0.01 and lr 2e-5; at 0.01 our dev runs show
the instruction collapse (mean cosine between instructed documents climbing from 0.31 to 0.59), so
0.01 is no default here. The per-process batch of 4 in their script becomes a global batch here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Any

import tomllib

#: The measured recipe (docs/results/recipe.json); INSTRUCTOR's 0.01 is where the collapse shows.
DEFAULT_TEMPERATURE = 0.05
DEFAULT_LR = 5e-6
DEFAULT_WARMUP_RATIO = 0.1
DEFAULT_BATCH_SIZE = 32


class LossKind(str, Enum):
    """Which contrastive loss (the functions themselves live in loss.py)."""

    INSTRUCTOR = "instructor"
    IN_BATCH = "in-batch"


class BatchSampling(str, Enum):
    """How a task's rows are cut into batches (samplers in data.py)."""

    RANDOM = "random"  # a shuffle cut into full batches; the last partial batch dropped
    NO_DUPLICATES = "no-duplicates"  # no two rows sharing a query / positive text or a label; all rows


class Shape(str, Enum):
    """What the rows of a training file are (readers in user_data.py)."""

    MEDI = "medi"  # {"query": [instr, text], "pos": [...], "neg": [...], "task_name": ...}
    PAIRS = "pairs"  # (query, positive)
    TRIPLETS = "triplets"  # (query, positive, negative or a list of negatives)
    SCORED = "scored"  # (text1, text2, score): CoSENT
    LABELLED = "labelled"  # (text, label): pairs by nearest same-label text


@dataclass(frozen=True)
class TrainConfig:
    model: str
    data: Path | None  # one training file; or `datasets` (a TOML file of several)
    out: Path
    loss: LossKind = LossKind.INSTRUCTOR
    temperature: float = DEFAULT_TEMPERATURE
    lr: float = DEFAULT_LR
    weight_decay: float = 0.0
    warmup_ratio: float = DEFAULT_WARMUP_RATIO
    batch_size: int = DEFAULT_BATCH_SIZE  # global: examples per step over all processes, all from one task
    # random stays the default until a measurement shows no-duplicates is better (none has run)
    batch_sampler: BatchSampling = BatchSampling.RANDOM
    chunk_size: int | None = None  # cached (GradCache) step with this many rows per forward; None = plain
    max_length: int | None = None  # None = the checkpoint's own max_seq_length
    epochs: int = 1
    max_steps: int | None = None  # overrides epochs when set
    max_grad_norm: float = 1.0
    bf16: bool = False
    seed: int = 42
    device: str = "cpu"
    no_instructions: bool = False  # the paper's ablation: every instruction emptied
    skip_bad: bool = False
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 1
    eval_every: int = 0  # 0 = never
    eval_tasks: str = "STSBenchmark"
    eval_limit: int | None = 200
    eval_data_dir: Path | None = None
    eval_dev: Path | None = None  # dev slice of the mixture: evaluate on training tasks' dev data
    progress: bool = True
    # --- the user's own data (user_data.py): shape, columns, instructions
    shape: Shape = Shape.MEDI
    query_field: str | None = None  # None = the shape's default (query / text1)
    positive_field: str | None = None
    negative_field: tuple[str, ...] | None = None
    score_field: str | None = None
    label_field: str | None = None
    text_field: str | None = None
    query_instruction: str = ""
    document_instruction: str = ""
    query_instruction_field: str | None = None
    document_instruction_field: str | None = None
    datasets: Path | None = None  # TOML: [[dataset]] tables (path, shape, fields, instructions, weight)
    # --- the user's own held-out data (user_eval.py): dev chooses the checkpoint, test is scored once
    eval_file: Path | None = None
    eval_corpus: Path | None = None
    corpus_field: str = "text"
    test_file: Path | None = None
    eval_bf16: bool = False  # embed dev/test in bfloat16 (faster on CPUs with AMX; same for base and tuned)
    eval_rerank: bool = False  # dev/test as reranking: each query ranks its own positives + negatives (MAP)
    keep_best: bool = True  # the saved model is the best dev checkpoint (with --eval)
    # --- LoRA (lora.py, the [lora] extra): adapters on the encoder, merged into the saved weights
    lora_rank: int | None = None  # None = full fine-tuning
    lora_alpha: int = 16
    lora_dropout: float = 0.0

    def __post_init__(self) -> None:
        checks = [
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}"),
            (self.batch_size >= 2, f"batch_size must be >= 2 (contrastive), got {self.batch_size}"),
            (self.chunk_size is None or self.chunk_size >= 1, "chunk_size must be >= 1"),
            (
                self.max_length is None or self.max_length >= 2,
                f"max_length must be >= 2, got {self.max_length}",
            ),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.eval_every >= 0, "eval_every must be >= 0"),
            (
                (self.data is None) != (self.datasets is None),
                "give exactly one of --data (one file) or --datasets (a TOML file of several)",
            ),
            (self.test_file is None or self.eval_file is not None, "--test needs --eval (dev chooses)"),
            (
                not self.eval_rerank or self.shape in (Shape.PAIRS, Shape.TRIPLETS),
                "--eval-rerank is for pairs or triplets runs (dev rows with their candidates' negatives)",
            ),
            (
                not self.eval_rerank or self.eval_corpus is None,
                "--eval-rerank ranks each query's own candidates; drop --eval-corpus",
            ),
            (self.lora_rank is None or self.lora_rank >= 1, f"lora_rank must be >= 1, got {self.lora_rank}"),
            (0 <= self.lora_dropout < 1, f"lora_dropout must be in [0, 1), got {self.lora_dropout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = (
                value.value
                if isinstance(value, Enum)
                else str(value)
                if isinstance(value, Path)
                else list(value)
                if isinstance(value, tuple)
                else value
            )
        return out

    # fields that may change between a run and its resume without changing the result
    RESUMABLE_CHANGES = frozenset(
        {
            "out",
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
            "progress",
            "eval_every",
            "eval_limit",
            "eval_tasks",
            "eval_data_dir",
            "eval_dev",
            "device",
            "test_file",
        }
    )


_FIELDS = {f.name: f for f in fields(TrainConfig)}
_PATHS = {"data", "out", "eval_data_dir", "eval_dev", "datasets", "eval_file", "eval_corpus", "test_file"}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file (keys as the CLI's long options, `-` or `_`), validated by name."""
    source = Path(path)
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {source} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    table = raw.get("train", raw)
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ValueError(f"{source}: unknown option {key!r}; known options: {known}")
        out[name] = value
    return out


def build_config(file_options: dict[str, Any], cli_options: dict[str, Any]) -> TrainConfig:
    """Defaults < config file < command line (only options given on the command line, i.e. not None)."""
    merged = {**file_options, **{k: v for k, v in cli_options.items() if v is not None}}
    for required in ("model", "out"):
        if required not in merged:
            raise ValueError(f"--{required} is required (on the command line or in the config file)")
    if merged.get("data") is None and merged.get("datasets") is None:
        raise ValueError("--data (one training file) or --datasets (a TOML file of several) is required")
    merged.setdefault("data", None)
    if merged.get("negative_field") is not None:
        value = merged["negative_field"]
        merged["negative_field"] = (value,) if isinstance(value, str) else tuple(value)
        if not merged["negative_field"]:
            merged["negative_field"] = None
    if "shape" in merged:
        merged["shape"] = Shape(merged["shape"])
    for key in _PATHS & merged.keys():
        if merged[key] is not None:
            merged[key] = Path(merged[key])
    if "loss" in merged:
        merged["loss"] = LossKind(merged["loss"])
    if "batch_sampler" in merged:
        merged["batch_sampler"] = BatchSampling(merged["batch_sampler"])
    return TrainConfig(**merged)


def replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    return dataclasses.replace(config, **changes)
