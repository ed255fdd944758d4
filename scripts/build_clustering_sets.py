"""Draw, once, the fixed-seed cluster sets of RedditClustering-local and StackExchangeClustering-local.

    python scripts/build_clustering_sets.py            # writes src/instructembed/data/*-clustering-sets.json

MTEB's way (`eval/clustering_sets.py`): 25 sets, 10-50 labels each, 100-1,000 titles per label, from
the TWEAC test split in `../shared/data`. StackExchange keeps English sites with at least 100 titles
(MTEB kept 121 English sites; the four non-English stackoverflow.com sites are left out). Seed 27.
The output is committed; re-running it with the same data rewrites the same bytes, and refuses to
overwrite a committed file that differs unless --force (a frozen held-out set is not re-drawn).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from instructembed.eval.clustering_sets import encode_sets, sample_sets  # noqa: E402

SEED = 27
NON_ENGLISH = {"es.stackoverflow.com", "pt.stackoverflow.com", "ja.stackoverflow.com", "ru.stackoverflow.com"}
CORPORA = {
    "reddit-clustering-sets.json": ("reddit_clustering_tweac", 0),
    "stackexchange-clustering-sets.json": ("stackexchange_clustering_tweac", 100),
}


def sizes_of(folder: Path, min_lines: int) -> dict[str, int]:
    out = {}
    for path in sorted((folder / "test").glob("*.txt")):
        label = path.name[: -len(".txt")]
        n = len(path.read_bytes().decode("utf-8").splitlines())
        if label not in NON_ENGLISH and n >= min_lines:
            out[label] = n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "instructembed" / "data")
    parser.add_argument("--force", action="store_true", help="overwrite committed sets that differ")
    args = parser.parse_args()
    for name, (folder, min_lines) in CORPORA.items():
        sizes = sizes_of(args.data_dir / folder, min_lines)
        sets = sample_sets(sizes, seed=SEED)
        meta = {
            "drawn_by": "scripts/build_clustering_sets.py",
            "source": f"../shared/data/{folder}/test (TWEAC, UKPLab/TWEAC-qa-agent-selection@ed4f0ca)",
            "seed": SEED,
            "rule": "25 sets; per set 10-50 labels uniformly, per label 100-1000 lines uniformly (capped)",
            "labels_available": len(sizes),
        }
        text = encode_sets(sets, sizes, meta)
        path = args.out / name
        if path.exists() and path.read_text(encoding="utf-8") != text and not args.force:
            raise SystemExit(f"{path} exists and differs: the frozen sets are not re-drawn (pass --force)")
        path.write_text(text, encoding="utf-8")
        total = sum(len(v) for one in sets for v in one.values())
        print(f"{path}: {len(sets)} sets, {total} titles, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
