"""MEDI-format training data and the one-task-per-batch sampler.

A MEDI file has one JSON object per line:
``{"query": [instruction, text], "pos": [instruction, text], "neg": [instruction, text], "task_name": "..."}``
(older INSTRUCTOR code calls the task `task_id`; both are accepted). Lines are validated as they are
read: a bad line raises `InputFileError` naming the file and line, or -- with `skip_bad=True` -- is
skipped and counted.

Sampling follows INSTRUCTOR: every batch holds examples of one task only, and the batches of all
tasks are shuffled together. Unlike INSTRUCTOR (fixed consecutive chunks of the file), examples are
shuffled within their task every epoch. The plan for an epoch is a pure function of (seed, epoch),
so every rank computes the same plan -- all ranks train on the same task at each step, each on its
own slice of the global batch -- and a resumed run only needs the step number to continue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instructembed.errors import InputFileError
from instructembed.inputs import Item

log = logging.getLogger(__name__)

ROLES = ("query", "pos", "neg")


@dataclass(frozen=True)
class MediExample:
    query: Item
    pos: Item
    neg: Item
    task: str

    def role(self, name: str) -> Item:
        return {"query": self.query, "pos": self.pos, "neg": self.neg}[name]


@dataclass(frozen=True)
class MediData:
    examples: tuple[MediExample, ...]
    n_skipped: int  # bad lines skipped (only with skip_bad=True)

    def task_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for example in self.examples:
            counts[example.task] = counts.get(example.task, 0) + 1
        return counts


def _pair(record: dict[str, object], key: str) -> Item:
    value = record.get(key)
    if value is None:
        raise ValueError(f'missing "{key}"; every line needs "query", "pos" and "neg"')
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f'"{key}" must be a list [instruction, text], got {type(value).__name__}')
    instruction, text = value
    if not isinstance(instruction, str) or not isinstance(text, str):
        raise ValueError(f'"{key}" must hold two strings [instruction, text]')
    if not text.strip():
        raise ValueError(f'"{key}" has an empty text')
    return Item(instruction, text)


def parse_line(line: str) -> MediExample:
    """One MEDI line -> `MediExample`; raises ValueError saying what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    task = record.get("task_name", record.get("task_id"))
    if isinstance(task, int) and not isinstance(task, bool):
        task = str(task)
    if not isinstance(task, str) or not task:
        raise ValueError('missing "task_name" (or the older "task_id"): a non-empty string')
    return MediExample(_pair(record, "query"), _pair(record, "pos"), _pair(record, "neg"), task)


def read_medi(path: str | Path, *, skip_bad: bool = False, no_instructions: bool = False) -> MediData:
    """Read a MEDI JSONL file. `no_instructions` empties every instruction (the paper's ablation)."""
    source = Path(path)
    if not source.is_file():
        raise InputFileError(
            f"{source}: training file not found; build one with `instructembed data build-medi`"
        )
    examples: list[MediExample] = []
    skipped = 0
    with source.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                example = parse_line(line)
            except ValueError as exc:
                if not skip_bad:
                    raise InputFileError(
                        f"{source}:{number}: {exc}; fix the line, or pass --skip-bad to skip bad lines"
                    ) from None
                skipped += 1
                log.debug("%s:%d skipped: %s", source, number, exc)
                continue
            if no_instructions:
                example = MediExample(
                    Item("", example.query.text),
                    Item("", example.pos.text),
                    Item("", example.neg.text),
                    example.task,
                )
            examples.append(example)
    if skipped:
        log.warning("%s: skipped %d bad line(s)", source, skipped)
    if not examples:
        raise InputFileError(f"{source}: no training examples in the file")
    return MediData(tuple(examples), skipped)


class TaskBatchSampler:
    """Global batches of `global_batch` example indices, each from a single task.

    Tasks with fewer examples than one batch are left out (with a warning); a task's last partial
    batch is dropped each epoch (it is a different one every epoch, since examples are reshuffled).
    """

    def __init__(
        self,
        tasks: Sequence[str],
        global_batch: int,
        seed: int,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        if global_batch < 2:
            raise ValueError(
                f"the global batch must hold at least 2 examples (contrastive), got {global_batch}"
            )
        self.global_batch = global_batch
        self.seed = seed
        by_task: dict[str, list[int]] = {}
        for index, task in enumerate(tasks):
            by_task.setdefault(task, []).append(index)
        small = sorted(t for t, rows in by_task.items() if len(rows) < global_batch)
        if small:
            log.warning("tasks with fewer than %d examples are left out: %s", global_batch, ", ".join(small))
        # sorted task names: the plan must not depend on file order details beyond the indices
        self.tasks = {
            t: np.asarray(rows, dtype=np.int64) for t, rows in sorted(by_task.items()) if t not in small
        }
        if not self.tasks:
            raise ValueError(f"no task has {global_batch} examples; lower the batch size")
        # weight w: round(w x full batches) of the task per epoch (at least one); 1 = each example once
        self.weights = {t: float((weights or {}).get(t, 1.0)) for t in self.tasks}
        self.n_batches = {
            t: max(1, round(self.weights[t] * (len(rows) // global_batch))) for t, rows in self.tasks.items()
        }
        self.batches_per_epoch = sum(self.n_batches.values())

    def epoch_plan(self, epoch: int) -> list[tuple[str, np.ndarray]]:
        """[(task, (global_batch,) indices)] for `epoch`, identical on every rank."""
        rng = np.random.default_rng([self.seed, epoch])
        plan: list[tuple[str, np.ndarray]] = []
        for task, rows in self.tasks.items():
            batches: list[np.ndarray] = []
            while len(batches) < self.n_batches[task]:  # more passes over a task weighted above 1
                shuffled = rows[rng.permutation(len(rows))]
                for start in range(0, len(shuffled) - self.global_batch + 1, self.global_batch):
                    batches.append(shuffled[start : start + self.global_batch])
            plan.extend((task, b) for b in batches[: self.n_batches[task]])
        order = rng.permutation(len(plan))
        return [plan[i] for i in order]

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch index within the epoch) of global step `step` (0-based)."""
        return divmod(step, self.batches_per_epoch)


def local_slice(indices: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's contiguous share of a global batch (the global batch divides evenly)."""
    per_rank = len(indices) // world_size
    return indices[rank * per_rank : (rank + 1) * per_rank]
