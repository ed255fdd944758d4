"""Run tasks through an encoder and write one JSON result per task, with provenance.

`run(encoder, tasks)` is the Python entry point; the CLI's `eval` command is a thin shell over it.
Each task gets a fresh `CachingEncoder`, so every distinct (instruction, text) is embedded once per
task. Results carry the scores per split, the main score (x100, two decimals, as MTEB's
leaderboard shows it), the instructions used, model, data fingerprint, instructembed version, git
commit (when run from a checkout) and wall time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from instructembed.package_data import package_version, source_commit

from .billboard import evaluate_billboard
from .classification import evaluate_classification
from .clustering import evaluate_clustering
from .encoder import CachingEncoder, Encoder
from .instructions import Instructions, load_instructions
from .lm import LanguageModel, TokenCounter, budget_counter
from .loaders import files_for, load_local
from .pair_classification import evaluate_pair_classification
from .prompt_retrieval import evaluate_prompt_retrieval
from .records import (
    BillboardData,
    ClassificationData,
    ClusteringData,
    PairData,
    PromptRetrievalData,
    RerankingData,
    RetrievalData,
    STSData,
    SummarizationData,
    TaskData,
)
from .reranking import evaluate_reranking
from .retrieval import evaluate_retrieval
from .sts import evaluate_sts
from .summarization import evaluate_summarization
from .tasks import Task, TaskType, get_task

__all__ = ["TaskResult", "data_fingerprint", "git_commit", "load_task_data", "run", "score_task"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskResult:
    """One task's outcome; `to_json()` is what lands in `<out>/<task>.json`."""

    task: str
    type: str
    description: str
    mteb_name: str | None
    main_score_name: str
    main_score: float  # x100, two decimals
    scores: dict[str, dict[str, float]]  # split -> metric -> raw value in [0, 1] (or [-1, 1])
    instructions: dict[str, str | None]  # role -> instruction
    instructions_source: str
    model: str
    data_fingerprint: str
    git_commit: str | None
    wall_time_s: float
    texts_embedded: int
    limit: int | None = None
    command: str | None = None
    notes: list[str] = field(default_factory=list)
    instructembed_version: str | None = None  # results written by older code lack it
    language_model: str | None = None  # prompt retrieval's LM (None: none ran, or another task type)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def git_commit() -> str | None:
    """The commit of the checkout holding this package; None for an installed package (see its version)."""
    return source_commit()


def data_fingerprint(paths: Sequence[Path]) -> str:
    """sha256 over (file name, bytes) of every data file, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return "sha256:" + digest.hexdigest()


def load_task_data(task: Task, data_dir: Path, split: str) -> tuple[TaskData, str]:
    """(data, fingerprint) from the local files or, when `task.hub` is set, the Hugging Face hub."""
    if task.hub is not None:
        from .hub import load_hub

        return load_hub(task, split), f"hf:{task.hub.path}@{task.hub.revision}"
    return load_local(task.source, data_dir), data_fingerprint(files_for(task.source, data_dir))


def score_task(
    encoder: CachingEncoder,
    task: Task,
    data: TaskData,
    instr: dict[str, str | None],
    *,
    lm: LanguageModel | None = None,
    counter: TokenCounter | None = None,
) -> dict[str, float]:
    """Dispatch to the scorer of `task.type`; checks the data matches the type.

    Prompt retrieval also takes the language model (None: retrieval-side scores only) and the token
    counter for its budget (None: `budget_counter`'s default).
    """
    query, document = instr.get("query"), instr.get("corpus")

    def prompt_retrieval(d: PromptRetrievalData) -> dict[str, float]:
        count = counter if counter is not None else budget_counter(None, lm)[0]
        return evaluate_prompt_retrieval(encoder, d, query, count, lm)

    scorers: dict[TaskType, tuple[type, Callable[..., dict[str, float]]]] = {
        TaskType.STS: (STSData, lambda d: evaluate_sts(encoder, d, query)),
        TaskType.PAIR_CLASSIFICATION: (PairData, lambda d: evaluate_pair_classification(encoder, d, query)),
        TaskType.CLASSIFICATION: (ClassificationData, lambda d: evaluate_classification(encoder, d, query)),
        TaskType.CLUSTERING: (ClusteringData, lambda d: evaluate_clustering(encoder, d, query)),
        TaskType.RERANKING: (RerankingData, lambda d: evaluate_reranking(encoder, d, query, document)),
        TaskType.RETRIEVAL: (RetrievalData, lambda d: evaluate_retrieval(encoder, d, query, document)),
        TaskType.SUMMARIZATION: (SummarizationData, lambda d: evaluate_summarization(encoder, d, query)),
        TaskType.BILLBOARD: (BillboardData, lambda d: evaluate_billboard(encoder, d, query)),
        TaskType.PROMPT_RETRIEVAL: (PromptRetrievalData, prompt_retrieval),
    }
    kind, scorer = scorers[task.type]
    if not isinstance(data, kind):
        raise TypeError(
            f"task {task.name} is {task.type.value} but its loader returned {type(data).__name__}"
        )
    return scorer(data)


def run(
    encoder: Encoder,
    tasks: Sequence[Task | str],
    *,
    data_dir: Path | str,
    instructions: Instructions | str = "instructor-large",
    limit: int | None = None,
    model_name: str = "unknown",
    out_dir: Path | None = None,
    command: str | None = None,
    progress: bool = True,
    on_result: Callable[[TaskResult], None] | None = None,
    resume: bool = True,
    lm: LanguageModel | None = None,
    budget_tokenizer: str | Path | None = None,
) -> list[TaskResult]:
    """Evaluate `encoder` on `tasks`; write `<out_dir>/<task>.json` per task when `out_dir` is given.

    A task whose result file already exists in `out_dir` with the same model, limit and instructions
    is skipped and its stored result reused, so an interrupted run resumes where it stopped.
    `lm` and `budget_tokenizer` matter only to prompt-retrieval tasks (see `lm.budget_counter`).
    """
    if not isinstance(encoder, Encoder):
        raise TypeError(f"{type(encoder).__name__} has no embed(inputs) method; evaluation needs one")
    table = instructions if isinstance(instructions, Instructions) else load_instructions(instructions)
    resolved = [get_task(t) if isinstance(t, str) else t for t in tasks]
    commit = git_commit()
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    results: list[TaskResult] = []
    counter: tuple[TokenCounter, str] | None = None
    for task in tqdm(resolved, desc="tasks", unit="task", disable=not progress):
        lm_name = lm.name if lm is not None and task.type is TaskType.PROMPT_RETRIEVAL else None
        previous = _resume(out_dir, task, model_name, limit, table.name, lm_name) if resume else None
        if previous is not None:
            logger.info("%s: reusing %s", task.name, Path(out_dir or ".") / f"{task.name}.json")
            results.append(previous)
            continue
        start = time.perf_counter()
        instr = table.for_task(task)
        cached = CachingEncoder(encoder)
        scores: dict[str, dict[str, float]] = {}
        fingerprint = ""
        notes = []
        if task.type is TaskType.PROMPT_RETRIEVAL and counter is None:
            counter = budget_counter(budget_tokenizer, lm)
        for split in task.splits:
            data, fingerprint = load_task_data(task, Path(data_dir), split)
            scores[split] = score_task(
                cached, task, data.limited(limit), instr, lm=lm, counter=counter[0] if counter else None
            )
        main_name = task.main_score
        if main_name not in scores[task.splits[0]] and task.proxy_score is not None:
            main_name = task.proxy_score
            notes.append(
                f"no language model (--lm): main score is the retrieval side's own {main_name}, "
                f"not the paper's {task.main_score}"
            )
        main = scores[task.splits[0]][main_name]
        if task.type is TaskType.PROMPT_RETRIEVAL and counter is not None:
            notes.append(f"token budget counted with {counter[1]}")
        if task.main == "mteb_v1_cosine_spearman":
            notes.append(
                "main score = MTEB's original SummEval evaluator (mean over (statistic, p-value) pairs, "
                "mteb issue 1156), the number MTEB and the paper publish; cosine_spearman is the corrected one"
            )
        if task.type is TaskType.SUMMARIZATION and "ReferenceFree" in task.name:
            notes.append(
                "reference-free variant: cosine(summary, source article), not MTEB's SummEval protocol"
            )
        result = TaskResult(
            task=task.name,
            type=task.type.value,
            description=task.description,
            mteb_name=task.mteb_name,
            main_score_name=main_name,
            main_score=round(100 * main, 2),
            scores=scores,
            instructions=instr,
            instructions_source=table.name,
            model=model_name,
            data_fingerprint=fingerprint,
            git_commit=commit,
            wall_time_s=round(time.perf_counter() - start, 2),
            texts_embedded=cached.embedded,
            limit=limit,
            command=command,
            notes=notes,
            instructembed_version=package_version(),
            language_model=lm.name if lm is not None and task.type is TaskType.PROMPT_RETRIEVAL else None,
        )
        logger.info(
            "%s: %s = %.2f (%.1fs)", task.name, task.main_score, result.main_score, result.wall_time_s
        )
        if out_dir is not None:
            path = Path(out_dir) / f"{task.name}.json"
            path.write_text(
                json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


def _resume(
    out_dir: Path | None, task: Task, model: str, limit: int | None, instr_name: str, lm_name: str | None
) -> TaskResult | None:
    if out_dir is None:
        return None
    path = Path(out_dir) / f"{task.name}.json"
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        same = (
            stored["model"],
            stored["limit"],
            stored["instructions_source"],
            stored.get("language_model"),
        ) == (
            model,
            limit,
            instr_name,
            lm_name,
        )
        return TaskResult(**stored) if same else None
    except (ValueError, KeyError, TypeError):
        logger.warning("%s is not a readable result; recomputing it", path)
        return None
