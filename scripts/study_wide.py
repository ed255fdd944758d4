"""The wider study (issue 27): more task diversity, a wider held-out set, more seeds; resumable.

    python scripts/study.py --study wide --budget cpu            # the CPU budget (nice it; days on 2 cores)
    python scripts/study.py --study wide --budget cpu --status   # what is done, what is left
    python scripts/study_wide_report.py                          # tables from docs/results/runs.jsonl

Steps, in order; each is skipped when its output exists, so running the command again continues:

1. build    two mixtures from the same data, both decontaminated against the WIDER held-out set:
            `v1` (issue 11's 20 tasks) and `wide` (42 tasks, 13 groups of tasks over the same texts);
2. freeze   the held-out list (`docs/results/heldout27.json`): the first 11 tasks, the two TWEAC
            clustering tasks and the issue-24 tasks by name (SummEval, BillboardMSCOCO, BillboardCNNDM,
            BillboardWMT20ZhEn). A task not registered yet is skipped with a message and picked up
            by a later run once it is (rows already recorded then get that task added);
3. base     B0 (no instructions) and B1 (instructor-large) on the held-out list;
4. sweep    on the wide mixture, seed 1, DEV data only (STS-B dev, TrecQA dev, the wide dev slice),
            every `eval_every` steps: temperature 0.02 / 0.05 / 0.1 x two learning rates;
5. recipe   the (candidate, step) with the best dev mean, frozen in `docs/results/recipe27.json`
            before any tuned model meets a held-out task; never re-chosen;
6. rows     with that recipe (same steps for both mixtures): T-I and T-N on wide and v1, seed 1;
            the wording rows (B1 and T-I wide seed 1 under instructor-base, -xl and one generic
            instruction); seeds 2-5 of T-I / T-N on both mixtures; the sym / asym ablation on wide.

Every held-out score is one line of `docs/results/runs.jsonl` with `"study": "issue27"` and its
`mixture` (`v1`, `wide`, or null for B0 / B1); with `--commit` each finished row is committed.
Dev scoring of every tuned row uses the wide mixture's dev slice (its tasks include all v1 tasks).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from study import HELD_OUT_TASKS as FIRST_11  # noqa: E402
from study import (  # noqa: E402
    ROWS,
    Budget,
    Candidate,
    StudyRuns,
    append_runs,
    best_on_dev,
    generic_table,
)

from instructembed.eval.runner import git_commit  # noqa: E402
from instructembed.eval.tasks import get_task  # noqa: E402
from instructembed.train.medi_build import build_medi, sibling  # noqa: E402

log = logging.getLogger("study27")
STUDY = "issue27"

#: frozen before any tuned model is evaluated (the issue-24 names land with that branch)
WIDER = (
    "RedditClustering-local",
    "StackExchangeClustering-local",
    "SummEval",
    "BillboardMSCOCO",
    "BillboardCNNDM",
    "BillboardWMT20ZhEn",
)
HELD_OUT = (*FIRST_11, *WIDER)


def _grid(batch: int, lrs: tuple[float, ...], chunk: int | None = None) -> tuple[Candidate, ...]:
    # the previous winner's lr first: a sweep cut short still compares the three temperatures
    return tuple(
        Candidate(f"t{t}-lr{lr:g}-b{batch}", t, lr, batch, chunk) for lr in lrs for t in (0.02, 0.05, 0.1)
    )


#: `steps` is the sweep's length (rows train the chosen step count); the wording rows are seed 1's
BUDGETS = {
    # 2 cores: 128 tokens, batch 32, bf16 evaluation with 200 items per task (per set for clustering)
    "cpu": Budget(320, 128, 40, 200, _grid(32, (5e-6, 2e-5)), (1, 2, 3, 4, 5), (1,), "cpu", True, "bfloat16"),
    "gpu": Budget(1000, 256, 100, None, _grid(32, (1e-5, 2e-5)), (1, 2, 3, 4, 5), (1,), "cuda", True, None),
}


def registered(names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(registered task names, frozen names not registered yet) of the held-out list."""
    have, missing = [], []
    for name in names:
        try:
            have.append(get_task(name).name)
        except ValueError:
            missing.append(name)
    return have, missing


class WideStudy(StudyRuns):
    log = log
    GENERIC_TABLE = generic_table(
        ("SummEval", *WIDER[2:]), ("AGNewsClustering-local", "RedditClustering", "StackExchangeClustering")
    )

    def __init__(self, args: argparse.Namespace) -> None:
        self.name = args.budget
        self.budget = BUDGETS[args.budget]
        if args.steps:
            self.budget = replace(self.budget, steps=args.steps)
        self.runs: Path = args.runs
        self.data_dir: Path = args.data_dir
        self.model: str = args.model
        self.results: Path = args.results
        self.docs = self.results.parent
        self.commit_results: bool = args.commit
        self.runs.mkdir(parents=True, exist_ok=True)
        self.dev = sibling(self.medi("wide"), "dev")

    def medi(self, mixture: str, kind: str = "mixture") -> Path:
        path = self.runs / f"medi-{mixture}.jsonl"
        return path if kind == "mixture" else sibling(path, kind)

    # ---- bookkeeping ---------------------------------------------------------------------------

    def commit(self, message: str) -> None:
        """Commit what the docs are computed from (never runs/): a cut session keeps finished rows."""
        if not self.commit_results:
            return
        paths = [str(p.relative_to(ROOT)) for p in [*sorted(self.docs.glob("*27*")), self.results]]
        paths += [str(p.relative_to(ROOT)) for p in sorted((self.docs / "sweep27").glob("*"))]
        for attempt in range(5):
            add = subprocess.run(
                ["git", "-C", str(ROOT), "add", "--", *paths], capture_output=True, text=True
            )
            done = subprocess.run(
                ["git", "-C", str(ROOT), "commit", "-q", "-m", f"study27: {message}", "--", *paths],
                capture_output=True,
                text=True,
            )
            if add.returncode == 0 and done.returncode == 0:
                log.info("committed: %s", message)
                return
            if "nothing" in done.stdout + done.stderr:
                return
            time.sleep(5 * (attempt + 1))  # another git process holds the index lock
        log.warning("could not commit %s: %s", message, done.stderr.strip())

    def lines(self) -> list[dict[str, object]]:
        if not self.results.exists():
            return []
        text = self.results.read_text(encoding="utf-8")
        return [d for d in (json.loads(x) for x in text.splitlines() if x.strip()) if d.get("study") == STUDY]

    def missing_tasks(self, row: str, seed: int | None, table: str, mixture: str | None) -> list[str]:
        have, _ = registered(HELD_OUT)
        got = {
            d["task"]
            for d in self.lines()
            if (d["row"], d["seed"], d["table"], d["mixture"], d["limit"])
            == (row, seed, table, mixture, self.budget.eval_limit)
        }
        return [t for t in have if t not in got]

    # ---- steps ---------------------------------------------------------------------------------

    def build(self) -> None:
        for mixture in ("wide", "v1"):
            out = self.medi(mixture)
            if not (out.exists() and sibling(out, "report").exists()):
                log.info("building the %s mixture (wider held-out set)", mixture)
                build_medi(self.data_dir, out, seed=42, mixture=mixture, held_out="wide")
            shutil.copy(sibling(out, "report"), self.docs / f"medi-{mixture}.report27.json")
        self.commit("mixture build reports")

    def freeze_held_out(self) -> None:
        path = self.docs / "heldout27.json"
        if path.exists():
            frozen = json.loads(path.read_text(encoding="utf-8"))
            if tuple(frozen["tasks"]) != HELD_OUT:
                raise SystemExit(f"{path} froze a different held-out list; it is never changed")
            return
        sets = ROOT / "src" / "instructembed" / "data"
        record = {
            "tasks": list(HELD_OUT),
            "first_11": list(FIRST_11),
            "registered_at_freeze": registered(HELD_OUT)[0],
            "clustering_sets_sha256": {
                p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(sets.glob("*-clustering-sets.json"))
            },
            "limit": self.budget.eval_limit,
            "commit": git_commit(),
            "frozen_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        self.commit("held-out list frozen")

    def evaluate(
        self, row: str, seed: int | None, table: str, mixture: str | None, model: str | Path
    ) -> None:
        todo = self.missing_tasks(row, seed, table, mixture)
        _, absent = registered(HELD_OUT)
        if absent:
            log.warning(
                "held-out tasks not registered yet, skipped for now (merge issue 24): %s", ", ".join(absent)
            )
        if not todo:
            return
        key = "-".join(str(x) for x in (row, mixture, f"s{seed}" if seed else None, table) if x)
        log.info("held-out evaluation %s: %s", key, ", ".join(todo))
        key_fields = {"study": STUDY, "row": row, "seed": seed, "table": table, "mixture": mixture}
        lines = self.held_out(model, todo, self.runs / "eval" / key, key_fields)
        append_runs(self.results, lines)
        self.commit(f"held-out scores of {key}")

    def base(self) -> None:
        self.evaluate("B0", None, "none", None, self.model)
        self.evaluate("B1", None, "large", None, self.model)
        path = self.docs / "sweep27" / "base-dev.json"
        if not path.exists():
            scores = self.base_dev_scores()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
            self.commit("base model dev scores")

    def sweep(self) -> None:
        if (self.docs / "recipe27.json").exists():
            return
        b = self.budget
        (self.docs / "sweep27").mkdir(parents=True, exist_ok=True)
        for cand in b.sweep:
            out = self.runs / "sweep" / cand.name
            done = (out / "model").is_dir()
            self._train(self.train_config(self.medi("wide"), out, cand, 1, b.steps, True, b.eval_every))
            shutil.copy(out / "train_log.jsonl", self.docs / "sweep27" / f"{cand.name}.train_log.jsonl")
            if not done:
                self.commit(f"dev sweep candidate {cand.name}")

    def recipe(self) -> dict[str, object]:
        path = self.docs / "recipe27.json"
        if path.exists():
            return dict(json.loads(path.read_text(encoding="utf-8")))
        logs = {c.name: self.docs / "sweep27" / f"{c.name}.train_log.jsonl" for c in self.budget.sweep}
        evidence, best = best_on_dev(logs)
        cand = next(c for c in self.budget.sweep if c.name == best["candidate"])
        recipe = {
            "rule": "highest dev_mean (STS-B dev, TrecQA dev, wide dev slice) over candidates and steps; "
            "ties: fewer steps",
            "candidate": asdict(cand),
            "steps": best["step"],
            "chosen": best,
            "evidence": evidence,
            "budget": self.name,
            "commit": git_commit(),
            "frozen_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        path.write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        self.commit(f"recipe frozen on dev: {cand.name} at step {best['step']}")
        return recipe

    def model_for(self, row: str, mixture: str, seed: int) -> Path:
        recipe = self.recipe()
        cand = Candidate(**recipe["candidate"])  # type: ignore[arg-type]
        steps = int(recipe["steps"])  # type: ignore[call-overload]
        kind, instr = ROWS[row]
        winner = self.runs / "sweep" / cand.name / "model"
        if (row, mixture, seed) == ("T-I", "wide", 1) and steps == self.budget.steps and winner.is_dir():
            return winner  # the winning sweep run is T-I wide seed 1
        out = self.runs / "train" / f"{row}-{mixture}-s{seed}"
        return self._train(self.train_config(self.medi(mixture, kind), out, cand, seed, steps, instr, steps))

    def rows(self, which: tuple[str, ...], mixtures: tuple[str, ...], seeds: tuple[int, ...]) -> None:
        for seed in seeds:
            for mixture in mixtures:
                for row in which:
                    table = "large" if ROWS[row][1] else "none"
                    if self.missing_tasks(row, seed, table, mixture):
                        self.evaluate(row, seed, table, mixture, self.model_for(row, mixture, seed))

    def wording(self) -> None:
        for table in ("base", "xl", "generic"):
            self.evaluate("B1", None, table, None, self.model)
            for seed in self.budget.wording_seeds:
                if self.missing_tasks("T-I", seed, table, "wide"):
                    self.evaluate("T-I", seed, table, "wide", self.model_for("T-I", "wide", seed))

    def status(self) -> None:
        lines = self.lines()
        done = sorted({(str(d["row"]), str(d["mixture"]), str(d["seed"]), str(d["table"])) for d in lines})
        print("mixtures:", {m: self.medi(m).exists() for m in ("v1", "wide")})
        print(
            "held-out frozen:",
            (self.docs / "heldout27.json").exists(),
            "| not registered yet:",
            registered(HELD_OUT)[1],
        )
        print("recipe:", "frozen" if (self.docs / "recipe27.json").exists() else "not chosen yet")
        print(
            "sweep trained:",
            [c.name for c in self.budget.sweep if (self.runs / "sweep" / c.name / "model").is_dir()],
        )
        print("rows evaluated (row, mixture, seed, table):", done or "-")

    def all(self) -> None:
        self.build()
        self.freeze_held_out()
        self.base()
        self.sweep()
        self.recipe()
        both = ("wide", "v1")
        self.rows(("T-I", "T-N"), both, (1,))
        self.wording()
        self.rows(("T-I", "T-N"), both, tuple(s for s in self.budget.seeds if s != 1))
        self.rows(("T-I-sym", "T-N-sym", "T-I-asym", "T-N-asym"), ("wide",), (1,))
        log.info("study complete: python scripts/study_wide_report.py")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "study27")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results" / "runs.jsonl")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=None, help="override the sweep's steps")
    parser.add_argument("--commit", action="store_true", help="git-commit each finished step's results")
    parser.add_argument("--status", action="store_true", help="list what is done and what is left")
    parser.add_argument(
        "--only", choices=("build", "freeze", "base", "sweep"), default=None, help="run one step"
    )
    args = parser.parse_args(argv)
    args.runs.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(args.runs.parent / f"{args.runs.name}.log")],
    )
    import torch

    torch.set_num_threads(args.threads)
    study = WideStudy(args)
    if args.status:
        study.status()
    elif args.only:
        {"build": study.build, "freeze": study.freeze_held_out, "base": study.base, "sweep": study.sweep}[
            args.only
        ]()
    else:
        study.all()


if __name__ == "__main__":
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
