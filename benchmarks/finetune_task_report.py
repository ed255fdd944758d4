"""Collect the TrecQA / Banking77 train -> test runs into docs/results/finetuning-<task>.json (+ tables).

    python benchmarks/finetune_task_report.py --task trecqa --runs runs \
        --out docs/results/finetuning-trecqa.json

Reads, for each seed, `RUNS/<task>-s<seed>/summary.json` and `train_log.jsonl` (written by
`benchmarks/finetune_<task>_train.sh`: dev before step 1, every --eval-every steps, the chosen step)
and the test scores `RUNS/<task>-test/s<seed>/<eval task>.json` and `RUNS/<task>-test/base/...`
written by `instructembed eval --tasks <eval task>` (each model scored once). Runs without a test
score yet are listed as pending. A test scored with `--limit` (a smoke run) counts in no mean unless
`--allow-limit` is given. The SciFact runs have their own report (`finetune_scifact_report.py`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TaskReport:
    eval_task: str  # what `instructembed eval --tasks` scores the test with
    metrics: tuple[str, ...]  # test metrics kept (x100); the first is the main one
    label: str


TASKS = {
    "trecqa": TaskReport("TrecQA-local", ("map_at_1000", "mrr_at_10", "ndcg_at_10"), "MAP"),
    "banking77": TaskReport("Banking77Classification", ("accuracy", "f1"), "accuracy"),
}


def _test(path: Path, task: TaskReport) -> dict[str, Any] | None:
    if not path.exists():
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    split = result["scores"]["test"]
    return {
        "scores": {k: round(100 * split[k], 2) for k in task.metrics},
        "model": result["model"],
        "instructions": result["instructions"],
        "limit": result["limit"],
        "command": result["command"],
        "git_commit": result["git_commit"],
        "data_fingerprint": result["data_fingerprint"],
    }


def train_log(run: Path) -> list[dict[str, Any]]:
    """The rows of RUN/train_log.jsonl (none when the run has not started)."""
    path = run / "train_log.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _seed(run: Path, prefix: str, runs: Path, name: str, task: TaskReport) -> dict[str, Any]:
    summary_path = run / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else None
    log = train_log(run)
    curve: dict[int, dict[str, float]] = {}  # a resumed run logs a step twice: the last one counts
    for row in log:
        if "dev" in row:
            curve[row["step"]] = row["dev"]
    rates = [row["steps_per_s"] for row in log if "steps_per_s" in row]
    seed = run.name.removeprefix(prefix)
    scores = summary["scores"] if summary else None
    return {
        "seed": int(seed),
        "run": run.name,
        "steps": summary["steps"] if summary else None,
        "dev_metric": scores["metric"] if scores else None,
        "chosen_step": scores["chosen_step"] if scores else None,
        "dev": scores["dev"] if scores else None,
        "dev_curve": [{"step": step, **curve[step]} for step in sorted(curve)],
        "median_s_per_step": round(1 / statistics.median(rates), 1) if rates else None,
        "test": _test(runs / f"{name}-test" / f"s{seed}" / f"{task.eval_task}.json", task),
        "train_git_commit": summary["git_commit"] if summary else None,
        "train_data_sha256": summary["data_sha256"] if summary else None,
        "config": summary["config"] if summary else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prefix", help="run folders RUNS/<prefix><seed> [<task>-s]")
    parser.add_argument("--allow-limit", action="store_true", help="count --limit test scores (smoke runs)")
    args = parser.parse_args()
    task = TASKS[args.task]
    prefix = args.prefix or f"{args.task}-s"
    main_metric = task.metrics[0]
    base = _test(args.runs / f"{args.task}-test" / "base" / f"{task.eval_task}.json", task)
    seeds = [
        _seed(run, prefix, args.runs, args.task, task)
        for run in sorted(args.runs.glob(f"{prefix}*"))
        if run.is_dir() and run.name.removeprefix(prefix).isdigit()
    ]
    seeds.sort(key=lambda s: s["seed"])

    def counts(result: dict[str, Any] | None) -> bool:
        return result is not None and (result["limit"] is None or args.allow_limit)

    for s in seeds:
        t = s["test"]
        s["test_change"] = (
            round(t["scores"][main_metric] - base["scores"][main_metric], 2)
            if counts(t) and counts(base) and t is not None and base is not None
            else None
        )
        if t is not None and base is not None and t["instructions"] != base["instructions"]:
            print(
                f"warning: seed {s['seed']} was tested with other instructions than the base", file=sys.stderr
            )
    done = [s["test_change"] for s in seeds if s["test_change"] is not None]
    report = {
        "task": args.task,
        "eval_task": task.eval_task,
        "main_metric": main_metric,
        "base_test": base,
        "seeds": seeds,
        "mean_test_change": round(statistics.mean(done), 2) if done else None,
        "seeds_scored": len(done),
        "all_seeds_above_base": all(d > 0 for d in done) if done else None,
        "report_command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(_tables(report, task))


def _tables(report: dict[str, Any], task: TaskReport) -> str:
    seeds, base = report["seeds"], report["base_test"]
    steps = sorted({row["step"] for s in seeds for row in s["dev_curve"]})
    dev_metric = next((s["dev_metric"] for s in seeds if s["dev_metric"]), "main")
    lines = [f"Dev {dev_metric} by step:", ""]
    lines.append("| seed | " + " | ".join(f"step {k}" for k in steps) + " | chosen |")
    lines.append("| --- | " + " | ".join("---:" for _ in steps) + " | ---: |")
    for s in seeds:
        at = {row["step"]: row["main"] for row in s["dev_curve"]}
        cells = " | ".join(f"{at[k]:.2f}" if k in at else "-" for k in steps)
        chosen = s["chosen_step"] if s["chosen_step"] is not None else "running"
        lines.append(f"| {s['seed']} | {cells} | {chosen} |")
    lines += ["", f"Test ({task.eval_task}), scored once per model:", ""]
    lines.append("| model | " + " | ".join(task.metrics) + " | change |")
    lines.append("| --- | " + " | ".join("---:" for _ in task.metrics) + " | ---: |")

    def row(name: str, t: dict[str, Any] | None, change: float | None) -> str:
        if t is None:
            return f"| {name} | " + " | ".join("pending" for _ in task.metrics) + " | |"
        note = f" (limit {t['limit']})" if t["limit"] is not None else ""
        cells = " | ".join(f"{t['scores'][k]:.2f}" for k in task.metrics)
        return f"| {name}{note} | {cells} | {'' if change is None else f'{change:+.2f}'} |"

    lines.append(row("base", base, None))
    for s in seeds:
        lines.append(row(f"seed {s['seed']} (step {s['chosen_step']})", s["test"], s["test_change"]))
    if report["seeds_scored"]:
        lines += [
            "",
            f"Mean change over {report['seeds_scored']} scored seed(s): {report['mean_test_change']:+.2f} "
            f"{task.label}; every scored seed above the base: {report['all_seeds_above_base']}.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
