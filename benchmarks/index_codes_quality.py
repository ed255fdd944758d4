"""Retrieval quality of an index searched through int8 / binary codes + float rescoring, against the
same index searched as float: SciFact (instructor-large's SciFact instructions, documents truncated
at the model's window, as `index build --no-chunk`), nDCG@10 with `eval`'s pytrec_eval scorer.

    python benchmarks/index_codes_quality.py [--limit 50] [--rescore 40] [--work DIR]

In one process: the corpus is embedded once into an index (`Index.add`), then searched exactly,
then `Index.rebuild(AnnSettings(kind=int8|binary))` and searched again: the same vectors, so the
differences are the codes' alone. `--limit N` takes `eval --limit N`'s subset.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    from instructembed.chunking import ChunkSettings
    from instructembed.eval.instructions import load_instructions
    from instructembed.eval.loaders import load_scifact
    from instructembed.eval.retrieval import document_text, ranking_scores
    from instructembed.eval.tasks import get_task
    from instructembed.index import AnnKind, AnnSettings, Index

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--rescore", type=int, default=AnnSettings.rescore)
    parser.add_argument("--k", type=int, default=10, help="documents per query (nDCG@10 needs 10)")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="index-codes-"))
    data = load_scifact(args.data_dir).limited(args.limit)
    instructions = load_instructions("instructor-large").for_task(get_task("SciFact"))
    qrels = {q: rels for q, rels in data.qrels.items() if rels}
    queries = [q for q in data.queries if q in qrels]
    started = time.perf_counter()
    index = Index.create(
        work / "scifact",
        model=args.model,
        doc_instruction=instructions["corpus"],
        query_instruction=instructions["query"],
        chunking=ChunkSettings(enabled=False),
        store_text=False,
        exist_ok=True,
    )
    with index:
        index.add({"id": d, "text": document_text(*data.corpus[d])} for d in data.corpus)
        built_s = time.perf_counter() - started
        vectors = index.embedder.embed([data.queries[q] for q in queries], instruction=instructions["query"])
        out: dict[str, object] = {
            "documents": len(data.corpus),
            "queries": len(queries),
            "build_s": round(built_s),
        }
        for kind in (None, AnnKind.INT8, AnnKind.BINARY):
            index.rebuild(None if kind is None else AnnSettings(kind=kind, rescore=args.rescore))
            hits = index.search_vectors(vectors, k=args.k)
            run = {q: {h.id: h.score for h in row} for q, row in zip(queries, hits, strict=True)}
            out[kind.value if kind else "float32"] = round(100 * ranking_scores(qrels, run)["ndcg_at_10"], 2)
            out[f"{kind.value if kind else 'float32'}_search"] = index.info()["search"]
    out.update(limit=args.limit, rescore=args.rescore, load_average_1min=round(os.getloadavg()[0], 1))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
