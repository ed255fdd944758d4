"""Command-line edge for training: `instructembed train` and `instructembed data build-medi`.

These are plain functions with typer `Annotated` options (each with an `INSTRUCTEMBED_*`
environment-variable twin); `instructembed.cli` registers them. Options left unset on the command
line fall back to `--config FILE.toml`, then to `TrainConfig`'s defaults. Run under torchrun for
several processes: `torchrun --nproc_per_node 2 -m instructembed train ...`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from instructembed.cli_options import friendly_errors
from instructembed.train.config import BatchSampling, LossKind, Shape
from instructembed.train.medi_tasks import HeldOut, Mixture

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[4] / "shared" / "data"


def _eval_fn(tasks: str, limit: int | None, data_dir: Path) -> Any:
    """Scores on a small held-out subset during training, through the evaluation package."""
    from instructembed.eval.runner import run

    def evaluate(embedder: Any) -> dict[str, float]:
        results = run(
            embedder, tasks.split(","), data_dir=data_dir, limit=limit, progress=False, resume=False
        )
        return {r.task: r.main_score for r in results}

    return evaluate


def _dev_fn(dev_file: Path, data_dir: Path, instructions: bool) -> Any:
    """Dev scores of training tasks (never a held-out test), see `train.dev_eval`."""
    from instructembed.train.dev_eval import dev_scores

    return lambda embedder: dev_scores(embedder, data_dir, dev_file, instructions=instructions)


@friendly_errors(
    interrupted=lambda kw: (
        f"interrupted; rerun with --resume to continue from the last checkpoint in {kw.get('out')}"
    )
)
def train_command(
    model: Annotated[
        str | None,
        typer.Option(
            help="Model to fine-tune: packaged name, directory or hub id.", envvar="INSTRUCTEMBED_TRAIN_MODEL"
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Training file: MEDI JSONL, or JSONL/CSV/TSV/parquet in the --shape you give.",
            envvar="INSTRUCTEMBED_TRAIN_DATA",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output directory (model/, train_log.jsonl, loss.png, checkpoints/).",
            envvar="INSTRUCTEMBED_TRAIN_OUT",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML file of these options (a [train] table or top level).",
            envvar="INSTRUCTEMBED_TRAIN_CONFIG",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue from the newest checkpoint in --out.", envvar="INSTRUCTEMBED_TRAIN_RESUME"
        ),
    ] = False,
    loss: Annotated[
        LossKind | None,
        typer.Option(help="instructor (INSTRUCTOR's) or in-batch.", envvar="INSTRUCTEMBED_TRAIN_LOSS"),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            help="Cosine temperature [0.05, the measured recipe; 0.01 collapses instructions].",
            envvar="INSTRUCTEMBED_TRAIN_TEMPERATURE",
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Peak learning rate [5e-6, the measured recipe].", envvar="INSTRUCTEMBED_TRAIN_LR"),
    ] = None,
    warmup_ratio: Annotated[
        float | None,
        typer.Option(
            help="Linear warmup share of all steps [0.1].", envvar="INSTRUCTEMBED_TRAIN_WARMUP_RATIO"
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Global batch (all processes), one task per batch [32].",
            envvar="INSTRUCTEMBED_TRAIN_BATCH_SIZE",
        ),
    ] = None,
    batch_sampler: Annotated[
        BatchSampling | None,
        typer.Option(
            help=(
                "random: shuffle, full batches, last partial one dropped. no-duplicates: no two rows "
                "sharing a query/positive text or a label in a batch (false negatives), every row once "
                "per epoch, a task's last batches smaller. [random; no-duplicates is to measure]"
            ),
            envvar="INSTRUCTEMBED_TRAIN_BATCH_SAMPLER",
        ),
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            help="Cached (GradCache) step: rows per forward; unset = plain step.",
            envvar="INSTRUCTEMBED_TRAIN_CHUNK_SIZE",
        ),
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(help="Max tokens per text [the model's].", envvar="INSTRUCTEMBED_TRAIN_MAX_LENGTH"),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs [1].", envvar="INSTRUCTEMBED_TRAIN_EPOCHS")
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Total steps (overrides --epochs).", envvar="INSTRUCTEMBED_TRAIN_MAX_STEPS"),
    ] = None,
    max_grad_norm: Annotated[
        float | None,
        typer.Option(help="Gradient clipping norm [1.0].", envvar="INSTRUCTEMBED_TRAIN_MAX_GRAD_NORM"),
    ] = None,
    bf16: Annotated[
        bool | None,
        typer.Option("--bf16/--no-bf16", help="bfloat16 autocast.", envvar="INSTRUCTEMBED_TRAIN_BF16"),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for batches and dropout [42].", envvar="INSTRUCTEMBED_TRAIN_SEED")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:1 ... [cpu].", envvar="INSTRUCTEMBED_TRAIN_DEVICE")
    ] = None,
    no_instructions: Annotated[
        bool | None,
        typer.Option(
            "--no-instructions/--instructions",
            help="Ablation: empty every instruction.",
            envvar="INSTRUCTEMBED_TRAIN_NO_INSTRUCTIONS",
        ),
    ] = None,
    skip_bad: Annotated[
        bool | None,
        typer.Option(
            "--skip-bad/--strict",
            help="Skip and count bad data lines.",
            envvar="INSTRUCTEMBED_TRAIN_SKIP_BAD",
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(help="Checkpoint every N steps [200].", envvar="INSTRUCTEMBED_TRAIN_CHECKPOINT_EVERY"),
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(help="Evaluate every N steps; 0 = never [0].", envvar="INSTRUCTEMBED_TRAIN_EVAL_EVERY"),
    ] = None,
    eval_tasks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated evaluation tasks [STSBenchmark].", envvar="INSTRUCTEMBED_TRAIN_EVAL_TASKS"
        ),
    ] = None,
    eval_limit: Annotated[
        int | None,
        typer.Option(help="Rows per evaluation task [200].", envvar="INSTRUCTEMBED_TRAIN_EVAL_LIMIT"),
    ] = None,
    eval_data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Data folder for evaluation [../shared/data].", envvar="INSTRUCTEMBED_TRAIN_EVAL_DATA_DIR"
        ),
    ] = None,
    eval_dev: Annotated[
        Path | None,
        typer.Option(
            help="Dev slice written by build-medi (medi.dev.jsonl): evaluate on dev data of the training "
            "tasks (STS-B dev, TrecQA dev, the slice) instead of --eval-tasks.",
            envvar="INSTRUCTEMBED_TRAIN_EVAL_DEV",
        ),
    ] = None,
    shape: Annotated[
        Shape | None,
        typer.Option(
            help="What --data (and --eval/--test) rows are: medi, pairs (query, positive), triplets "
            "(+ negative[s]), scored (text1, text2, score; CoSENT), labelled (text, label) [medi].",
            envvar="INSTRUCTEMBED_TRAIN_SHAPE",
        ),
    ] = None,
    query_field: Annotated[
        str | None,
        typer.Option(
            help="Column of the query (scored: text1) [query / text1].",
            envvar="INSTRUCTEMBED_TRAIN_QUERY_FIELD",
        ),
    ] = None,
    positive_field: Annotated[
        str | None,
        typer.Option(
            help="Column of the positive (scored: text2) [positive / text2].",
            envvar="INSTRUCTEMBED_TRAIN_POSITIVE_FIELD",
        ),
    ] = None,
    negative_field: Annotated[
        list[str] | None,
        typer.Option(
            help="Column(s) of negatives; repeat for several, or one column holding a list [negative].",
            envvar="INSTRUCTEMBED_TRAIN_NEGATIVE_FIELD",
        ),
    ] = None,
    score_field: Annotated[
        str | None,
        typer.Option(help="Column of the score [score].", envvar="INSTRUCTEMBED_TRAIN_SCORE_FIELD"),
    ] = None,
    label_field: Annotated[
        str | None,
        typer.Option(help="Column of the label [label].", envvar="INSTRUCTEMBED_TRAIN_LABEL_FIELD"),
    ] = None,
    text_field: Annotated[
        str | None,
        typer.Option(help="Column of a labelled text [text].", envvar="INSTRUCTEMBED_TRAIN_TEXT_FIELD"),
    ] = None,
    query_instruction: Annotated[
        str | None,
        typer.Option(
            help="Instruction for queries (and labelled texts) [none].",
            envvar="INSTRUCTEMBED_TRAIN_QUERY_INSTRUCTION",
        ),
    ] = None,
    document_instruction: Annotated[
        str | None,
        typer.Option(
            help="Instruction for positives and negatives [none].",
            envvar="INSTRUCTEMBED_TRAIN_DOCUMENT_INSTRUCTION",
        ),
    ] = None,
    query_instruction_field: Annotated[
        str | None,
        typer.Option(
            help="Column holding each row's query instruction.",
            envvar="INSTRUCTEMBED_TRAIN_QUERY_INSTRUCTION_FIELD",
        ),
    ] = None,
    document_instruction_field: Annotated[
        str | None,
        typer.Option(
            help="Column holding each row's document instruction.",
            envvar="INSTRUCTEMBED_TRAIN_DOCUMENT_INSTRUCTION_FIELD",
        ),
    ] = None,
    datasets: Annotated[
        Path | None,
        typer.Option(
            help="TOML file of several datasets ([[dataset]] path, shape, fields, instructions, weight), "
            "instead of --data.",
            envvar="INSTRUCTEMBED_TRAIN_DATASETS",
        ),
    ] = None,
    eval_file: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="Your dev file (same shape and flags as --data): scored before step 1, every --eval-every "
            "steps and at the end; the saved model is the best step on it (pairs/triplets: nDCG@10; "
            "scored: Spearman; labelled: probe accuracy).",
            envvar="INSTRUCTEMBED_TRAIN_EVAL",
        ),
    ] = None,
    eval_corpus: Annotated[
        Path | None,
        typer.Option(
            help="Corpus the --eval/--test queries search (JSONL/CSV/TSV/parquet --corpus-field, or .txt lines).",
            envvar="INSTRUCTEMBED_TRAIN_EVAL_CORPUS",
        ),
    ] = None,
    corpus_field: Annotated[
        str | None,
        typer.Option(help="Text column of --eval-corpus [text].", envvar="INSTRUCTEMBED_TRAIN_CORPUS_FIELD"),
    ] = None,
    test_file: Annotated[
        Path | None,
        typer.Option(
            "--test",
            help="Your test file: scored once, at the end, on the chosen model.",
            envvar="INSTRUCTEMBED_TRAIN_TEST",
        ),
    ] = None,
    eval_bf16: Annotated[
        bool | None,
        typer.Option(
            "--eval-bf16/--eval-fp32",
            help="Embed --eval/--test in bfloat16 (faster on CPUs with AMX; base and tuned alike).",
            envvar="INSTRUCTEMBED_TRAIN_EVAL_BF16",
        ),
    ] = None,
    eval_rerank: Annotated[
        bool | None,
        typer.Option(
            "--eval-rerank",
            help="Score --eval/--test as reranking: each query ranks only its own positives and negatives "
            "(the file's --negative-field), MAP (main) and MRR@10, as MTEB scores reranking tasks; needs "
            "triplet-shaped --eval/--test files and no --eval-corpus.",
            envvar="INSTRUCTEMBED_TRAIN_EVAL_RERANK",
        ),
    ] = None,
    keep_best: Annotated[
        bool | None,
        typer.Option(
            "--keep-best/--keep-last",
            help="Save the best --eval step's weights (default) or the last step's.",
            envvar="INSTRUCTEMBED_TRAIN_KEEP_BEST",
        ),
    ] = None,
    lora_rank: Annotated[
        int | None,
        typer.Option(
            help="LoRA adapters of this rank on the encoder (the [lora] extra), merged into the saved "
            "weights; unset = full fine-tuning.",
            envvar="INSTRUCTEMBED_TRAIN_LORA_RANK",
        ),
    ] = None,
    lora_alpha: Annotated[
        int | None, typer.Option(help="LoRA alpha [16].", envvar="INSTRUCTEMBED_TRAIN_LORA_ALPHA")
    ] = None,
    lora_dropout: Annotated[
        float | None, typer.Option(help="LoRA dropout [0].", envvar="INSTRUCTEMBED_TRAIN_LORA_DROPOUT")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch.", envvar="INSTRUCTEMBED_TRAIN_THREADS")
    ] = None,
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress", help="Progress bar with ETA.", envvar="INSTRUCTEMBED_TRAIN_PROGRESS"
        ),
    ] = True,
) -> None:
    """Fine-tune an embedder on your pairs, triplets, scored pairs, labelled texts or MEDI data.

    Defaults are the measured recipe (temperature 0.05, lr 5e-6, warm-up 0.1, batch 32); one task per
    batch; --eval/--test give a base-vs-tuned table (summary.json, model/README.md).
    """
    given = dict(locals())  # first statement: exactly the options
    from instructembed.train.config import build_config, load_toml
    from instructembed.train.distributed import init_from_torchrun
    from instructembed.train.loop import train

    options = {k: v for k, v in given.items() if k not in {"config", "resume", "threads"}}
    try:
        cfg = build_config(load_toml(config) if config else {}, options)
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    info = init_from_torchrun(cfg.device)
    if info.enabled and cfg.device.startswith("cuda"):
        from dataclasses import replace

        cfg = replace(cfg, device=f"cuda:{info.local_rank}")
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    eval_fn = None  # the MEDI-era dev scores; with --eval your own dev file is the one scored
    if cfg.eval_file is not None:
        pass
    elif cfg.eval_every and cfg.eval_dev is not None:
        eval_fn = _dev_fn(cfg.eval_dev, cfg.eval_data_dir or DEFAULT_DATA_DIR, not cfg.no_instructions)
    elif cfg.eval_every:
        eval_fn = _eval_fn(cfg.eval_tasks, cfg.eval_limit, cfg.eval_data_dir or DEFAULT_DATA_DIR)
    import shlex
    import sys

    command = "instructembed " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = train(cfg, resume=resume, dist_info=info, eval_fn=eval_fn, command=command)
    if info.is_main:
        typer.echo(
            f"trained {result.steps} steps, last loss {result.last_loss:.4f}; model in {result.model_dir}"
        )
        if result.scores is not None:
            from instructembed.train.tracking import before_after_table

            typer.echo(before_after_table(result.scores))
    if info.enabled:
        import torch.distributed as dist

        dist.destroy_process_group()


@friendly_errors(interrupted=lambda kw: f"interrupted; {kw.get('out')} was not written")
def build_medi_command(
    out: Annotated[Path, typer.Option(help="Output JSONL file.", envvar="INSTRUCTEMBED_MEDI_OUT")],
    data_dir: Annotated[
        Path, typer.Option(help="The shared data folder.", envvar="INSTRUCTEMBED_DATA_DIR")
    ] = DEFAULT_DATA_DIR,
    seed: Annotated[
        int, typer.Option(help="Seed for sampling and mining.", envvar="INSTRUCTEMBED_MEDI_SEED")
    ] = 42,
    max_per_task: Annotated[
        int, typer.Option(help="Examples kept per task.", envvar="INSTRUCTEMBED_MEDI_MAX_PER_TASK")
    ] = 3000,
    dev_per_task: Annotated[
        int,
        typer.Option(
            help="Examples per task held back as dev data.", envvar="INSTRUCTEMBED_MEDI_DEV_PER_TASK"
        ),
    ] = 32,
    label_share: Annotated[
        float,
        typer.Option(
            help="Most of the batches label-defined tasks may make.", envvar="INSTRUCTEMBED_MEDI_LABEL_SHARE"
        ),
    ] = 0.25,
    model: Annotated[
        str,
        typer.Option(
            help="Base model that pairs label-defined tasks by nearest neighbours.",
            envvar="INSTRUCTEMBED_MEDI_MODEL",
        ),
    ] = "all-MiniLM-L6-v2",
    mixture: Annotated[
        Mixture,
        typer.Option(
            help="Task list: v1 (the first study's 20 tasks) or wide (42 tasks, several over the same "
            "texts under different instructions).",
            envvar="INSTRUCTEMBED_MEDI_MIXTURE",
        ),
    ] = Mixture.V1,
    held_out: Annotated[
        HeldOut,
        typer.Option(
            help="What is decontaminated against: v1 (the 11 first held-out tasks' test texts) or wide "
            "(also the wider held-out set's, every sentence checked). v1 with --mixture v1 rebuilds the "
            "first study's mixture byte for byte.",
            envvar="INSTRUCTEMBED_MEDI_HELD_OUT",
        ),
    ] = HeldOut.WIDE,
) -> None:
    """Build the MEDI-style mixture (+ dev slice, symmetric/asymmetric halves, report) from the shared data."""
    from instructembed.train.medi_build import HELD_OUT, build_medi, sibling

    report = build_medi(
        data_dir,
        out,
        seed=seed,
        max_per_task=max_per_task,
        dev_per_task=dev_per_task,
        label_share=label_share,
        model=model,
        mixture=mixture,
        held_out=held_out,
    )
    typer.echo(f"{'task':<22} {'kind':<10} {'examples':>8} {'dev':>4} {'held-out drop':>13} {'dev drop':>8}")
    for name, s in report.tasks.items():
        kind = "label" if s.label_defined else "sym" if s.symmetric else "asym"
        typer.echo(
            f"{name:<22} {kind:<10} {s.kept:>8} {s.dev:>4} {s.dropped_held_out:>13} {s.dropped_dev:>8}"
        )
    typer.echo(
        f"{'total':<22} {'':<10} {report.kept:>8}; asymmetric {report.asymmetric_share():.1%} of examples, "
        f"label-defined {report.label_batch_share(32):.1%} of batches of 32"
    )
    wider = " + the wider held-out set" if report.held_out == "wide" else ""
    typer.echo(f"held out: {', '.join(HELD_OUT)}{wider} ({report.held_out_texts} distinct test texts)")
    files = ", ".join(f"{name} ({n})" for name, n in report.variants.items())
    typer.echo(f"wrote {files}; report in {sibling(out, 'report')}")


def _standalone() -> typer.Typer:
    """The two commands as their own app (for `python -m instructembed.train.cli` and tests)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True)
    app.command("train")(train_command)
    data = typer.Typer(no_args_is_help=True, help="Training data.")
    data.command("build-medi")(build_medi_command)
    from instructembed.train.mine_cli import mine_negatives_command

    data.command("mine-negatives")(mine_negatives_command)
    app.add_typer(data, name="data")
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _standalone()()
