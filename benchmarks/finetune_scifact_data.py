"""Write SciFact as a user would have it: (claim, abstract) pair CSVs and a corpus JSONL.

    python benchmarks/finetune_scifact_data.py --data-dir ../shared/data --out runs/scifact-data

- corpus.jsonl: the 5,183 abstracts, {"id", "text"} with text = title + " " + abstract (how the
  SciFact evaluation joins them, `eval.retrieval.document_text`);
- train.csv / dev.csv: the 809 training claims (claims_train.csv), one row per (claim, cited
  abstract), split by claim id: a seeded 10 % of the claims with a cited abstract is dev;
- dev_corpus.jsonl: the abstracts dev claims cite plus a seeded 1,000 others -- a smaller corpus that
  keeps dev scoring affordable on a shared 2-core CPU (dev only chooses; test uses the whole corpus);
- test.csv: the 300 claims of claims_validation.csv (BEIR's SciFact test), one row per cited abstract.

The files are written outside the repository (never commit data). Nothing here chooses a setting.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from pathlib import Path

from instructembed.eval.loaders import _zip_csv, load_scifact
from instructembed.eval.retrieval import document_text


def _claims(zip_path: Path, member: str) -> dict[str, tuple[str, list[str]]]:
    out: dict[str, tuple[str, list[str]]] = {}
    for _, row in _zip_csv(zip_path, member):
        docs = re.findall(r"\d+", row.get("cited_doc_ids") or "")
        _, cited = out.setdefault(row["id"], (row["claim"], []))
        cited.extend(d for d in docs if d not in cited)
    return out


def _write(
    path: Path, claims: dict[str, tuple[str, list[str]]], ids: list[str], corpus: dict[str, str]
) -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["claim_id", "question", "passage"])
        for cid in ids:
            claim, docs = claims[cid]
            for doc in docs:
                writer.writerow([cid, claim, corpus[doc]])
                n += 1
    return n


def split_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every fine-tuning data script shares: data folder, output, dev share, seed."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dev-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main() -> None:
    parser = split_parser(__doc__)
    parser.add_argument("--dev-corpus-others", type=int, default=1000)
    args = parser.parse_args()
    zip_path = args.data_dir / "scifact" / "scifact.zip"
    data = load_scifact(args.data_dir)
    corpus = {doc: document_text(*v) for doc, v in data.corpus.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for doc, text in corpus.items():
            f.write(json.dumps({"id": doc, "text": text}, ensure_ascii=False) + "\n")
    train = _claims(zip_path, "claims_train.csv")
    with_docs = sorted((c for c in train if train[c][1]), key=int)
    random.Random(args.seed).shuffle(with_docs)
    n_dev = round(args.dev_share * len(with_docs))
    dev_ids, train_ids = sorted(with_docs[:n_dev], key=int), sorted(with_docs[n_dev:], key=int)
    cited = {d for c in dev_ids for d in train[c][1]}
    others = sorted(d for d in corpus if d not in cited)
    keep = cited | set(random.Random(args.seed).sample(others, min(args.dev_corpus_others, len(others))))
    with (args.out / "dev_corpus.jsonl").open("w", encoding="utf-8") as f:
        for doc in sorted(keep, key=int):
            f.write(json.dumps({"id": doc, "text": corpus[doc]}, ensure_ascii=False) + "\n")
    test = _claims(zip_path, "claims_validation.csv")
    test_ids = sorted((c for c in test if test[c][1]), key=int)
    counts = {
        "train_claims_total": len(train),
        "train_claims_with_docs": len(with_docs),
        "train": [len(train_ids), _write(args.out / "train.csv", train, train_ids, corpus)],
        "dev": [len(dev_ids), _write(args.out / "dev.csv", train, dev_ids, corpus)],
        "test": [len(test_ids), _write(args.out / "test.csv", test, test_ids, corpus)],
        "corpus": len(corpus),
        "dev_corpus": len(keep),
    }
    (args.out / "split.json").write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
