"""`instructembed eval`: run evaluation tasks and write per-task JSON plus a summary.

Registered by the root CLI with `app.command("eval")(eval_command)`. Every option has an
`INSTRUCTEMBED_...` environment twin.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from instructembed.cli_options import BackendOpt, DtypeOpt, QuantizeOpt, friendly_errors

__all__ = ["eval_command"]


@friendly_errors(
    interrupted=lambda kw: f"interrupted; finished tasks are in {kw.get('out')} (rerun to resume)"
)
def eval_command(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", envvar="INSTRUCTEMBED_MODEL", help="Packaged name, local directory or hub id."
        ),
    ] = "all-MiniLM-L6-v2",
    tasks: Annotated[
        str,
        typer.Option(
            "--tasks",
            "-t",
            envvar="INSTRUCTEMBED_EVAL_TASKS",
            help="Comma-separated task names, task types (e.g. STS) or 'all'. See --list-tasks.",
        ),
    ] = "all",
    instructions: Annotated[
        str,
        typer.Option(
            "--instructions",
            envvar="INSTRUCTEMBED_EVAL_INSTRUCTIONS",
            help="'instructor-large' (or -base, -xl: the packaged tables), 'none' (bare texts) or a JSON file "
            "of the same shape.",
        ),
    ] = "instructor-large",
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", envvar="INSTRUCTEMBED_EVAL_OUT", help="Folder for <task>.json and summary.*"
        ),
    ] = Path("eval-results"),
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir", envvar="INSTRUCTEMBED_DATA_DIR", help="The shared data folder (raw files)."
        ),
    ] = Path("../shared/data"),
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            envvar="INSTRUCTEMBED_EVAL_LIMIT",
            min=1,
            help="Evaluate N evenly spaced items per task (smoke runs).",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume",
            envvar="INSTRUCTEMBED_EVAL_RESUME",
            help="Reuse finished task results in --out.",
        ),
    ] = True,
    dimensions: Annotated[
        list[int] | None,
        typer.Option(
            "--dimensions",
            envvar="INSTRUCTEMBED_EVAL_DIMENSIONS",
            min=1,
            help="Score vectors truncated to D coordinates and renormalized (repeatable: each text is "
            "embedded once, results go to OUT/dim-D/).",
        ),
    ] = None,
    lm: Annotated[
        str | None,
        typer.Option(
            "--lm",
            envvar="INSTRUCTEMBED_EVAL_LM",
            help="Prompt retrieval's language model: a local Hugging Face causal-LM directory, or the base "
            "URL (http://host:port/v1) of an OpenAI-compatible completions endpoint. Without it, prompt "
            "retrieval reports the retrieval side only.",
        ),
    ] = None,
    lm_model: Annotated[
        str | None,
        typer.Option(
            "--lm-model", envvar="INSTRUCTEMBED_EVAL_LM_MODEL", help="The model name an --lm endpoint serves."
        ),
    ] = None,
    lm_api_key: Annotated[
        str | None,
        typer.Option(
            "--lm-api-key", envvar="INSTRUCTEMBED_EVAL_LM_API_KEY", help="Bearer token for an --lm endpoint."
        ),
    ] = None,
    budget_tokenizer: Annotated[
        Path | None,
        typer.Option(
            "--budget-tokenizer",
            envvar="INSTRUCTEMBED_EVAL_BUDGET_TOKENIZER",
            help="Tokenizer directory that counts prompt-retrieval budgets (the paper: GPT-2's). Default: "
            "a local --lm's own tokenizer, else the packaged MiniLM WordPiece tokenizer.",
        ),
    ] = None,
    backend: BackendOpt = None,
    quantize: QuantizeOpt = None,
    dtype: DtypeOpt = None,
    list_tasks: Annotated[bool, typer.Option("--list-tasks", help="Print the known tasks and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", envvar="INSTRUCTEMBED_VERBOSE")] = False,
) -> None:
    """Evaluate a model on MTEB-style tasks and the INSTRUCTOR paper's Billboard and prompt-retrieval tasks."""
    from instructembed.eval.report import write_summary
    from instructembed.eval.runner import TaskResult, run
    from instructembed.eval.tasks import LOCAL_TASKS, resolve_tasks

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if list_tasks:
        for task in LOCAL_TASKS:
            typer.echo(f"{task.name:30} {task.type.value:20} {task.description}")
        return
    from instructembed.embedder import Embedder
    from instructembed.eval.encoder import Encoder, MemoEncoder, TruncatedEncoder

    selected = resolve_tasks(tasks)
    loaded = Embedder.load(model, backend=backend, quantize=quantize, dtype=dtype)
    described = _describe(model, _backend_name(loaded, backend), quantize, dtype)
    for d in dimensions or []:
        if d > loaded.dimension:
            raise typer.BadParameter(
                f"--dimensions {d} is more than {model}'s {loaded.dimension}; ask for at most that"
            )
    language_model = None
    if lm:
        from instructembed.eval.lm import open_lm

        language_model = open_lm(lm, model=lm_model, api_key=lm_api_key)

    def show(result: TaskResult) -> None:
        typer.echo(
            f"{result.task:30} {result.main_score_name:16} {result.main_score:6.2f}   {result.wall_time_s:7.1f}s"
        )

    shared = MemoEncoder(loaded) if dimensions else None
    runs: list[tuple[Encoder, str, Path]] = (
        [(loaded, described, out)]
        if not dimensions
        else [(TruncatedEncoder(shared, d), f"{described} @{d}d", out / f"dim-{d}") for d in dimensions]  # type: ignore[arg-type]
    )
    for encoder, name, folder in runs:
        if dimensions:
            typer.echo(f"--- {name} -> {folder}")
        results = run(
            encoder,
            selected,
            data_dir=data_dir,
            instructions=instructions,
            limit=limit,
            model_name=name,
            out_dir=folder,
            command=shlex.join(["instructembed", *sys.argv[1:]]),
            on_result=show,
            resume=resume,
            lm=language_model,
            budget_tokenizer=budget_tokenizer,
        )
        md, png = write_summary(results, folder)
        total = sum(r.wall_time_s for r in results)
        typer.echo(f"{len(results)} task(s), {total:.1f}s; summary: {md}, chart: {png}")


def _backend_name(encoder: object, asked: str | None) -> str:
    """The backend that was loaded (an export picks its own when none is asked for)."""
    loaded = getattr(getattr(encoder, "backend", None), "name", None)
    return str(loaded or asked or "torch")


def _describe(model: str, backend: str, quantize: str | None, dtype: str | None) -> str:
    """The model name results are filed under, with the backend when it is not plain torch fp32."""
    extras = [x for x in (quantize, dtype) if x]
    if backend == "torch" and not extras:
        return model
    return f"{model} ({' '.join([backend, *extras])})"
