"""The training loop: same-task batches, AdamW with linear warmup/decay, checkpoints, resume, logs.

    embedder = Embedder.load(model)            # the one forward path, now with gradients
    for step in range(start, total):           # every global batch is one task's
        rows of this rank -> plain or cached step (loss on the global batch) -> all-reduce grads
        -> clip -> AdamW -> scheduler;  log, checkpoint, evaluate every N steps
    embedder.save(out / "model")               # a directory `Embedder.load` reads

Outputs under `out`: `model/`, `train_log.jsonl` (one JSON object per logged step: step, epoch, task,
loss, lr, steps/s, examples/s), `loss.png`, `summary.json`, `checkpoints/`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from instructembed.embedder import Embedder
from instructembed.tokenize import InstructionTokenizer
from instructembed.train import checkpoints
from instructembed.train.config import BatchSampling, Shape, TrainConfig
from instructembed.train.data import MediExample, NoDuplicatesBatchSampler, TaskBatchSampler, local_slice
from instructembed.train.distributed import DistInfo, all_reduce_grads, barrier, broadcast_parameters
from instructembed.train.loss import LOSSES
from instructembed.train.step import StepInputs, cached_step, plain_step, tokenize_roles
from instructembed.train.user_data import Dataset, ScoredExample, TrainExample, batch_keys

log = logging.getLogger(__name__)

LOG_FILE = "train_log.jsonl"
MODEL_DIR = "model"

#: Called with the embedder (weights as trained so far, model in eval mode); returns metric -> value.
EvalFn = Callable[[Embedder], dict[str, float]]


@dataclass(frozen=True)
class TrainResult:
    out: Path
    model_dir: Path | None  # None when stopped early (stop_after) before the end
    steps: int  # global steps done
    last_loss: float
    wall_s: float
    scores: dict[str, Any] | None = None  # --eval / --test: base vs tuned (tracking.DevTracker.finish)


def git_commit() -> str | None:
    """The commit of the checkout holding this package; None for an installed copy (see its version)."""
    from instructembed.package_data import source_commit

    return source_commit()


def _check_out_dir(out: Path, resume: bool) -> None:
    if resume:
        return
    taken = [p for p in (out / MODEL_DIR, checkpoints.checkpoint_dir(out), out / LOG_FILE) if p.exists()]
    if taken:
        raise FileExistsError(
            f"{out} already holds a training run ({taken[0].name}); pass --resume to continue it "
            "or choose a new --out"
        )


def _trim_log(path: Path, last_step: int) -> None:
    """Drop log lines after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    keep = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= last_step
    ]
    path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


def _same_option(before: Any, now: Any) -> bool:
    """Equal, or two spellings of one existing path (`runs/medi.jsonl` vs `/work/x/runs/medi.jsonl`)."""
    if before == now:
        return True
    if isinstance(before, str) and isinstance(now, str) and before and now:
        a, b = Path(before), Path(now)
        return a.exists() and b.exists() and a.resolve() == b.resolve()
    return False


def _check_resumable(saved: dict[str, Any], config: TrainConfig) -> None:
    now = config.to_json()
    # an option added after the checkpoint was written counts as its default there
    defaults = {
        f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING
    }
    before = {**{k: _json_value(v) for k, v in defaults.items()}, **saved.get("config", {})}
    changed = sorted(
        k for k in now if k not in TrainConfig.RESUMABLE_CHANGES and not _same_option(before.get(k), now[k])
    )
    if changed:
        detail = ", ".join(f"{k}: {before.get(k)!r} -> {now[k]!r}" for k in changed)
        raise ValueError(
            f"cannot resume: options changed since the checkpoint ({detail}); "
            "resume with the same options or start a new --out"
        )


def _json_value(value: Any) -> Any:
    from enum import Enum

    return value.value if isinstance(value, Enum) else str(value) if isinstance(value, Path) else value


Sampler = TaskBatchSampler | NoDuplicatesBatchSampler


def total_steps(config: TrainConfig, sampler: Sampler) -> int:
    return config.max_steps if config.max_steps is not None else sampler.steps(config.epochs)


def make_sampler(
    config: TrainConfig,
    examples: list[MediExample | ScoredExample],
    weights: dict[str, float],
    world_size: int,
) -> Sampler:
    """The batch plan of `--batch-sampler`: a pure function of the data, seed and world size."""
    tasks = [e.task for e in examples]
    if config.batch_sampler is BatchSampling.NO_DUPLICATES:
        keys = [batch_keys(e) for e in examples]
        return NoDuplicatesBatchSampler(tasks, keys, config.batch_size, config.seed, weights, world_size)
    return TaskBatchSampler(tasks, config.batch_size, config.seed, weights)


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    dist_info: DistInfo | None = None,
    eval_fn: EvalFn | None = None,
    stop_after: int | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train `config.model` on `config.data`; `stop_after` ends the run after that global step
    (having checkpointed it), as if killed -- for tests of `resume`."""
    info = dist_info or DistInfo()
    out = Path(config.out)
    _check_out_dir(out, resume)
    if config.batch_size % info.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} must divide evenly over {info.world_size} processes"
        )
    torch.manual_seed(config.seed + info.rank)  # dropout differs per rank, reproducibly
    device = torch.device(config.device)

    embedder = Embedder.load(config.model, device=config.device)
    # every file (training, dev, test) is read and validated before the first step
    datasets = load_datasets(config, embedder)
    examples: list[MediExample | ScoredExample] = [e for d in datasets for e in d.examples]
    scored_tasks = {d.spec.task for d in datasets if d.scored}
    weights = {e.task: d.spec.weight for d in datasets for e in d.examples}
    sampler = make_sampler(config, examples, weights, info.world_size)
    n_steps = total_steps(config, sampler)
    tracker = _tracker(config, out)
    model = embedder.model
    if model is None:  # pragma: no cover - the torch backend always has one
        raise ValueError("training needs the torch backend")
    if config.lora_rank is not None:
        from instructembed.train.lora import apply_lora

        apply_lora(model, rank=config.lora_rank, alpha=config.lora_alpha, dropout=config.lora_dropout)
    model.to(device).train()
    broadcast_parameters(model, info)
    trainable = [p for p in model.parameters() if p.requires_grad]  # all of them unless LoRA
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    from transformers import get_linear_schedule_with_warmup

    warmup = math.ceil(config.warmup_ratio * n_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, n_steps)

    start = 0
    log_path = out / LOG_FILE
    resumed_best = None
    if resume:
        found = checkpoints.latest(out)
        if found is None:
            log.warning("--resume: no checkpoint in %s; starting from step 0", out)
            _check_out_dir(out, resume=False)
        else:
            restored = checkpoints.load(
                found, model=model, optimizer=optimizer, scheduler=scheduler, device=device, dist_info=info
            )
            _check_resumable(restored.state, config)
            saved_world = restored.state.get("world_size", info.world_size)
            if config.batch_sampler is BatchSampling.NO_DUPLICATES and saved_world != info.world_size:
                # the smaller last batches are cut to a multiple of the world size: another plan
                raise ValueError(
                    f"cannot resume: --batch-sampler no-duplicates plans batches for {saved_world} "
                    f"process(es), this run has {info.world_size}; resume with {saved_world}"
                )
            start = restored.step
            resumed_best = restored.state.get("best")
            if info.is_main:
                _trim_log(log_path, start)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        counts = _task_counts(examples)
        log.info(
            "%d examples in %d tasks (%d bad lines skipped); %d steps (global batch %d, %d process(es))",
            len(examples),
            len(counts),
            sum(d.n_skipped for d in datasets),
            n_steps,
            config.batch_size,
            info.world_size,
        )
        if isinstance(sampler, NoDuplicatesBatchSampler):
            sizes = [len(b) for _, b in sampler.epoch_plan(0)]
            log.info(
                "no-duplicates batches: %d in epoch 0, %d of them smaller than %d (smallest %d)",
                len(sizes),
                sum(n < config.batch_size for n in sizes),
                config.batch_size,
                min(sizes),
            )
    barrier(info)

    loss_fn = LOSSES[config.loss]
    step_fn = cached_step if config.chunk_size is not None else plain_step
    # Training truncates at --max-length with its own tokenizer; the saved model keeps the
    # checkpoint's max_seq_length (a training budget is not a property of the model).
    tokenizer = InstructionTokenizer(
        embedder.tokenizer.hf_tokenizer,
        config.max_length or embedder.max_seq_length,
        embedder.tokenizer.do_lower_case,
    )
    progress = None
    if info.is_main and config.progress:
        from tqdm.auto import tqdm

        progress = tqdm(total=n_steps, initial=start, unit="step", desc="training", dynamic_ncols=True)
    plan_epoch, plan = -1, []
    last_loss = float("nan")
    began = time.perf_counter()
    step = start
    with log_path.open("a", encoding="utf-8") if info.is_main else _NullFile() as log_file:
        if tracker is not None and info.is_main:
            base = tracker.start(embedder, resumed_best)
            if base is not None:
                log_file.write(json.dumps({"step": 0, "dev": base}) + "\n")
                log_file.flush()
        barrier(info)
        while step < n_steps:
            epoch, index = sampler.position(step)
            if epoch != plan_epoch:
                plan_epoch, plan = epoch, sampler.epoch_plan(epoch)
            task, indices = plan[index]
            rows = local_slice(indices, info.rank, info.world_size)
            t0 = time.perf_counter()
            inputs = _step_inputs(
                tokenizer, examples, rows, task in scored_tasks, epoch, config.seed, config.chunk_size
            )
            last_loss = step_fn(
                model, inputs, loss_fn, config.temperature, device=device, bf16=config.bf16, dist_info=info
            )
            all_reduce_grads(model, info)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seconds = time.perf_counter() - t0
            if info.is_main and (step % config.log_every == 0 or step == n_steps):
                record = {
                    "step": step,
                    "epoch": epoch,
                    "task": task,
                    "loss": round(last_loss, 6),
                    "lr": lr,
                    "grad_norm": round(float(grad_norm), 4),
                    "steps_per_s": round(1 / seconds, 4),
                    "examples_per_s": round(len(indices) / seconds, 2),
                    "elapsed_s": round(time.perf_counter() - began, 2),
                }
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            if progress is not None:
                progress.set_postfix(loss=f"{last_loss:.4f}", task=task[:20], refresh=False)
                progress.update(1)
            if (
                eval_fn is not None
                and config.eval_every
                and (step % config.eval_every == 0 or step == n_steps)
            ):
                if info.is_main:
                    model.eval()
                    scores = eval_fn(embedder)
                    model.train()
                    log_file.write(json.dumps({"step": step, "eval": scores}) + "\n")
                    log_file.flush()
                    log.info("step %d eval: %s", step, scores)
                barrier(info)
            if tracker is not None and (
                (config.eval_every and step % config.eval_every == 0) or step == n_steps
            ):
                if info.is_main:
                    dev = tracker.update(embedder, step)
                    log_file.write(json.dumps({"step": step, "dev": dev}) + "\n")
                    log_file.flush()
                    log.info("step %d dev: %s", step, dev)
                barrier(info)
            if step % config.checkpoint_every == 0 or step in (n_steps, stop_after):
                checkpoints.save(
                    out,
                    step,
                    model=model,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    state={
                        "epoch": epoch,
                        "index_in_epoch": index + 1,
                        "config": config.to_json(),
                        "world_size": info.world_size,
                        "best": tracker.state() if tracker is not None else None,
                    },
                    device=device,
                    dist_info=info,
                    keep=config.keep_checkpoints,
                )
            if stop_after is not None and step >= stop_after and step < n_steps:
                if progress is not None:
                    progress.close()
                return TrainResult(out, None, step, last_loss, time.perf_counter() - began)
    if progress is not None:
        progress.close()
    model.eval()
    model_dir = out / MODEL_DIR
    final: dict[str, Any] | None = None
    if info.is_main:
        if tracker is not None:
            final = tracker.finish(embedder, step, config.keep_best)
        if model_dir.exists():  # a resumed run that had already finished once
            import shutil

            shutil.rmtree(model_dir)
        if config.lora_rank is not None:
            from instructembed.train.lora import merge_lora

            merge_lora(model)
        embedder.save(model_dir)
        summary = _write_summary(
            out, config, step, last_loss, time.perf_counter() - began, datasets, examples, info, final
        )
        from instructembed.train.card import write_model_card

        write_model_card(model_dir, summary, datasets, command)
        _plot(out)
    barrier(info)
    return TrainResult(out, model_dir, step, last_loss, time.perf_counter() - began, final)


def _task_counts(examples: list[MediExample | ScoredExample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.task] = counts.get(example.task, 0) + 1
    return counts


def load_datasets(config: TrainConfig, embedder: Embedder) -> list[Dataset]:
    """Every training dataset of the run, read and validated (labelled texts paired by `embedder`)."""
    import numpy as np

    from instructembed.train.sources import dataset_specs
    from instructembed.train.user_data import read_dataset

    def embed(texts: list[str]) -> np.ndarray:  # the base model without instructions, unit rows
        vectors = embedder.embed(list(texts))
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    datasets = [
        read_dataset(
            spec,
            skip_bad=config.skip_bad,
            no_instructions=config.no_instructions,
            seed=config.seed,
            embed=embed,
        )
        for spec in dataset_specs(config)
    ]
    if not datasets or not any(d.examples for d in datasets):
        raise ValueError("no training examples in the given files")
    return datasets


def _tracker(config: TrainConfig, out: Path) -> Any:
    """The dev/test tracker for `--eval` / `--test` (both files validated now), or None."""
    if config.eval_file is None:
        return None
    from instructembed.train.sources import spec_for
    from instructembed.train.tracking import DevTracker
    from instructembed.train.user_eval import load_evaluator

    # held-out pairs need no negatives: a triplets run is scored on (query, positive) files too;
    # reranking needs them (they are the query's candidates besides its positives)
    shape: Shape = Shape.PAIRS if config.shape in (Shape.PAIRS, Shape.TRIPLETS) else config.shape
    if config.eval_rerank:
        shape = Shape.TRIPLETS
    dev = load_evaluator(
        spec_for(config, config.eval_file, shape), config.eval_corpus, config.corpus_field, config.eval_rerank
    )
    test = (
        load_evaluator(
            spec_for(config, config.test_file, shape),
            config.eval_corpus,
            config.corpus_field,
            config.eval_rerank,
        )
        if config.test_file is not None
        else None
    )
    return DevTracker(out, dev, test, bf16=config.eval_bf16)


def _step_inputs(
    tokenizer: InstructionTokenizer,
    examples: list[MediExample | ScoredExample],
    rows: Any,
    scored: bool,
    epoch: int,
    seed: int,
    chunk_size: int | None,
) -> StepInputs:
    """Tokenized roles of this rank's rows: (query, pos, neg) or, for scored pairs, (query, pos) + scores."""
    batch = [examples[int(i)] for i in rows]
    if scored:
        pairs = [e for e in batch if isinstance(e, ScoredExample)]
        roles = {"query": [e.text1 for e in pairs], "pos": [e.text2 for e in pairs]}
        return tokenize_roles(tokenizer, roles, chunk_size, [e.score for e in pairs])
    triples = [e for e in batch if isinstance(e, MediExample)]
    negatives = [
        e.negative_for(epoch, seed, int(i)) if isinstance(e, TrainExample) else e.neg
        for e, i in zip(triples, rows, strict=True)
    ]
    roles = {"query": [e.query for e in triples], "pos": [e.pos for e in triples], "neg": negatives}
    return tokenize_roles(tokenizer, roles, chunk_size)


def _write_summary(
    out: Path,
    config: TrainConfig,
    steps: int,
    last_loss: float,
    wall_s: float,
    datasets: list[Dataset],
    examples: list[MediExample | ScoredExample],
    info: DistInfo,
    scores: dict[str, Any] | None,
) -> dict[str, Any]:
    import hashlib

    summary = {
        "config": config.to_json(),
        "steps": steps,
        "last_loss": last_loss,
        "wall_s_this_session": round(wall_s, 1),
        "world_size": info.world_size,
        "data_sha256": {
            str(d.spec.path): hashlib.sha256(d.spec.path.read_bytes()).hexdigest() for d in datasets
        },
        "datasets": [
            {
                "path": str(d.spec.path),
                "shape": d.spec.shape.value,
                "task": d.spec.task,
                "weight": d.spec.weight,
                "examples": len(d.examples),
                "skipped": d.n_skipped,
            }
            for d in datasets
        ],
        "tasks": _task_counts(examples),
        "scores": scores,
        "git_commit": git_commit(),
        "torch": torch.__version__,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _plot(out: Path) -> None:
    from instructembed.train.plot import plot_loss

    try:
        plot_loss(out / LOG_FILE, out / "loss.png")
    except ImportError:
        log.warning("matplotlib is not installed: no loss.png (install the [train] extra)")


class _NullFile:
    """Stands in for the log file on ranks other than 0."""

    def __enter__(self) -> _NullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None
