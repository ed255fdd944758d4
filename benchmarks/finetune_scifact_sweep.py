"""The SciFact dev sweep of docs/finetuning.md: which negatives, loss, learning rate and length, on dev only.

    python benchmarks/finetune_scifact_sweep.py --runs runs --data runs/scifact-data \
        [--only NAME ...] [--commit]

Each candidate is one `benchmarks/finetune_scifact_train.sh` run (seed 42, dev = the 81 held-out training
claims over dev_corpus.jsonl, scored before step 1 and every `--eval-every` steps); a candidate whose
`summary.json` exists is not run again, one that stopped half way is resumed (`--resume`). After each
candidate the dev curves of all candidates go to `docs/results/finetuning-scifact-sweep.json`
(`--commit` also commits that file), so a stopped sweep loses at most the candidate in flight. The best
(candidate, step) by dev nDCG@10 is printed: it is the recipe the three test seeds use. Test is never read
here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_task_report import train_log  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "docs" / "results" / "finetuning-scifact-sweep.json"


@dataclass(frozen=True)
class Candidate:
    name: str
    data: str  # file under --data
    shape: str
    lr: str
    extra: tuple[str, ...]
    why: str


# Fixed before any run of this sweep. Three epochs of the 793 mined triplets are 75 steps at batch 32; dev
# after each epoch. Training length 128 (every evaluation embeds at 256): on this 2-core CPU a step at 256
# costs about twice as much, and the sweep has to fit in one session. In the order they run.
_EPOCHS = ("--max-length", "128", "--epochs", "3", "--eval-every", "25")
CANDIDATES = (
    Candidate(
        "mined-inbatch-2e-5",
        "triplets.jsonl",
        "triplets",
        "2e-5",
        ("--loss", "in-batch", *_EPOCHS),
        "mined negatives plus the other rows' positives (MultipleNegativesRanking-style), 3 epochs",
    ),
    Candidate(
        "mined-inbatch-5e-5",
        "triplets.jsonl",
        "triplets",
        "5e-5",
        ("--loss", "in-batch", *_EPOCHS),
        "the same at a higher learning rate",
    ),
    Candidate(
        "pairs-2e-5",
        "train.csv",
        "pairs",
        "2e-5",
        _EPOCHS,
        "in-batch only (another row's positive as the negative): the best dev row of the last session",
    ),
)


def _seconds_per_step(rows: list[dict[str, Any]]) -> float | None:
    per_step = sorted(1 / r["steps_per_s"] for r in rows if r.get("steps_per_s"))
    return round(per_step[len(per_step) // 2], 2) if per_step else None


def report(runs: Path) -> dict[str, object]:
    rows = []
    for c in CANDIDATES:
        run = runs / f"sweep-{c.name}"
        log = train_log(run)  # read once: the dev curve and the step times
        curve = {r["step"]: r["dev"] for r in log if "dev" in r}
        best = max(curve.items(), key=lambda kv: kv[1]["ndcg_at_10"], default=None)
        rows.append(
            {
                "name": c.name,
                "why": c.why,
                "command": f"benchmarks/finetune_scifact_train.sh {run} DATA/{c.data} {c.shape} {c.lr} 42 "
                + " ".join(c.extra),
                "finished": (run / "summary.json").exists(),
                "dev_ndcg_at_10_by_step": {k: round(v["ndcg_at_10"], 2) for k, v in sorted(curve.items())},
                "best_step": best[0] if best else None,
                "best_dev_ndcg_at_10": round(best[1]["ndcg_at_10"], 2) if best else None,
                "seconds_per_step_median": _seconds_per_step(log),
            }
        )
    done = [r for r in rows if r["finished"]]
    chosen = max(done, key=lambda r: r["best_dev_ndcg_at_10"], default=None)  # type: ignore[arg-type,return-value]
    return {
        "dev": "81 held-out SciFact training claims over dev_corpus.jsonl (1,085 abstracts), seed 42",
        "candidates": rows,
        "chosen": {"name": chosen["name"], "step": chosen["best_step"]} if chosen else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--data", type=Path, default=Path("runs/scifact-data"))
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads per run (1 when another job shares the CPU)"
    )
    parser.add_argument("--commit", action="store_true", help="git commit the result file after each run")
    args = parser.parse_args()
    for c in CANDIDATES:
        if args.report_only or (args.only and c.name not in args.only):
            continue
        run = args.runs / f"sweep-{c.name}"
        if (run / "summary.json").exists():
            continue
        resume = ("--resume",) if (run / "checkpoints").exists() else ()
        cmd = [
            str(ROOT / "benchmarks" / "finetune_scifact_train.sh"),
            str(run),
            str(args.data / c.data),
            c.shape,
            c.lr,
            "42",
            *c.extra,
            "--checkpoint-every",
            "25",
            "--threads",
            str(args.threads),
            *resume,
        ]
        print("$", " ".join(cmd), flush=True)
        # the run script calls `python`: the one running this driver (a venv's), whatever PATH says
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        subprocess.run(cmd, check=True, env={**os.environ, "SCIFACT_DATA": str(args.data), "PATH": path})
        _write(args.runs, args.commit, f"finetuning sweep: {c.name} on SciFact dev")
    _write(args.runs, False, "")
    print(json.dumps(report(args.runs), indent=2))


def _write(runs: Path, commit: bool, message: str) -> None:
    RESULT.write_text(json.dumps(report(runs), indent=2) + "\n", encoding="utf-8")
    if commit:
        subprocess.run(["git", "-C", str(ROOT), "add", str(RESULT)], check=True)
        subprocess.run(
            ["git", "-C", str(ROOT), "commit", "-q", "-m", message, "--", str(RESULT)], check=False
        )


if __name__ == "__main__":
    sys.exit(main())
