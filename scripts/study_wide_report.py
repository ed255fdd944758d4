"""Tables of the wider study (issue 27), computed from `docs/results/runs.jsonl` and the dev logs alone.

    python scripts/study_wide_report.py          # writes docs/results/study27.md

Only lines with `"study": "issue27"` count. Two means per row: over the first 11 held-out tasks
(continuity with issue 11) and over every frozen held-out task that row has a score for (the wider
mean, primary; the tasks it covers are named, because the issue-24 tasks join only once registered).
A row appears only when it has scores; nothing here chooses anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from study_report import TASKS as FIRST_11  # noqa: E402
from study_report import fmt, interval, mean  # noqa: E402

ROWS = ("B0", "B1", "T-I", "T-N", "T-I-sym", "T-N-sym", "T-I-asym", "T-N-asym")
MAIN_TABLE = {"B0": "none", "T-N": "none", "T-N-sym": "none", "T-N-asym": "none"}


def load(path: Path) -> list[dict]:
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [d for d in lines if d.get("study") == "issue27"]


def by_seed(
    lines: list[dict], row: str, mixture: str | None, table: str
) -> dict[int | None, dict[str, float]]:
    out: dict[int | None, dict[str, float]] = defaultdict(dict)
    for d in lines:
        if (d["row"], d["mixture"], d["table"]) == (row, mixture, table):
            out[d["seed"]][d["task"]] = d["main_score"]
    return dict(out)


def row_means(seeds: dict[int | None, dict[str, float]], tasks: list[str]) -> dict[int | None, float]:
    """Per seed, the mean over `tasks` (seeds missing any of them left out)."""
    return {s: mean([v[t] for t in tasks]) for s, v in seeds.items() if all(t in v for t in tasks)}


def main_table(lines: list[dict], wide: list[str]) -> list[str]:
    out = [
        "| row | mixture | seeds | 11-task mean | wider mean |" + "".join(f" {t} |" for t in wide),
        "|---" * (5 + len(wide)) + "|",
    ]
    for row in ROWS:
        for mixture in (None,) if row in ("B0", "B1") else ("wide", "v1"):
            seeds = by_seed(lines, row, mixture, MAIN_TABLE.get(row, "large"))
            if not seeds:
                continue
            m11 = list(row_means(seeds, list(FIRST_11)).values())
            mw = list(row_means(seeds, wide).values())
            cells = "".join(f" {fmt([v[t] for v in seeds.values() if t in v])} |" for t in wide)
            names = ",".join(str(s) for s in sorted(seeds, key=str)) if mixture else "-"
            out.append(f"| {row} | {mixture or '-'} | {names} | {fmt(m11)} | {fmt(mw)} |{cells}")
    return out


def claims(lines: list[dict], wide: list[str]) -> list[str]:
    b1 = row_means(by_seed(lines, "B1", None, "large"), wide).get(None)
    out = []
    for mixture in ("wide", "v1"):
        ti = row_means(by_seed(lines, "T-I", mixture, "large"), wide)
        if b1 is None or not ti:
            continue
        diffs = [v - b1 for v in ti.values()]
        m, lo, hi = interval(diffs)
        span = f"[{lo:+.2f}, {hi:+.2f}]" if len(diffs) > 1 else "n/a (one seed)"
        out.append(
            f"- T-I ({mixture}) − B1 on the wider mean: {m:+.2f} over {len(diffs)} seed(s); "
            f"95 % t-interval over seed means {span}"
        )
    for mixture, (ti_row, tn_row) in {
        "wide": ("T-I", "T-N"),
        "v1": ("T-I", "T-N"),
        "wide sym": ("T-I-sym", "T-N-sym"),
        "wide asym": ("T-I-asym", "T-N-asym"),
    }.items():
        mix = mixture.split()[0]
        ti = row_means(by_seed(lines, ti_row, mix, "large"), wide)
        tn = row_means(by_seed(lines, tn_row, mix, "none"), wide)
        common = sorted(set(ti) & set(tn), key=str)
        if common:
            gap = mean([ti[s] - tn[s] for s in common])
            out.append(f"- instruction gap (T-I − T-N), {mixture}: {gap:+.2f} (seeds {common})")
    return out or ["- no tuned row has finished yet"]


def wording(lines: list[dict], wide: list[str]) -> list[str]:
    out = ["| model | large | base | xl | generic | spread |", "|---|---|---|---|---|---|"]
    for row, mixture in (("B1", None), ("T-I", "wide")):
        got = {}
        for table in ("large", "base", "xl", "generic"):
            seeds = row_means(by_seed(lines, row, mixture, table), wide)
            if (None if row == "B1" else 1) in seeds:
                got[table] = seeds[None if row == "B1" else 1]
        if got:
            cells = " | ".join(
                f"{got[t]:.2f}" if t in got else "-" for t in ("large", "base", "xl", "generic")
            )
            spread = f"{max(got.values()) - min(got.values()):.2f}" if len(got) == 4 else "-"
            out.append(f"| {row}{' (wide, seed 1)' if mixture else ''} | {cells} | {spread} |")
    return out


def dev_table(sweep: Path) -> list[str]:
    out = [
        "| candidate | step | STS-B dev | TrecQA dev | mixture dev | dev mean | mean cosine |",
        "|---" * 7 + "|",
    ]
    base = sweep / "base-dev.json"
    if base.exists():
        for name, s in json.loads(base.read_text(encoding="utf-8")).items():
            out.append(
                f"| base, {name} | 0 | {s['stsb_dev']} | {s['trecqa_dev']} | {s['mixture_dev']} | "
                f"{s['dev_mean']} | {s['mean_cosine']} |"
            )
    for log_file in sorted(sweep.glob("*.train_log.jsonl")):
        for line in log_file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "eval" in record:
                e = record["eval"]
                out.append(
                    f"| {log_file.name.split('.train_log')[0]} | {record['step']} | {e['stsb_dev']} | "
                    f"{e['trecqa_dev']} | {e['mixture_dev']} | {e['dev_mean']} | {e['mean_cosine']} |"
                )
    return out


def mixture_table(report_file: Path) -> list[str]:
    """One line per task of a build report: what was kept, held back and dropped, and why."""
    if not report_file.exists():
        return [f"({report_file.name} not built yet)"]
    r = json.loads(report_file.read_text(encoding="utf-8"))
    out = [
        f"{r['kept']:,} training examples in {r['non_empty_tasks']} non-empty tasks; "
        f"{100 * r['asymmetric_share']:.1f} % asymmetric; label-defined tasks "
        f"{100 * r['label_batch_share_at_32']:.1f} % of batches of 32 (cap {r['label_cap']} per label task); "
        f"{r['held_out_texts']:,} distinct held-out texts checked; held-out set `{r['held_out']}`.",
        f"Same-texts groups ({r['same_texts_tasks']} tasks): "
        + "; ".join(f"{g}: {', '.join(names)}" for g, names in r["same_texts_groups"].items()),
        f"Tasks left empty: {', '.join(f'{n} ({why})' for n, why in r['dropped_tasks'].items()) or 'none'}.",
        "",
        "| task | kind | texts group | kept | dev | dropped: held-out text | dropped: dev text | capped | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in r["tasks"].items():
        kind = "label-defined" if t["label_defined"] else ("symmetric" if t["symmetric"] else "asymmetric")
        out.append(
            f"| {name} | {kind} | {t.get('texts') or '-'} | {t['kept']:,} | {t['dev']} | {t['dropped_held_out']:,} | "
            f"{t['dropped_dev']:,} | {t['capped']:,} | {t['source']} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = parser.parse_args()
    runs = args.out / "runs.jsonl"
    lines = load(runs) if runs.exists() else []
    frozen_file = args.out / "heldout27.json"
    frozen = json.loads(frozen_file.read_text(encoding="utf-8"))["tasks"] if frozen_file.exists() else []
    present = {d["task"] for d in lines}
    wide = [t for t in frozen if t in present]
    absent = [t for t in frozen if t not in present]
    text = [
        "# Wider study tables (generated by scripts/study_wide_report.py from runs.jsonl; do not edit)",
        "",
        f"Wider mean over {len(wide)} task(s): {', '.join(wide) or '-'}.",
        f"Frozen but without scores yet: {', '.join(absent) or '-'}.",
        "",
        "## The mixtures (both decontaminated against the wider held-out set)",
        "",
        "### wide",
        "",
        *mixture_table(args.out / "medi-wide.report27.json"),
        "",
        "### v1 (issue 11's tasks)",
        "",
        *mixture_table(args.out / "medi-v1.report27.json"),
        "",
        "## Dev sweep (seed 1, wide mixture; dev data only)",
        "",
        *dev_table(args.out / "sweep27"),
        "",
        "## Held-out rows",
        "",
        *main_table(lines, wide),
        "",
        *claims(lines, wide),
        "",
        "## Wording spread (wider mean)",
        "",
        *wording(lines, wide),
        "",
    ]
    (args.out / "study27.md").write_text("\n".join(text), encoding="utf-8")
    print(f"wrote {args.out / 'study27.md'} ({len(lines)} issue-27 lines of runs.jsonl)")


if __name__ == "__main__":
    main()
