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

`NoDuplicatesBatchSampler` (`train --batch-sampler no-duplicates`) keeps those rules and also keeps
rows that belong together out of one batch: rows sharing a query or positive text (a question with
several answers), or a label (labelled texts). In a contrastive batch such rows are false negatives
for each other. It is sentence-transformers' `NoDuplicatesBatchSampler` per task: walk the shuffled
rows, skip a row whose key is already in the batch (it waits for a later batch), and use every row
exactly once per epoch -- so the last batches of a task may be smaller than the global batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
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

    def steps(self, epochs: int) -> int:
        """Global steps in the first `epochs` epochs."""
        return epochs * self.batches_per_epoch


def no_duplicate_batches(
    order: Iterable[int], keys: Sequence[Iterable[str]], batch: int, multiple_of: int = 1
) -> tuple[list[list[int]], list[int]]:
    """Rows in `order` cut into batches with no key twice in a batch: (batches, rows left out).

    sentence-transformers' `NoDuplicatesBatchSampler` loop: each batch takes the remaining rows in
    order, skipping a row that shares a key with a row already taken (it stays for a later batch),
    until it holds `batch` rows. When the remaining rows cannot fill a batch, it is smaller: every
    row is used once. A batch that is not full is cut to a multiple of `multiple_of` (the number of
    processes, which split it evenly); the rows cut stay for the next batch, and only rows that can
    never make such a batch (fewer than `multiple_of` distinct keys left) are left out.

    Instead of rescanning the remaining rows from the start for every batch, rows skipped so far wait
    in `waiting` (in order, all before the rows not yet scanned): the same batches, one scan.
    """
    if batch < 1 or multiple_of < 1:
        raise ValueError(f"batch and multiple_of must be >= 1, got {batch}, {multiple_of}")
    rows = list(order)
    key_sets = [frozenset(keys[i]) for i in rows]
    waiting: list[int] = []  # positions in `rows`, skipped by an earlier batch
    cursor = 0  # rows[cursor:] never scanned
    batches: list[list[int]] = []
    while waiting or cursor < len(rows):
        taken: list[int] = []
        seen: set[str] = set()
        still: list[int] = []
        full = False
        for at in waiting:
            if full or key_sets[at] & seen:
                still.append(at)
                continue
            taken.append(at)
            seen |= key_sets[at]
            full = len(taken) == batch
        while not full and cursor < len(rows):
            at, cursor = cursor, cursor + 1
            if key_sets[at] & seen:
                still.append(at)
                continue
            taken.append(at)
            seen |= key_sets[at]
            full = len(taken) == batch
        if not full:
            keep = len(taken) - len(taken) % multiple_of
            # cut rows go back in their place in the order: before every row skipped after them
            still = sorted(still + taken[keep:])
            taken = taken[:keep]
            if not taken:
                return batches, [rows[at] for at in still]
        batches.append([rows[at] for at in taken])
        waiting = still
    return batches, []


class NoDuplicatesBatchSampler:
    """One-task batches in which no two rows share a key; every row once per epoch.

    `keys[i]` are row i's keys (its query and positive text, or its label); rows sharing any key never
    meet in a batch. Per task and epoch: a seeded permutation of the task's rows cut by
    `no_duplicate_batches`. A task's last batches may be smaller than `global_batch` (the rows the
    earlier batches had to skip), so the number of batches can differ between epochs; `position`
    and `steps` account for it. With several processes, a smaller batch is cut to a multiple of
    `multiple_of` (the world size); the few rows that cannot be placed are left out that epoch.

    Weights as in `TaskBatchSampler`: a task gets round(w x the batches of one pass) batches per
    epoch, taken from successive passes (each a fresh permutation); weight 1 = exactly one pass.
    Tasks with fewer rows than one batch are left out, as there.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        keys: Sequence[Sequence[str]],
        global_batch: int,
        seed: int,
        weights: Mapping[str, float] | None = None,
        multiple_of: int = 1,
    ) -> None:
        if len(keys) != len(tasks):
            raise ValueError(f"one key tuple per row: {len(keys)} for {len(tasks)} rows")
        if global_batch % multiple_of:
            raise ValueError(f"the global batch {global_batch} must divide over {multiple_of} processes")
        # the task selection and weights of the random sampler, so both read a run's data alike
        base = TaskBatchSampler(tasks, global_batch, seed, weights)
        self.global_batch, self.seed, self.multiple_of = global_batch, seed, multiple_of
        self.tasks, self.weights = base.tasks, base.weights
        self.keys = [tuple(k) for k in keys]
        self._lengths: dict[int, int] = {}

    def _task_batches(self, rows: np.ndarray, weight: float, rng: np.random.Generator) -> list[np.ndarray]:
        def one_pass() -> list[np.ndarray]:
            order = rows[rng.permutation(len(rows))].tolist()
            cut, left = no_duplicate_batches(order, self.keys, self.global_batch, self.multiple_of)
            if left:
                log.debug(
                    "%d row(s) left out of a pass: fewer than %d distinct keys", len(left), self.multiple_of
                )
            return [np.asarray(b, dtype=np.int64) for b in cut]

        batches = one_pass()
        wanted = max(1, round(weight * len(batches)))
        while len(batches) < wanted:  # more passes over a task weighted above 1
            batches.extend(one_pass())
        return batches[:wanted]

    def epoch_plan(self, epoch: int) -> list[tuple[str, np.ndarray]]:
        """[(task, indices)] for `epoch`, a pure function of (seed, epoch), identical on every rank."""
        rng = np.random.default_rng([self.seed, epoch])
        plan: list[tuple[str, np.ndarray]] = []
        for task, rows in self.tasks.items():
            plan.extend((task, b) for b in self._task_batches(rows, self.weights[task], rng))
        order = rng.permutation(len(plan))
        self._lengths[epoch] = len(plan)
        return [plan[i] for i in order]

    def epoch_length(self, epoch: int) -> int:
        if epoch not in self._lengths:
            self.epoch_plan(epoch)
        return self._lengths[epoch]

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch index within the epoch) of global step `step` (0-based)."""
        epoch = 0
        while step >= self.epoch_length(epoch):
            step -= self.epoch_length(epoch)
            epoch += 1
        return epoch, step

    def steps(self, epochs: int) -> int:
        """Global steps in the first `epochs` epochs."""
        return sum(self.epoch_length(e) for e in range(epochs))


def local_slice(indices: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's contiguous share of a global batch (the global batch divides evenly)."""
    per_rank = len(indices) // world_size
    return indices[rank * per_rank : (rank + 1) * per_rank]
