"""Collect the SciFact fine-tuning runs into docs/results/finetuning-scifact.json (+ a markdown table).

    python benchmarks/finetune_scifact_report.py --runs runs --out docs/results/finetuning-scifact.json

Reads each `RUNS/final-mined-s<seed>/summary.json` (dev: base vs the chosen step) and the test scores
`RUNS/scifact-test/<name>/SciFact.json` written by `instructembed eval --tasks SciFact` (base once, and
each tuned model once). Runs whose test score is not there yet are listed as pending.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from finetune_task_report import train_log  # benchmarks/ is on sys.path when run as a script


def _test(path: Path) -> dict[str, float] | None:
    if not path.exists():
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    (split,) = result["scores"].values() if len(result["scores"]) == 1 else (result["scores"]["test"],)
    return {k: round(100 * split[k], 2) for k in ("ndcg_at_10", "mrr_at_10", "recall_at_100")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prefix", default="final-mined-s")
    parser.add_argument(
        "--fill-doc", type=Path, help="replace DEV_ROWS / TEST_TABLE / INBATCH_TABLE in this file"
    )
    args = parser.parse_args()
    base = _test(args.runs / "scifact-test" / "base" / "SciFact.json")
    seeds = []
    for run in sorted(args.runs.glob(f"{args.prefix}*")):
        if not run.is_dir():
            continue
        summary_path = run / "summary.json"
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else None
        seed = run.name.removeprefix(args.prefix)
        test = _test(args.runs / "scifact-test" / f"mined-s{seed}" / "SciFact.json")
        seeds.append(
            {
                "seed": int(seed),
                "run": run.name,
                "dev": summary["scores"]["dev"] if summary else None,
                "chosen_step": summary["scores"]["chosen_step"] if summary else None,
                "steps": summary["steps"] if summary else None,
                "test": test,
                "test_change_ndcg_at_10": round(test["ndcg_at_10"] - base["ndcg_at_10"], 2)
                if test and base
                else None,
                "config": summary["config"] if summary else None,
            }
        )
    done = [s["test_change_ndcg_at_10"] for s in seeds if s["test_change_ndcg_at_10"] is not None]
    report = {
        "base_test": base,
        "seeds": seeds,
        "mean_test_change_ndcg_at_10": round(statistics.mean(done), 2) if done else None,
        "seeds_scored": len(done),
        "all_seeds_above_base": all(d > 0 for d in done) if done else None,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.fill_doc is not None:
        _fill(args.fill_doc, args.runs, seeds, base, report)
    print(
        "| seed | chosen step | dev nDCG@10 base -> tuned | test nDCG@10 | change | test MRR@10 | test R@100 |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    if base:
        print(
            f"| base | - | - | {base['ndcg_at_10']:.2f} | - | {base['mrr_at_10']:.2f} | {base['recall_at_100']:.2f} |"
        )
    for s in seeds:
        dev = s["dev"]
        dev_text = (
            f"{dev['base']['ndcg_at_10']:.2f} -> {dev['tuned']['ndcg_at_10']:.2f}" if dev else "running"
        )
        t = s["test"]
        test_text = (
            f"{t['ndcg_at_10']:.2f} | {s['test_change_ndcg_at_10']:+.2f} | {t['mrr_at_10']:.2f} | {t['recall_at_100']:.2f}"
            if t and base
            else "pending | | |"
        )
        print(f"| {s['seed']} | {s['chosen_step']} | {dev_text} | {test_text} |")
    if done:
        print(f"\nmean change over {len(done)} seed(s): {report['mean_test_change_ndcg_at_10']:+.2f}")


def _dev_by_step(run: Path) -> dict[int, float]:
    return {r["step"]: r["dev"]["ndcg_at_10"] for r in train_log(run) if "dev" in r}


def _fill(doc: Path, runs: Path, seeds: list[dict], base: dict | None, report: dict) -> None:  # type: ignore[type-arg]
    text = doc.read_text(encoding="utf-8")
    dev_rows = []
    for s in seeds:
        dev = _dev_by_step(runs / s["run"])
        chosen = s["chosen_step"] if s["chosen_step"] is not None else "running"
        cells = " | ".join(f"{dev[k]:.2f}" if k in dev else "-" for k in (12, 24))
        dev_rows.append(f"| {s['seed']} | {cells} | {chosen} |")
    test = ["| model | nDCG@10 | change | MRR@10 | recall@100 |", "| --- | ---: | ---: | ---: | ---: |"]
    if base:
        test.append(
            f"| base | {base['ndcg_at_10']:.2f} | | {base['mrr_at_10']:.2f} | {base['recall_at_100']:.2f} |"
        )
    for s in seeds:
        t = s["test"]
        if t and base:
            change = t["ndcg_at_10"] - base["ndcg_at_10"]
            row = (
                f"| {t['ndcg_at_10']:.2f} | {change:+.2f} | {t['mrr_at_10']:.2f} | {t['recall_at_100']:.2f} |"
            )
            test.append(f"| seed {s['seed']} (step {s['chosen_step']}) " + row)
        else:
            test.append(f"| seed {s['seed']} | not scored yet | | | |")
    if report["seeds_scored"]:
        test.append("")
        test.append(
            f"Mean change over {report['seeds_scored']} scored seed(s): "
            f"{report['mean_test_change_ndcg_at_10']:+.2f} nDCG@10 (target +3.0); every scored seed above "
            f"the base: {report['all_seeds_above_base']}. (`docs/results/finetuning-scifact.json`)"
        )
    mined, inbatch = _dev_by_step(runs / "final-mined-s42"), _dev_by_step(runs / "inbatch-pairs-s42")
    rows = ["| negatives | dev nDCG@10 step 0 | step 12 | step 24 |", "| --- | ---: | ---: | ---: |"]
    for name, dev in (("mined (triplets)", mined), ("in-batch only (pairs)", inbatch)):
        rows.append(
            f"| {name} | " + " | ".join(f"{dev[k]:.2f}" if k in dev else "-" for k in (0, 12, 24)) + " |"
        )
    for key, value in (
        ("DEV_ROWS", "\n".join(dev_rows)),
        ("TEST_TABLE", "\n".join(test)),
        ("INBATCH_TABLE", "\n".join(rows)),
    ):
        text = text.replace(key, value)
    doc.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
