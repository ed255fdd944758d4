"""The instruction-tuning study (issue 11) in one command, resumable step by step.

    python scripts/study.py --budget cpu            # this 2-core machine, ~2.5 h uncontended
    python scripts/study.py --budget gpu            # a GPU machine: full test sets, longer runs
    python scripts/study.py --budget cpu --status   # what is done, what is left
    python scripts/study.py --study wide ...        # the wider study of issue 27 (scripts/study_wide.py)

Steps, in order (each is skipped when its output exists, so re-running continues where it stopped):

1. build     the mixture, its dev slice and its symmetric / asymmetric halves (`data build-medi`);
2. base      held-out rows of the base model: B0 (no instructions), B1 (instructor-large);
3. sweep     recipe candidates trained on the mixture, seed 1, scored on DEV data only
             (STS-B dev, TrecQA dev, the mixture's dev slice) every `eval_every` steps;
4. recipe    the candidate and step with the best dev mean, frozen in `recipe.json` with the evidence,
             before any tuned model meets a held-out test (an existing recipe is never re-chosen);
5. rows      T-I / T-N seed 1; then the wording rows: B1 and T-I seed 1 with the instructor-base and
             -xl tables and one generic instruction; then T-I / T-N seeds 2-3; then T-I / T-N on the
             symmetric-only and asymmetric-only halves (seed 1); on the GPU budget the wording rows
             of seeds 2-3 last. Each row trains with the frozen recipe (one dev score at its last
             step) and is evaluated on the 11 held-out tasks.

Every held-out score lands in `docs/results/runs.jsonl` (row, seed, table, task, main_score, limit,
commit); `scripts/study_report.py` turns that file into the tables and plots of `docs/results.md`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from study_report import TASKS as HELD_OUT_TASKS  # noqa: E402  (the report reads the same list)

from instructembed.embedder import EmbedConfig, Embedder  # noqa: E402
from instructembed.eval.runner import git_commit, run  # noqa: E402
from instructembed.train.config import LossKind, TrainConfig  # noqa: E402
from instructembed.train.dev_eval import dev_scores  # noqa: E402
from instructembed.train.loop import train  # noqa: E402
from instructembed.train.medi_build import build_medi, sibling  # noqa: E402

log = logging.getLogger("study")

GENERIC = "Represent the text: "


@dataclass(frozen=True)
class Candidate:
    name: str
    temperature: float
    lr: float
    batch_size: int
    chunk_size: int | None = None  # GradCache rows per forward (large batches on small memory)


@dataclass(frozen=True)
class Budget:
    steps: int
    max_length: int
    eval_every: int
    eval_limit: int | None  # None: full held-out test sets
    sweep: tuple[Candidate, ...]
    seeds: tuple[int, ...]
    wording_seeds: tuple[int, ...]
    device: str
    bf16: bool
    eval_dtype: str | None


BUDGETS = {
    # 2 cores: long documents cut at 128 tokens (a step over 256-token documents costs ~4x), batch 32
    # (GradCache makes a bigger batch fit in memory, not in time), bf16 held-out evaluation.
    "cpu": Budget(
        steps=160,
        max_length=128,
        eval_every=40,
        eval_limit=200,
        sweep=(
            Candidate("t0.01-lr2e-5", 0.01, 2e-5, 32),
            Candidate("t0.05-lr2e-5", 0.05, 2e-5, 32),
            Candidate("t0.05-lr5e-6", 0.05, 5e-6, 32),
        ),
        seeds=(1, 2, 3),
        wording_seeds=(1,),
        device="cpu",
        bf16=True,
        eval_dtype="bfloat16",
    ),
    "gpu": Budget(
        steps=1000,
        max_length=256,
        eval_every=100,
        eval_limit=None,
        sweep=(
            Candidate("t0.01-lr2e-5-b32", 0.01, 2e-5, 32),
            Candidate("t0.05-lr2e-5-b32", 0.05, 2e-5, 32),
            Candidate("t0.05-lr1e-5-b32", 0.05, 1e-5, 32),
            Candidate("t0.05-lr2e-5-b128", 0.05, 2e-5, 128, chunk_size=64),
            Candidate("t0.01-lr2e-5-b128", 0.01, 2e-5, 128, chunk_size=64),
        ),
        seeds=(1, 2, 3),
        wording_seeds=(1, 2, 3),
        device="cuda",
        bf16=True,
        eval_dtype=None,
    ),
}

#: row -> (mixture kind, instructions while training)
ROWS = {
    "T-I": ("mixture", True),
    "T-N": ("mixture", False),
    "T-I-sym": ("sym", True),
    "T-N-sym": ("sym", False),
    "T-I-asym": ("asym", True),
    "T-N-asym": ("asym", False),
}


def generic_table(summarization: tuple[str, ...], clustering: tuple[str, ...]) -> dict[str, object]:
    """One generic instruction for every held-out task (the wording rows' control)."""
    one = {"query": GENERIC, "corpus": GENERIC}
    return {
        "STS": dict.fromkeys(["SICK-R", "STS12", "STS13", "STS14", "STS15", "STS16"], GENERIC),
        "PairClassification": dict.fromkeys(["TwitterSemEval2015", "TwitterURLCorpus"], GENERIC),
        "Summarization": dict.fromkeys(summarization, GENERIC),
        "Clustering": dict.fromkeys(clustering, GENERIC),
        "Retrieval": {"SciFact": one},
    }


def best_on_dev(logs: dict[str, Path]) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Every dev score in the candidates' training logs, and the best one (ties: fewer steps)."""
    evidence = []
    for name, log_file in logs.items():
        for line in log_file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "eval" in record:
                evidence.append({"candidate": name, "step": record["step"], **record["eval"]})
    return evidence, max(evidence, key=lambda e: (e["dev_mean"], -e["step"]))


class StudyRuns:
    """What both studies (this one and scripts/study_wide.py) do alike: train a candidate on a mixture
    with every option explicit, score dev while training, load a model for the held-out tasks."""

    log = log
    GENERIC_TABLE: dict[str, object]  # the wording rows' one-generic-instruction table
    name: str
    budget: Budget
    model: str
    data_dir: Path
    runs: Path
    dev: Path  # the mixture's dev slice that every tuned row is dev-scored on

    def tables(self) -> dict[str, str | Path]:
        """Instruction table name -> what `eval --instructions` takes; the generic one is written once."""
        path = self.runs / "generic-instructions.json"
        if not path.exists():
            path.write_text(json.dumps(self.GENERIC_TABLE, indent=1) + "\n", encoding="utf-8")
        shared = self.data_dir.parent / "instructions"
        return {
            "large": "instructor-large",
            "base": shared / "instructor-base.json",
            "xl": shared / "instructor-xl.json",
            "generic": path,
            "none": "none",
        }

    def train_config(
        self, data: Path, out: Path, cand: Candidate, seed: int, steps: int, instr: bool, eval_every: int
    ) -> TrainConfig:
        b = self.budget
        # every option explicit: a study does not follow TrainConfig's defaults as they change
        return TrainConfig(
            model=self.model,
            data=data,
            out=out,
            loss=LossKind.INSTRUCTOR,
            temperature=cand.temperature,
            lr=cand.lr,
            weight_decay=0.0,
            max_grad_norm=1.0,
            batch_size=cand.batch_size,
            chunk_size=cand.chunk_size,
            max_length=b.max_length,
            max_steps=steps,
            warmup_ratio=0.1,
            seed=seed,
            device=b.device,
            bf16=b.bf16,
            no_instructions=not instr,
            checkpoint_every=b.eval_every,
            keep_checkpoints=1,
            eval_every=eval_every,
            eval_dev=self.dev,
            eval_data_dir=self.data_dir,
            progress=False,
        )

    def _train(self, config: TrainConfig) -> Path:
        out = Path(config.out)
        if (out / "model").is_dir():
            return out / "model"
        resume = (out / "checkpoints").is_dir()
        instr = not config.no_instructions
        t0 = time.time()
        self.log.info("train %s (resume=%s)", out, resume)
        train(
            config,
            resume=resume,
            eval_fn=lambda e: dev_scores(e, self.data_dir, self.dev, instructions=instr),
        )
        self.log.info("trained %s in %.0f s", out, time.time() - t0)
        return out / "model"

    def base_dev_scores(self) -> dict[str, dict[str, float]]:
        embedder = Embedder.load(self.model, device=self.budget.device)
        return {
            "instructions": dev_scores(embedder, self.data_dir, self.dev, instructions=True),
            "none": dev_scores(embedder, self.data_dir, self.dev, instructions=False),
        }

    def held_out(
        self, model: str | Path, tasks: list[str], out_dir: Path, row: dict[str, object]
    ) -> list[dict[str, object]]:
        """Score `model` on `tasks` under the instruction table `row["table"]`: one runs.jsonl line per
        task, led by `row` (what names the row: row, seed, table, ...)."""
        embedder = Embedder.load(
            model,
            device=self.budget.device,
            dtype=self.budget.eval_dtype,
            config=EmbedConfig(token_budget=32768, max_batch_size=256),
        )
        results = run(
            embedder,
            tasks,
            data_dir=self.data_dir,
            instructions=str(self.tables()[str(row["table"])]),
            limit=self.budget.eval_limit,
            model_name=str(model),
            out_dir=out_dir,
            command=" ".join(sys.argv),
            progress=False,
        )
        commit = git_commit()
        return [
            {
                **row,
                "task": r.task,
                "main_score": r.main_score,
                "limit": self.budget.eval_limit,
                "commit": r.git_commit or commit,
                "budget": self.name,
                "eval_dtype": self.budget.eval_dtype or "float32",
            }
            for r in results
        ]


class Study(StudyRuns):
    GENERIC_TABLE = generic_table(("SummEval",), ("AGNewsClustering-local",))

    def __init__(self, args: argparse.Namespace) -> None:
        self.budget = BUDGETS[args.budget]
        self.name = args.budget
        self.runs: Path = args.runs
        self.data_dir: Path = args.data_dir
        self.model: str = args.model
        self.results: Path = args.results
        self.medi = self.runs / "medi.jsonl"
        self.dev = sibling(self.medi, "dev")
        self.runs.mkdir(parents=True, exist_ok=True)

    # ---- helpers --------------------------------------------------------------------------------

    def mixture(self, kind: str) -> Path:
        return self.medi if kind == "mixture" else sibling(self.medi, kind)

    # ---- steps ----------------------------------------------------------------------------------

    def build(self) -> None:
        if self.medi.exists() and sibling(self.medi, "report").exists():
            return
        log.info("building the mixture")
        build_medi(self.data_dir, self.medi, seed=42, mixture="v1", held_out="v1")  # issue 11's, unchanged

    def evaluate(self, row: str, seed: int | None, table: str, model: str | Path) -> None:
        key = f"{row}-s{seed}-{table}" if seed is not None else f"{row}-{table}"
        out_dir = self.runs / "eval" / key
        if (out_dir / "DONE").exists() or self.recorded(row, seed, table):
            return
        log.info("held-out evaluation %s", key)
        lines = self.held_out(
            model, list(HELD_OUT_TASKS), out_dir, {"row": row, "seed": seed, "table": table}
        )
        append_runs(self.results, lines)
        (out_dir / "DONE").write_text("", encoding="utf-8")

    def recorded(self, row: str, seed: int | None, table: str) -> bool:
        """Every held-out task of this row is in runs.jsonl already (a fresh machine need not redo it)."""
        if not self.results.exists():
            return False
        lines = [json.loads(x) for x in self.results.read_text(encoding="utf-8").splitlines() if x.strip()]
        got = {
            d["task"]
            for d in lines
            if (d["row"], d["seed"], d["table"], d["limit"]) == (row, seed, table, self.budget.eval_limit)
        }
        return set(HELD_OUT_TASKS) <= got

    def base_rows(self) -> None:
        self.evaluate("B0", None, "none", self.model)
        self.evaluate("B1", None, "large", self.model)

    def base_dev(self) -> dict[str, dict[str, float]]:
        path = self.runs / "sweep" / "base-dev.json"
        if path.exists():
            return dict(json.loads(path.read_text(encoding="utf-8")))
        scores = self.base_dev_scores()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
        return scores

    def sweep(self) -> None:
        if (self.runs / "recipe.json").exists() or (self.results.parent / "recipe.json").exists():
            return  # the recipe is frozen: the sweep's job is done
        for cand in self.budget.sweep:
            out = self.runs / "sweep" / cand.name
            b = self.budget
            self._train(self.train_config(self.medi, out, cand, 1, b.steps, True, b.eval_every))

    def recipe(self) -> dict[str, object]:
        path = self.runs / "recipe.json"
        committed = self.results.parent / "recipe.json"
        if not path.exists() and committed.exists():
            shutil.copy(committed, path)  # frozen in an earlier session: restored, never re-chosen
        if path.exists():
            return dict(json.loads(path.read_text(encoding="utf-8")))
        logs = {c.name: self.runs / "sweep" / c.name / "train_log.jsonl" for c in self.budget.sweep}
        evidence, best = best_on_dev(logs)
        cand = next(c for c in self.budget.sweep if c.name == best["candidate"])
        recipe = {
            "rule": "highest dev_mean (STS-B dev, TrecQA dev, mixture dev slice) over candidates and evaluated steps",
            "candidate": asdict(cand),
            "steps": best["step"],
            "chosen": best,
            "evidence": evidence,
            "base_dev": self.base_dev(),
            "budget": self.name,
            "commit": git_commit(),
            "frozen_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        path.write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        self.publish()
        log.info("recipe frozen: %s at step %s (dev mean %.2f)", cand.name, best["step"], best["dev_mean"])
        return recipe

    def publish(self) -> None:
        """Copy what the report is computed from beside runs.jsonl (runs/ is not committed)."""
        out = self.results.parent
        (out / "sweep").mkdir(parents=True, exist_ok=True)
        for name in ("recipe.json", "medi.report.json"):
            if (self.runs / name).exists():
                shutil.copy(self.runs / name, out / name)
        for log_file in (self.runs / "sweep").glob("*/train_log.jsonl"):
            shutil.copy(log_file, out / "sweep" / f"{log_file.parent.name}.train_log.jsonl")
        if (self.runs / "sweep" / "base-dev.json").exists():
            shutil.copy(self.runs / "sweep" / "base-dev.json", out / "sweep" / "base-dev.json")

    def model_for(self, row: str, seed: int) -> Path:
        recipe = self.recipe()
        cand = Candidate(**recipe["candidate"])  # type: ignore[arg-type]
        steps = int(recipe["steps"])  # type: ignore[call-overload]
        kind, instr = ROWS[row]
        winner = self.runs / "sweep" / cand.name / "model"
        if row == "T-I" and seed == 1 and steps == self.budget.steps and winner.is_dir():
            return winner  # the winning sweep run is T-I, seed 1
        out = self.runs / "train" / f"{row}-s{seed}"
        # the recipe is frozen: rows log one dev score, at their last step (the sweep has the curves)
        return self._train(self.train_config(self.mixture(kind), out, cand, seed, steps, instr, steps))

    def rows(self, which: tuple[str, ...], seeds: tuple[int, ...]) -> None:
        for seed in seeds:
            for row in which:
                table = "large" if ROWS[row][1] else "none"
                if not self.recorded(row, seed, table):
                    self.evaluate(row, seed, table, self.model_for(row, seed))

    def wording(self, seeds: tuple[int, ...]) -> None:
        for table in ("base", "xl", "generic"):
            self.evaluate("B1", None, table, self.model)
        for seed in seeds:
            for table in ("base", "xl", "generic"):
                if not self.recorded("T-I", seed, table):
                    self.evaluate("T-I", seed, table, self.model_for("T-I", seed))

    def status(self) -> None:
        done = sorted(p.parent.name for p in (self.runs / "eval").glob("*/DONE"))
        trained = sorted(p.parent.parent.name + "/" + p.parent.name for p in self.runs.glob("*/*/model"))
        print(f"mixture: {'built' if self.medi.exists() else 'not built'}")
        print(f"recipe: {'frozen' if (self.runs / 'recipe.json').exists() else 'not chosen yet'}")
        print("trained:", ", ".join(trained) or "-")
        print("evaluated:", ", ".join(done) or "-")

    def all(self) -> None:
        self.build()
        self.base_rows()
        self.base_dev()
        self.sweep()
        self.recipe()
        # the most informative rows first, so a study cut short still answers the main question
        self.rows(("T-I", "T-N"), (1,))
        self.wording((1,))
        self.rows(("T-I", "T-N"), tuple(s for s in self.budget.seeds if s != 1))
        self.rows(("T-I-sym", "T-N-sym", "T-I-asym", "T-N-asym"), (1,))
        self.wording(tuple(s for s in self.budget.wording_seeds if s != 1))
        log.info("study complete: python scripts/study_report.py --runs %s", self.runs)


def append_runs(path: Path, lines: list[dict[str, object]]) -> None:
    """Add result lines to runs.jsonl, replacing any with the same (row, seed, table, task, limit)."""

    def key(d: dict[str, object]) -> tuple[object, ...]:  # the wider study adds study and mixture
        return (d.get("study"), d["row"], d["seed"], d["table"], d.get("mixture"), d["task"], d["limit"])

    old = (
        [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        if path.exists()
        else []
    )
    new_keys = {key(d) for d in lines}
    merged = [d for d in old if key(d) not in new_keys] + lines
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as handle:
        handle.writelines(json.dumps(d) + "\n" for d in merged)
    Path(handle.name).replace(path)


def main() -> None:
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--study", choices=("first", "wide"), default="first")
    which, rest = first.parse_known_args()
    if which.study == "wide":  # issue 27's study (scripts/study_wide.py), on this module's helpers
        sys.modules.setdefault("study", sys.modules[__name__])
        sys.path.insert(0, str(ROOT / "scripts"))
        from study_wide import main as wide_main

        wide_main(rest)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", choices=("first", "wide"), default="first", help="first: issue 11's study")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "study")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results" / "runs.jsonl")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--status", action="store_true", help="list what is done and what is left")
    parser.add_argument("--steps", type=int, default=None, help="override the budget's training steps")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(args.runs.parent / f"{args.runs.name}.log")]
        if args.runs.parent.exists()
        else None,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    study = Study(args)
    if args.status:
        study.status()
        return
    if args.steps:
        study.budget = replace(study.budget, steps=args.steps)
    study.all()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
