"""Write TrecQA's TRAIN split as a user would have it: triplets JSONL with the natural hard negatives.

    python benchmarks/finetune_trecqa_data.py --data-dir ../shared/data --out runs/trecqa-data

Read with the evaluator's own loader (`eval.loaders.load_trecqa`: questions grouped by text,
duplicate candidates merged, max label), from `trecqa_wang/train.csv` only:

- triplets.jsonl: one row per (question, correct answer sentence) of the training questions,
  {"question_id", "question", "answer", "negatives": [the question's incorrect candidates]} --
  what `train --shape triplets --query-field question --positive-field answer --negative-field
  negatives` reads (each epoch draws one of the row's negatives, seeded);
- dev.jsonl: the same rows for a seeded 10 % of the questions (by question, never split across
  train and dev); with `--dev-split official`, TrecQA's own dev split (`dev.csv`, 81 questions)
  instead and every usable training question trains -- 10 % of 78 usable training questions is
  8 questions, a noisy dev to choose a step on. Read by `train --eval` in two ways: as (question,
  answer) pairs ranking the pool `dev_corpus.jsonl` (retrieval: nDCG@10), or with `--eval-rerank`
  each question ranking its own candidates (MAP, as the TrecQA-local test is scored);
- dev_corpus.jsonl: every candidate sentence of the dev questions ({"id", "text"}), the pool the
  retrieval reading of dev searches.

Questions without a correct candidate are dropped (MTEB's rule, as the test drops them), so are
questions with no incorrect candidate (a triplet needs one) and any training question whose text
(case and spacing folded) is a test question (`split.json` counts them, and the training
candidate sentences that are test candidates). The test is `instructembed eval --tasks TrecQA-local`
on `trecqa_wang/test.csv`, scored once per model. Files go outside the repository (never commit
data); nothing here chooses a setting.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from finetune_scifact_data import split_parser  # benchmarks/ is on sys.path when run as a script
from instructembed.eval.loaders import load_trecqa
from instructembed.eval.records import RerankingQuery


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _rows(ids: list[int], queries: list[RerankingQuery]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in ids:
        q = queries[i]
        negatives = [c for c, label in zip(q.candidates, q.labels, strict=True) if label == 0]
        for c, label in zip(q.candidates, q.labels, strict=True):
            if label > 0:
                out.append({"question_id": i, "question": q.query, "answer": c, "negatives": negatives})
    return out


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    parser = split_parser(__doc__)
    parser.add_argument(
        "--dev-split",
        choices=("holdout", "official"),
        default="holdout",
        help="dev = a seeded share of the training questions (default) or TrecQA's dev.csv",
    )
    args = parser.parse_args()
    train = list(load_trecqa(args.data_dir, "train").queries)
    test_queries = load_trecqa(args.data_dir, "test").queries
    test = {_key(q.query) for q in test_queries}
    test_candidates = {c for q in test_queries for c in q.candidates}  # reported, not dropped
    overlap = [i for i, q in enumerate(train) if _key(q.query) in test]
    no_positive = [i for i, q in enumerate(train) if not any(label > 0 for label in q.labels)]
    no_negative = [
        i for i, q in enumerate(train) if i not in no_positive and all(label > 0 for label in q.labels)
    ]
    drop = set(overlap) | set(no_positive) | set(no_negative)
    kept = [i for i in range(len(train)) if i not in drop]
    if args.dev_split == "official":
        dev_queries = [
            q
            for q in load_trecqa(args.data_dir, "dev").queries
            if any(label > 0 for label in q.labels)
            and not all(label > 0 for label in q.labels)
            and _key(q.query) not in test
        ]
        dev_ids, train_ids = list(range(len(dev_queries))), kept
    else:
        random.Random(args.seed).shuffle(kept)
        n_dev = round(args.dev_share * len(kept))
        dev_ids, train_ids = sorted(kept[:n_dev]), sorted(kept[n_dev:])
        dev_queries = train
    args.out.mkdir(parents=True, exist_ok=True)
    train_rows, dev_rows = _rows(train_ids, train), _rows(dev_ids, dev_queries)
    _write_jsonl(args.out / "triplets.jsonl", train_rows)
    _write_jsonl(args.out / "dev.jsonl", dev_rows)
    pool = list(dict.fromkeys(c for i in dev_ids for c in dev_queries[i].candidates))
    _write_jsonl(args.out / "dev_corpus.jsonl", [{"id": str(n), "text": t} for n, t in enumerate(pool)])
    counts = {
        "train_questions_total": len(train),
        "test_questions_total": len(test),
        "train_questions_in_test": len(overlap),
        "train_candidates_in_test": sum(c in test_candidates for i in train_ids for c in train[i].candidates),
        "dropped_no_positive": len(no_positive),
        "dropped_no_negative": len(no_negative),
        "train": {"questions": len(train_ids), "triplets": len(train_rows)},
        "dev": {
            "questions": len(dev_ids),
            "positives": len(dev_rows),
            "candidates": sum(len(dev_queries[i].candidates) for i in dev_ids),
        },
        "dev_split": args.dev_split,
        "dev_corpus": len(pool),
        "seed": args.seed,
    }
    (args.out / "split.json").write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
