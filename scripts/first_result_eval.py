"""Evaluate the base and fine-tuned models of the first result on the held-out tasks.

    python scripts/first_result_eval.py --runs runs/first-result --base all-MiniLM-L6-v2 --data-dir ../shared/data

Rows: base without instructions (how all-MiniLM-L6-v2 is meant to be used), base with INSTRUCTOR's
instructions, instruction-tuned with instructions, and the no-instruction ablation without them
(as the paper evaluates it). Writes `<runs>/eval/<row>/<task>.json` and `<runs>/scores.md`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from instructembed.embedder import EmbedConfig, Embedder
from instructembed.eval.runner import run

HELD_OUT_TASKS = [
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
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--base", default="all-MiniLM-L6-v2")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--tasks", default=",".join(HELD_OUT_TASKS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tasks = args.tasks.split(",")
    rows = [
        ("base, no instructions", args.base, "none"),
        ("base, instructions", args.base, "instructor-large"),
        ("instruction-tuned, instructions", str(args.runs / "instructions" / "model"), "instructor-large"),
        ("no-instruction ablation, no instructions", str(args.runs / "no-instructions" / "model"), "none"),
    ]
    table: dict[str, dict[str, float]] = {}
    config = EmbedConfig(token_budget=65536, max_batch_size=512)
    for label, model, instructions in rows:
        embedder = Embedder.load(model, device=args.device, config=config)
        slug = label.replace(", ", "_").replace(" ", "-")
        results = run(
            embedder,
            tasks,
            data_dir=args.data_dir,
            instructions=instructions,
            limit=args.limit,
            model_name=model,
            out_dir=args.runs / "eval" / slug,
            command=" ".join(sys.argv),
            progress=False,
        )
        table[label] = {r.task: r.main_score for r in results}
    names = [t for t in tasks if all(t in s for s in table.values())]
    lines = ["| model | " + " | ".join(names) + " | mean |", "|---" * (len(names) + 2) + "|"]
    for label, scores in table.items():
        values = [scores[t] for t in names]
        mean = sum(values) / len(values)
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {mean:.2f} |")
    text = "\n".join(lines) + "\n"
    (args.runs / "scores.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
