"""What `--batch-sampler no-duplicates` changes in the batches of real training sets (no model, no training).

For each set: rows that share a key with another row of their batch (false negatives for it), per row,
under `random` and `no-duplicates`; the batches per epoch and how many are smaller than the batch.
Keys are what the sampler uses: query and positive texts for pairs, the label for labelled texts.

    python benchmarks/no_duplicates_batches.py --data-dir ../shared/data --batch 32 --epochs 3 \
        [--scifact-pairs runs/scifact-data/train.csv] [--out docs/results/no-duplicates-batches.json]

TrecQA: every (question, correct answer) of `trecqa_wang/train.csv` (the run script's split holds out
dev questions first, so its numbers differ a little); Banking77: every (text, intent) of
`banking77/train.csv`; SciFact: the pairs `benchmarks/finetune_scifact_data.py` writes.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from instructembed.train.data import NoDuplicatesBatchSampler, TaskBatchSampler


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _shared_per_row(plan: list[tuple[str, np.ndarray]], keys: list[tuple[str, ...]]) -> float:
    """Mean over rows of the number of other rows in its batch sharing one of its keys."""
    total = rows = 0
    for _, batch in plan:
        for i in batch:
            mine = set(keys[int(i)])
            total += sum(bool(mine & set(keys[int(j)])) for j in batch if j != i)
            rows += 1
    return total / max(rows, 1)


def measure(name: str, keys: list[tuple[str, ...]], batch: int, epochs: int) -> dict[str, object]:
    tasks = [name] * len(keys)
    random_sampler = TaskBatchSampler(tasks, batch, seed=42)
    nodup = NoDuplicatesBatchSampler(tasks, keys, batch, seed=42)
    out: dict[str, object] = {"rows": len(keys), "distinct_keys": len({k for ks in keys for k in ks})}
    out["largest_key_rows"] = max(Counter(k for ks in keys for k in set(ks)).values())
    per_epoch = []
    for epoch in range(epochs):
        r, n = random_sampler.epoch_plan(epoch), nodup.epoch_plan(epoch)
        sizes = [len(b) for _, b in n]
        per_epoch.append(
            {
                "random": {
                    "batches": len(r),
                    "rows_used": sum(len(b) for _, b in r),
                    "sharing_rows_per_row": round(_shared_per_row(r, keys), 3),
                },
                "no_duplicates": {
                    "batches": len(n),
                    "rows_used": sum(sizes),
                    "smaller_batches": sum(s < batch for s in sizes),
                    "smaller_sizes": sorted(s for s in sizes if s < batch),
                    "sharing_rows_per_row": round(_shared_per_row(n, keys), 3),
                },
            }
        )
    out["epochs"] = per_epoch
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--scifact-pairs", type=Path, default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    sets: dict[str, list[tuple[str, ...]]] = {
        "trecqa": [
            (r["qtext"], r["atext"])
            for r in _csv(args.data_dir / "trecqa_wang" / "train.csv")
            if r["label"] == "1"
        ],
        "banking77": [(r["category"],) for r in _csv(args.data_dir / "banking77" / "train.csv")],
    }
    if args.scifact_pairs is not None:
        sets["scifact"] = [(r["question"], r["passage"]) for r in _csv(args.scifact_pairs)]
    from instructembed.package_data import source_commit

    report: dict[str, object] = {
        "command": "python " + " ".join(sys.argv),
        "git_commit": source_commit(),
        "batch": args.batch,
        "seed": 42,
        "sets": {name: measure(name, keys, args.batch, args.epochs) for name, keys in sets.items()},
    }
    text = json.dumps(report, indent=1) + "\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
