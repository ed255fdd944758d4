"""Write Banking77's train split as a user would have it: labelled texts (text, label) CSVs.

    python benchmarks/finetune_banking77_data.py --data-dir ../shared/data --out runs/banking77-data

Read with the evaluator's own loader (`eval.loaders._banking77_split`, labels by `categories.json`),
from `banking77/train.csv` only:

- train.csv: (text, label) rows, what `train --shape labelled` reads (each text is paired with its
  nearest same-label text and given the nearest other-label text as negative);
- dev.csv: a seeded, stratified 10 % of the training texts (per intent, at least 2, so the dev
  probe's stratified folds exist), what `train --eval` scores as 5-fold probe accuracy.

Training texts that also occur in `test.csv` (case and spacing folded) are dropped, and counted.
The test is `instructembed eval --tasks Banking77Classification` (MTEB's protocol: the probe
learns from 8 texts per intent of the *whole* train split -- the fine-tuned model has seen those
texts, as MTEB's protocol allows -- and is scored on the 3,080 test texts), once per model.
Files go outside the repository (never commit data); nothing here chooses a setting.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from pathlib import Path

from finetune_scifact_data import split_parser  # benchmarks/ is on sys.path when run as a script
from instructembed.eval.loaders import _banking77_split


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def main() -> None:
    parser = split_parser(__doc__)
    args = parser.parse_args()
    names = json.loads((args.data_dir / "banking77" / "categories.json").read_text(encoding="utf-8"))
    texts, labels = _banking77_split(args.data_dir, "train")
    test_texts, _ = _banking77_split(args.data_dir, "test")
    in_test = {_key(t) for t in test_texts}
    by_label: dict[str, list[str]] = defaultdict(list)
    overlap = 0
    for text, label_id in zip(texts, labels, strict=True):
        if _key(text) in in_test:
            overlap += 1
            continue
        by_label[names[label_id]].append(text)
    rng = random.Random(args.seed)
    train_rows: list[tuple[str, str]] = []
    dev_rows: list[tuple[str, str]] = []
    for label in sorted(by_label):  # stratified: the same share of every intent
        group = by_label[label]
        rng.shuffle(group)
        n_dev = max(2, round(args.dev_share * len(group)))
        dev_rows.extend((t, label) for t in group[:n_dev])
        train_rows.extend((t, label) for t in group[n_dev:])
    rng.shuffle(train_rows)
    rng.shuffle(dev_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "train.csv", train_rows)
    _write(args.out / "dev.csv", dev_rows)
    dev_per_label = [sum(1 for _, lab in dev_rows if lab == name) for name in by_label]
    counts = {
        "train_texts_total": len(texts),
        "train_texts_in_test": overlap,
        "labels": len(by_label),
        "train": len(train_rows),
        "dev": len(dev_rows),
        "dev_per_label_min_max": [min(dev_per_label), max(dev_per_label)],
        "seed": args.seed,
    }
    (args.out / "split.json").write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
