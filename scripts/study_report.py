"""Tables and plots of the instruction-tuning study, computed from `docs/results/runs.jsonl` alone
(plus the training logs for the dev and loss curves).

    python scripts/study_report.py --runs runs/study --out docs/results

Writes `<out>/study.md` (every table of docs/results.md, regenerated) and `<out>/study-*.png`.
Rows that have not been run yet are shown as missing, never filled in.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = (
    "SICK-R",
    "STS12-noMSRvid",
    "STS13",
    "STS14",
    "STS15",
    "STS16",
    "TwitterSemEval2015-local",
    "TwitterURLCorpus-local",
    "SummEvalReferenceFree-local",
    "AGNewsClustering-local",
    "SciFact",
)
SHORT = {
    "STS12-noMSRvid": "STS12*",
    "TwitterSemEval2015-local": "TwSemEval",
    "TwitterURLCorpus-local": "TwURL",
    "SummEvalReferenceFree-local": "SummEval*",
    "AGNewsClustering-local": "AGNews clu.",
}
ROW_ORDER = ("B0", "B1", "T-I", "T-N", "T-I-sym", "T-N-sym", "T-I-asym", "T-N-asym")
MAIN_TABLE = {
    "B0": "none",
    "B1": "large",
    "T-I": "large",
    "T-N": "none",
    "T-I-sym": "large",
    "T-N-sym": "none",
    "T-I-asym": "large",
    "T-N-asym": "none",
}
# two-sided 95 % Student t quantiles by degrees of freedom
T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    21: 2.080,
    30: 2.042,
    32: 2.037,
    40: 2.021,
    60: 2.000,
}


def t95(df: int) -> float:
    if df in T95:
        return T95[df]
    keys = sorted(T95)
    return T95[max(k for k in keys if k <= df)] if df > 1 else T95[1]


def load(path: Path) -> list[dict]:
    """The first study's lines (issue 11); the wider study's carry `"study": "issue27"` and have their
    own report (`scripts/study_wide_report.py`)."""
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [d for d in lines if "study" not in d]


def scores(lines: list[dict], row: str, table: str) -> dict[int | None, dict[str, float]]:
    """seed -> task -> score, for one row and instruction table."""
    out: dict[int | None, dict[str, float]] = defaultdict(dict)
    for d in lines:
        if d["row"] == row and d["table"] == table:
            out[d["seed"]][d["task"]] = d["main_score"]
    return {s: v for s, v in out.items() if all(t in v for t in TASKS)}


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def fmt(xs: list[float]) -> str:
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.2f}"
    return f"{mean(xs):.2f} ± {statistics.stdev(xs):.2f}"


def interval(diffs: list[float]) -> tuple[float, float, float]:
    m = mean(diffs)
    if len(diffs) < 2:
        return m, math.nan, math.nan
    half = t95(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return m, m - half, m + half


def main_table(lines: list[dict]) -> list[str]:
    head = "| row | seeds | " + " | ".join(SHORT.get(t, t) for t in TASKS) + " | mean |"
    out = [head, "|---" * (len(TASKS) + 3) + "|"]
    for row in ROW_ORDER:
        by_seed = scores(lines, row, MAIN_TABLE[row])
        if not by_seed:
            out.append(f"| {row} | not run yet |" + " |" * (len(TASKS) + 1))
            continue
        cells = [fmt([v[t] for v in by_seed.values()]) for t in TASKS]
        means = [mean([v[t] for t in TASKS]) for v in by_seed.values()]
        seeds = (
            ",".join(str(s) for s in sorted(by_seed, key=lambda s: s or 0)) if None not in by_seed else "-"
        )
        out.append(f"| {row} | {seeds} | " + " | ".join(cells) + f" | **{fmt(means)}** |")
    return out


def claim(lines: list[dict]) -> list[str]:
    b1 = scores(lines, "B1", "large").get(None)
    ti = scores(lines, "T-I", "large")
    if not b1 or not ti:
        return ["T-I or B1 not run yet: no interval."]
    diffs = [v[t] - b1[t] for v in ti.values() for t in TASKS]
    m, lo, hi = interval(diffs)
    per_seed = [mean([v[t] - b1[t] for t in TASKS]) for v in ti.values()]
    sm, slo, shi = interval(per_seed)
    worst = min(((mean([v[t] for v in ti.values()]) - b1[t]), t) for t in TASKS)
    out = [
        f"- T-I − B1, held-out mean: **{m:+.2f}** points; 95 % t-interval over the {len(diffs)} (task, seed) "
        f"differences: [{lo:+.2f}, {hi:+.2f}]" + ("" if len(ti) > 1 else " (one seed)"),
        f"- over seeds (the mean difference per seed, n = {len(per_seed)}): {sm:+.2f}"
        + (f", 95 % interval [{slo:+.2f}, {shi:+.2f}]" if len(per_seed) > 1 else ""),
        f"- largest per-task loss against B1 (mean over seeds): {worst[1]} {worst[0]:+.2f}",
    ]
    tn = scores(lines, "T-N", "none")
    if tn:
        gap = [mean([v[t] for t in TASKS]) for v in ti.values()]
        gapn = [mean([v[t] for t in TASKS]) for v in tn.values()]
        out.append(f"- instruction gap T-I − T-N (mixed mixture): {mean(gap) - mean(gapn):+.2f}")
    return out


def ablation(lines: list[dict]) -> list[str]:
    out = ["| mixture | T-I | T-N | T-I − T-N |", "|---|---|---|---|"]
    for kind, (ri, rn) in {
        "mixed": ("T-I", "T-N"),
        "symmetric only": ("T-I-sym", "T-N-sym"),
        "asymmetric only": ("T-I-asym", "T-N-asym"),
    }.items():
        a, b = scores(lines, ri, "large"), scores(lines, rn, "none")
        # seed 1 where the mixed rows have more seeds, so the three gaps compare like with like
        a1, b1 = a.get(1), b.get(1)
        means = [mean([s[t] for t in TASKS]) if s else None for s in (a1, b1)]
        cells = ["-" if m is None else f"{m:.2f}" for m in means]
        gap = "not run yet" if means[0] is None or means[1] is None else f"{means[0] - means[1]:+.2f}"
        out.append(f"| {kind} (seed 1) | {cells[0]} | {cells[1]} | {gap} |")
    return out


def robustness(lines: list[dict]) -> list[str]:
    tables = ("large", "base", "xl", "generic")
    out = [
        "| model | "
        + " | ".join(f"instructor-{t}" if t != "generic" else '"Represent the text: "' for t in tables)
        + " | spread (max − min) |",
        "|---" * (len(tables) + 2) + "|",
    ]
    for row, seed in (("B1", None), ("T-I", 1)):
        vals = []
        for table in tables:
            s = scores(lines, row, table).get(seed)
            vals.append(mean([s[t] for t in TASKS]) if s else None)
        got = [v for v in vals if v is not None]
        spread = f"{max(got) - min(got):.2f}" if len(got) == len(tables) else "incomplete"
        label = row if seed is None else f"{row} (seed {seed})"
        out.append(
            f"| {label} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in vals) + f" | {spread} |"
        )
    return out


def plots(lines: list[dict], runs: Path, out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["(matplotlib missing: no plots)"]
    made = []
    # per-task bars with seed error bars
    fig, ax = plt.subplots(figsize=(13, 4.5))
    rows = [r for r in ("B0", "B1", "T-I", "T-N") if scores(lines, r, MAIN_TABLE[r])]
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        by_seed = scores(lines, row, MAIN_TABLE[row])
        ms = [mean([v[t] for v in by_seed.values()]) for t in TASKS]
        sd = [statistics.stdev([v[t] for v in by_seed.values()]) if len(by_seed) > 1 else 0 for t in TASKS]
        ax.bar([k + i * width for k in range(len(TASKS))], ms, width, yerr=sd, label=row, capsize=2)
    ax.set_xticks(
        [k + 0.4 - width / 2 for k in range(len(TASKS))], [SHORT.get(t, t) for t in TASKS], rotation=20
    )
    ax.set_ylabel("main score ×100")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "study-tasks.png", dpi=110)
    plt.close(fig)
    made.append("![per-task scores](results/study-tasks.png)")
    # dev score and loss against step, per sweep candidate
    sweep = sorted((out / "sweep").glob("*.train_log.jsonl"))
    if sweep:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
        for log_path in sweep:
            recs = load(log_path)
            ev = [(r["step"], r["eval"]["dev_mean"]) for r in recs if "eval" in r]
            ls = [(r["step"], r["loss"]) for r in recs if "loss" in r]
            if ev:
                a1.plot(*zip(*ev, strict=True), marker="o", label=log_path.name.split(".train_log")[0])
            if ls:
                k = 20
                smooth = [
                    (ls[i][0], mean([x for _, x in ls[max(0, i - k + 1) : i + 1]])) for i in range(len(ls))
                ]
                a2.plot(*zip(*smooth, strict=True), label=log_path.name.split(".train_log")[0])
        a1.set_xlabel("step")
        a1.set_ylabel("dev mean")
        a1.legend()
        a2.set_xlabel("step")
        a2.set_ylabel("training loss (mean of 20 steps)")
        a2.legend()
        fig.tight_layout()
        fig.savefig(out / "study-dev.png", dpi=110)
        plt.close(fig)
        made.append("![dev score and loss against step](results/study-dev.png)")
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "study")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = parser.parse_args()
    lines = load(args.out / "runs.jsonl")
    limits = sorted({str(d["limit"]) for d in lines})
    text = [
        "# Study tables (generated by scripts/study_report.py from runs.jsonl; do not edit)",
        "",
        f"Held-out tasks: {', '.join(TASKS)}. `--limit` per task: {', '.join(limits)}. "
        "Scores ×100; `a ± b` = mean ± standard deviation over seeds.",
        "",
        "## Held-out scores",
        "",
        *main_table(lines),
        "",
        "## T-I against B1",
        "",
        *claim(lines),
        "",
        "## Ablation: the instruction gap by mixture",
        "",
        *ablation(lines),
        "",
        "## Robustness to wording (held-out mean per instruction table)",
        "",
        *robustness(lines),
        "",
        *plots(lines, args.runs, args.out),
        "",
    ]
    (args.out / "study.md").write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))


if __name__ == "__main__":
    main()
