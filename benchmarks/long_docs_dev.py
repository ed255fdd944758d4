"""Long-document candidates on the SciFact *dev* split (issue 26): what should `index build` do by default?

Dev = the 400 training claims listed in benchmarks/data/scifact_dev_claims.txt (claims_train.csv, seeded,
no claim whose text is a test claim's) against the same 5,183 abstracts; the 300 test claims are never
read here. Every candidate's vectors are cached in --work, so scoring rules cost no embedding:

- truncate: each abstract embedded once, truncated to the window (what `eval` and `--no-chunk` do);
- chunk sets (only the documents over the window are cut; a short document is its head):
  legacy-B-O (windows of B text tokens from the start, O shared: the scheme before issue 26),
  head-B-O (the truncated document as chunk 0, windows after it), first-B-O (head + the document's
  first sentence, at most 32 tokens, prepended to every other window: `chunk_documents`' default),
  title-B-O (head + the title prepended instead: needs a title field), late-B-O (late chunking:
  the document embedded once at up to 512 positions, token states mean-pooled per window);
- doc scores from the head (the truncated document's vector) and the other chunks: max over all
  chunks, max(head, others - delta), alpha * head + (1 - alpha) * max, mean.

    nice -n 10 python benchmarks/long_docs_dev.py --work runs/long-docs > runs/long-docs.log 2>&1
    python benchmarks/long_docs_dev.py --work runs/long-docs --test-once   # once, after choosing

Prints one markdown row per (chunk set, rule): nDCG@10 on dev; writes <work>/dev-scores.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from instructembed import Embedder
from instructembed.batching import collate
from instructembed.chunking import HEAD_WEIGHT, ChunkSettings, Splitter, chunk_documents, token_windows
from instructembed.eval.instructions import load_instructions
from instructembed.eval.loaders import load_scifact
from instructembed.eval.retrieval import document_text, ranking_scores
from instructembed.eval.tasks import get_task
from instructembed.inputs import Item

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # index_quality's task instructions
DEV_IDS = Path(__file__).with_name("data") / "scifact_dev_claims.txt"
log = logging.getLogger("long_docs_dev")
#: Weights of the head in the blend rule (a first run had 0.25, 0.5, 0.75; the grid was refined on dev).
ALPHAS = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75)


def dev_claims(data_dir: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    train = load_scifact(data_dir, claims="train")
    ids = [line.strip() for line in DEV_IDS.read_text().splitlines() if line.strip() and line[0] != "#"]
    return {q: train.queries[q] for q in ids}, {q: train.qrels[q] for q in ids}


def cached(path: Path, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    start = time.perf_counter()
    out = make()
    np.savez(path, **out)
    log.info("%s: %.0f s", path.name, time.perf_counter() - start)
    return out


def prefixed_chunks(
    embedder: Embedder, instruction: str, texts: list[str], prefixes: list[str], budget: int, overlap: int
) -> dict[str, np.ndarray]:
    """Windows of each text (after the first) with `prefixes[i] + " "` in front, embedded."""
    splitter = Splitter(embedder.tokenizer, ChunkSettings(overlap=overlap, max_tokens=budget))
    base = splitter.budget(instruction)
    items, docs, idx = [], [], []
    for i, (text, prefix) in enumerate(zip(texts, prefixes, strict=True)):
        used = len(splitter._raw.encode(prefix, add_special_tokens=False).ids) + 1
        spans = splitter.split([text], [max(base - used, 2 * overlap + 8)])[0]
        for n, (s, e) in enumerate(spans):
            if n == 0:
                continue  # the head covers the start
            items.append(Item(instruction, f"{prefix} {text[s:e]}"))
            docs.append(i)
            idx.append(n)
    rows = embedder.tokenize([(it.instruction or "", it.text) for it in items])
    log.info("%d prefixed chunks, %d over the window", len(rows), sum(r.truncated for r in rows))
    return {"vectors": embedder.embed_tokenized(rows), "doc": np.asarray(docs), "chunk": np.asarray(idx)}


def library_chunks(
    embedder: Embedder, instruction: str, texts: list[str], settings: ChunkSettings
) -> dict[str, np.ndarray]:
    """`chunk_documents` as the index runs it; with a head, only the other chunks are embedded
    (the head is the truncated document, already in head.npz)."""
    batch = chunk_documents(embedder, [Item(instruction, t) for t in texts], settings)
    keep = [n for n, c in enumerate(batch.chunks) if not (settings.head and c.index == 0)]
    return {
        "vectors": embedder.embed_tokenized([batch.rows[n] for n in keep]),
        "doc": batch.doc_of_chunk()[keep],
        "chunk": np.asarray([batch.chunks[n].index for n in keep]),
    }


def late_chunks(
    model: str, instruction: str, texts: list[str], budget: int, overlap: int
) -> dict[str, np.ndarray]:
    """Late chunking: each text embedded once at up to 512 positions; windows of its text tokens
    mean-pooled (instruction and specials excluded, the last window keeps [SEP] as a row would),
    L2-normalised. Window 0 is the head with the whole document's context."""
    long = Embedder.load(model, max_seq_length=512)
    net = long.backend.model
    rows = long.tokenize([(instruction, t) for t in texts])
    splitter = Splitter(long.tokenizer, ChunkSettings(overlap=overlap))
    vecs, docs, idx = [], [], []
    order = np.argsort([len(r.ids) for r in rows])
    for start in range(0, len(order), 16):
        picked = order[start : start + 16].tolist()
        batch = collate(
            [rows[i] for i in picked], picked, long.tokenizer.pad_id, long.tokenizer.uses_type_ids
        )
        with torch.inference_mode():
            states = net.token_states(
                torch.from_numpy(batch.input_ids),
                torch.from_numpy(batch.attention_mask),
                None if batch.token_type_ids is None else torch.from_numpy(batch.token_type_ids),
            ).float()  # (B, T, H)
        for b, i in enumerate(picked):
            row = rows[i]
            first, last = row.n_masked, len(row.ids)  # pooled positions of a whole row: [first, last)
            n_text = last - 1 - first
            offsets = [(j, j + 1) for j in range(n_text)]  # token positions stand in for characters
            for n, (s, e) in enumerate(token_windows(offsets, budget, overlap)):
                lo, hi = first + s, first + e + (1 if e == n_text else 0)
                v = states[b, lo:hi].mean(0)
                vecs.append(torch.nn.functional.normalize(v, dim=0).numpy())
                docs.append(i)
                idx.append(n)
        if start % 800 == 0:
            log.info("late chunking: %d / %d documents", start, len(order))
    del splitter
    return {"vectors": np.stack(vecs).astype(np.float32), "doc": np.asarray(docs), "chunk": np.asarray(idx)}


def ndcg10(qrels: dict[str, dict[str, int]], qids: list[str], dids: list[str], scores: np.ndarray) -> float:
    top = np.argsort(-scores, axis=1)[:, :100]
    run = {q: {dids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(qids)}
    return round(100 * ranking_scores(qrels, run)["ndcg_at_10"], 2)


def doc_max(chunk_scores: np.ndarray, doc: np.ndarray, n_docs: int) -> np.ndarray:
    """(Q, C) chunk scores -> (Q, N) max per document (-inf where a document has none)."""
    out = np.full((chunk_scores.shape[0], n_docs), -np.inf, dtype=np.float32)
    np.maximum.at(out.T, doc, chunk_scores.T)
    return out


def doc_sum(chunk_scores: np.ndarray, doc: np.ndarray, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    out = np.zeros((chunk_scores.shape[0], n_docs), dtype=np.float64)
    np.add.at(out.T, doc, chunk_scores.T)
    return out, np.bincount(doc, minlength=n_docs)


def rules(
    head: np.ndarray, others_max: np.ndarray, others_sum: np.ndarray, others_n: np.ndarray
) -> dict[str, np.ndarray]:
    """Doc-score rules from head scores (Q, N) and the other chunks' max / sum / count."""
    has = others_n > 0
    out = {"max(head, others)": np.maximum(head, others_max)}
    for delta in (0.01, 0.02, 0.03, 0.05, 0.08):
        out[f"max(head, others - {delta})"] = np.maximum(head, others_max - delta)
    for alpha in ALPHAS:
        out[f"{alpha} head + {1 - alpha:.2f} max"] = np.where(
            has, alpha * head + (1 - alpha) * np.maximum(head, others_max), head
        )
    out["mean(head, others)"] = (head + others_sum) / (1 + others_n)
    return out


def check_task(name: str, data_dir: Path, model: str, work: Path) -> None:
    """The non-SciFact checks, in process from the library's chunking (the CLI runs of
    index_quality.py embed the same rows): truncation, the earlier default (windows from the start,
    max) and the new default (head + windows, HEAD_WEIGHT blend), plus max / mean over the new chunks."""
    from index_quality import MCTEST_DOC, MCTEST_QUERY, SUMMEVAL_DOC, SUMMEVAL_QUERY
    from instructembed.eval.loaders import load_summeval_reference_free
    from instructembed.train.medi_sources import read_mctest

    docs: list[str] = []
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    if name == "summeval":
        doc_instr, query_instr = SUMMEVAL_DOC, SUMMEVAL_QUERY
        for a, group in enumerate(load_summeval_reference_free(data_dir).groups):
            docs.append(group.references[0])
            for n, summary in enumerate(group.summaries):
                queries[f"a{a}-s{n}"], qrels[f"a{a}-s{n}"] = summary, {f"d{a}": 1}
    else:
        doc_instr, query_instr = MCTEST_DOC, MCTEST_QUERY
        for a, story in enumerate(read_mctest(data_dir)):
            docs.append(story.story)
            for n, statement in enumerate(story.correct):
                queries[f"s{a}-q{n}"], qrels[f"s{a}-q{n}"] = statement, {f"d{a}": 1}
    dids, qids = [f"d{i}" for i in range(len(docs))], list(queries)
    embedder = Embedder.load(model)
    q = cached(
        work / f"{name}-queries.npz",
        lambda: {"v": embedder.embed([queries[i] for i in qids], instruction=query_instr)},
    )["v"]
    head = cached(work / f"{name}-head.npz", lambda: {"v": embedder.embed([(doc_instr, t) for t in docs])})[
        "v"
    ]
    long_docs = np.asarray(
        [i for i, r in enumerate(embedder.tokenize([(doc_instr, t) for t in docs])) if r.truncated]
    )
    sub = [docs[i] for i in long_docs]
    new = cached(
        work / f"{name}-head-247-32.npz", partial(library_chunks, embedder, doc_instr, sub, ChunkSettings())
    )
    old = cached(
        work / f"{name}-legacy-247-32.npz",
        partial(library_chunks, embedder, doc_instr, sub, ChunkSettings(head=False)),
    )
    n = len(docs)
    hs = q @ head.T
    is_long = np.isin(np.arange(n), long_docs)[None, :]
    old_max = np.where(is_long, doc_max(q @ old["vectors"].T, long_docs[old["doc"]], n), hs)
    others = doc_max(q @ new["vectors"].T, long_docs[new["doc"]], n)
    all_max = np.maximum(hs, others)
    osum, ocount = doc_sum(q @ new["vectors"].T, long_docs[new["doc"]], n)
    out = {
        "documents": n,
        "long documents": len(long_docs),
        "chunks (new default)": n + len(new["vectors"]),
        "truncate": ndcg10(qrels, qids, dids, hs),
        "earlier default (windows from the start, max)": ndcg10(qrels, qids, dids, old_max),
        f"default ({HEAD_WEIGHT} head + {1 - HEAD_WEIGHT} max)": ndcg10(
            qrels, qids, dids, HEAD_WEIGHT * hs + (1 - HEAD_WEIGHT) * all_max
        ),
        "max(head, others)": ndcg10(qrels, qids, dids, all_max),
        "mean(head, others)": ndcg10(qrels, qids, dids, (hs + osum) / (1 + ocount[None, :])),
    }
    for key, value in out.items():
        print(f"| {name} | {key} | {value} |", flush=True)
    (work / f"{name}-scores.json").write_text(json.dumps(out, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--sets", default="legacy-247-32,first-247-32,head-247-32,title-247-32,late-247-32,first-128-16"
    )
    parser.add_argument("--cached-only", action="store_true", help="Score the chunk sets already embedded.")
    parser.add_argument(
        "--test-once",
        action="store_true",
        help="Score only truncation and the chosen default (head-247-32, head pooling with the library's "
        "HEAD_WEIGHT) on the 300 *test* claims, from the cached corpus vectors. Run once, after choosing.",
    )
    parser.add_argument(
        "--check",
        choices=["summeval", "mctest"],
        help="Instead of SciFact: truncation vs the earlier and the new default on SummEval-as-retrieval "
        "or MCTest-as-retrieval (the index_quality.py tasks), in process.",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.check:
        check_task(args.check, args.data_dir, args.model, args.work)
        return
    data = load_scifact(args.data_dir)  # the corpus; its claims (the test set) only with --test-once
    queries, qrels = dev_claims(args.data_dir)
    instructions = load_instructions("instructor-large").for_task(get_task("SciFact"))
    doc_instr, query_instr = instructions["corpus"], instructions["query"]
    if args.test_once:
        queries = {q: data.queries[q] for q in data.queries if data.qrels.get(q)}
        qrels = {q: data.qrels[q] for q in queries}
        args.sets, args.cached_only = "head-247-32", True
    dids = list(data.corpus)
    titles = [data.corpus[d][0] for d in dids]
    abstracts = [data.corpus[d][1] for d in dids]
    texts = [document_text(*data.corpus[d]) for d in dids]
    qids = list(queries)
    embedder = Embedder.load(args.model)
    q = cached(
        args.work / ("test-queries.npz" if args.test_once else "dev-queries.npz"),
        lambda: {"v": embedder.embed([queries[i] for i in qids], instruction=query_instr)},
    )["v"]
    head = cached(args.work / "head.npz", lambda: {"v": embedder.embed([(doc_instr, t) for t in texts])})["v"]
    long_docs = np.asarray(
        [i for i, r in enumerate(embedder.tokenize([(doc_instr, t) for t in texts])) if r.truncated]
    )
    log.info("%d documents, %d over the window", len(texts), len(long_docs))
    n = len(dids)
    head_scores = q @ head.T  # (Q, N)
    results: dict[str, float] = {"truncate": ndcg10(qrels, qids, dids, head_scores)}
    print(f"| truncate | {results['truncate']:.2f} |", flush=True)
    for name in args.sets.split(","):
        kind, budget, overlap = name.split("-")[0], int(name.split("-")[1]), int(name.split("-")[2])
        sub = [texts[i] for i in long_docs]
        make: Callable[[], dict[str, np.ndarray]]
        if kind in ("legacy", "head", "first"):
            settings = ChunkSettings(
                overlap=overlap,
                max_tokens=None if budget == 247 else budget,
                head=kind != "legacy",
                context="first-sentence" if kind == "first" else "none",
            )
            make = partial(library_chunks, embedder, doc_instr, sub, settings)
        elif kind == "title":
            sub_abstracts = [abstracts[i] for i in long_docs]
            sub_titles = [titles[i] for i in long_docs]
            make = partial(prefixed_chunks, embedder, doc_instr, sub_abstracts, sub_titles, budget, overlap)
        elif kind == "late":
            make = partial(late_chunks, args.model, doc_instr, sub, budget, overlap)
        else:
            raise SystemExit(f"unknown chunk set {name}")
        if args.cached_only and not (args.work / f"{name}.npz").exists():
            continue
        got = cached(args.work / f"{name}.npz", make)
        doc = long_docs[got["doc"]]
        scores = q @ got["vectors"].T  # (Q, C)
        if kind in ("legacy", "late"):
            # today's rule: max over every chunk (chunk 0 stands for the head); short documents: head
            all_max = np.where(
                np.isin(np.arange(n), long_docs)[None, :], doc_max(scores, doc, n), head_scores
            )
            results[f"{name}: max over chunks"] = ndcg10(qrels, qids, dids, all_max)
            s, c = doc_sum(scores, doc, n)
            results[f"{name}: mean over chunks"] = ndcg10(
                qrels, qids, dids, np.where(c > 0, s / np.maximum(c, 1), head_scores)
            )
        if kind == "late":
            late_head = np.where(
                np.isin(np.arange(n), long_docs)[None, :],
                doc_max(np.where(got["chunk"][None, :] == 0, scores, -np.inf), doc, n),
                head_scores,
            )
            results[f"{name}: late head only"] = ndcg10(qrels, qids, dids, late_head)
        keep = got["chunk"] > 0  # the other chunks beside the truncated head
        others = scores[:, keep]
        odoc = doc[keep]
        omax = doc_max(others, odoc, n)
        osum, ocount = doc_sum(others, odoc, n)
        if args.test_once:  # the default only: HEAD_WEIGHT * head + (1 - HEAD_WEIGHT) * max over all chunks
            blend = HEAD_WEIGHT * head_scores + (1 - HEAD_WEIGHT) * np.maximum(head_scores, omax)
            results[f"TEST {name}: {HEAD_WEIGHT} head + {1 - HEAD_WEIGHT} max (the default)"] = ndcg10(
                qrels, qids, dids, blend
            )
            results = {("TEST truncate" if k == "truncate" else k): v for k, v in results.items()}
            for key, value in results.items():
                print(f"| {key} | {value:.2f} |", flush=True)
            (args.work / "test-scores.json").write_text(json.dumps(results, indent=2) + "\n")
            return
        for rule, value in rules(head_scores, omax, osum, ocount[None, :]).items():
            results[f"{name}: {rule}"] = ndcg10(qrels, qids, dids, value)
        for key, value in results.items():
            if key.startswith(name + ":"):
                print(f"| {key} | {value:.2f} |", flush=True)
        (args.work / "dev-scores.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
