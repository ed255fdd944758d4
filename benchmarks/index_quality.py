"""Retrieval quality through the index, by the commands a user runs, against `instructembed eval`.

1. SciFact (300 claims, 5,183 abstracts; instructor-large's SciFact instructions): `index build
   --no-chunk` + `search`, scored with the same pytrec_eval code as `eval`, against
   `instructembed eval --tasks SciFact` (nDCG@10 must agree within 0.1 point).
2. Long documents, side by side in one run: truncation (`index build --no-chunk`) against the
   default index (`index build` as a new user runs it: the truncated head + windows with the first
   sentence, searched with the default head pooling), plus the default index searched with max and
   mean pooling. On SciFact; on SummEval-as-retrieval (each of the 1,600 machine summaries is a
   query, the 100 source articles are the corpus, its own article is the one relevant document);
   and on MCTest-as-retrieval (`mctest`: each question's correct statement is a query, the 660
   mc160 + mc500 stories of all splits are the corpus, its own story is the relevant one).
   SummEval and MCTest instructions are ours: neither has any for this use.

    python benchmarks/index_quality.py [--work DIR] [--model all-MiniLM-L6-v2] [--skip-eval] \
        [--tasks scifact,summeval,mctest]

Every build and search is a subprocess running the real CLI (printed), so the numbers are what the
commands give. Results: a markdown table on stdout and <work>/results.json. Run again with the same
--work, finished builds are continued (nothing to add) instead of redone.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from instructembed.eval.instructions import load_instructions
from instructembed.eval.loaders import load_scifact, load_summeval_reference_free
from instructembed.eval.retrieval import document_text, ranking_scores
from instructembed.eval.tasks import get_task
from instructembed.train.medi_sources import read_mctest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"  # default of --data-dir
SUMMEVAL_DOC = "Represent the news article for retrieval: "
SUMMEVAL_QUERY = "Represent the news summary for retrieving its source article: "
MCTEST_DOC = "Represent the story for retrieval: "
MCTEST_QUERY = "Represent the statement for retrieving the story it is about: "


def cli(*args: object) -> float:
    """Run `instructembed ARGS` (niced), echo the command, return its wall time."""
    command = [sys.executable, "-m", "instructembed", *[str(a) for a in args]]
    print("$", shlex.join(["instructembed", *command[3:]]), flush=True)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    lower = max(0, 10 - os.nice(0))  # niced to 10 in all, however this script itself was started
    subprocess.run(["nice", "-n", str(lower), *command], check=True, env=env)
    return time.perf_counter() - start


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_run(path: Path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        run[row["query_id"]] = {h["id"]: float(h["score"]) for h in row["hits"]}
    return run


def evaluate(
    name: str,
    work: Path,
    corpus: list[dict[str, Any]],
    queries: list[dict[str, Any]],
    qrels: dict[str, dict[str, int]],
    doc_instruction: str | None,
    query_instruction: str | None,
    model: str,
    k: int,
    builds: tuple[str, ...] = ("default", "truncate"),
    vectors: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Build the default and a truncated index (`builds` picks), search them (the default one with
    each pooling), score nDCG@10; with `vectors` (int8, binary), also search the truncated index
    through those codes + float rescoring (`index rebuild --approximate KIND`: no second embedding)."""
    corpus_file = write_jsonl(work / f"{name}-corpus.jsonl", corpus)
    query_file = write_jsonl(work / f"{name}-queries.jsonl", queries)
    out: dict[str, Any] = {"documents": len(corpus), "queries": len(queries)}
    flags: dict[str, list[str]] = {"default": [], "truncate": ["--no-chunk"]}
    for label, chunk_flags in ((b, flags[b]) for b in builds):
        index = work / f"{name}-{label}"
        args = ["index", "build", "-i", corpus_file, "-o", index, "-m", model, "--no-progress", *chunk_flags]
        if doc_instruction:
            args += ["--instruction", doc_instruction]
        if query_instruction:
            args += ["--query-instruction", query_instruction]
        out[f"{label}_build_s"] = round(cli(*args), 1)
        info = json.loads(
            subprocess.run(
                [sys.executable, "-m", "instructembed", "index", "info", str(index), "--json"],
                check=True,
                capture_output=True,
                env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            ).stdout
        )
        out[f"{label}_info"] = {key: info[key] for key in ("documents", "chunks", "truncated_documents")}
        for pool in ("default", "max", "mean") if label == "default" else ("default",):
            hits = work / f"{name}-{label}-{pool}.jsonl"
            pool_flags = [] if pool == "default" else ["--pool", pool]
            cli(
                "search",
                "--index",
                index,
                "-i",
                query_file,
                "--k",
                k,
                *pool_flags,
                "-o",
                hits,
                "--no-progress",
            )
            scores = ranking_scores(qrels, read_run(hits))
            key = label if pool == "default" else f"default_{pool}"
            out[key] = round(100 * scores["ndcg_at_10"], 2)
        for kind in vectors if label == "truncate" else ():
            cli("index", "rebuild", index, "--approximate", kind)
            hits = work / f"{name}-{label}-{kind}.jsonl"
            cli("search", "--index", index, "-i", query_file, "--k", k, "-o", hits, "--no-progress")
            out[f"truncate_{kind}"] = round(100 * ranking_scores(qrels, read_run(hits))["ndcg_at_10"], 2)
            out[f"truncate_{kind}_minus_float"] = round(out[f"truncate_{kind}"] - out["truncate"], 2)
            cli("index", "rebuild", index, "--approximate", "none")
    return out


def scifact(
    work: Path,
    model: str,
    skip_eval: bool,
    data_dir: Path,
    limit: int | None,
    builds: tuple[str, ...] = ("default", "truncate"),
    vectors: tuple[str, ...] = (),
) -> dict[str, Any]:
    data = load_scifact(data_dir).limited(limit)  # eval --limit takes the same subset
    task = get_task("SciFact")
    instructions = load_instructions("instructor-large").for_task(task)
    qrels = {q: rels for q, rels in data.qrels.items() if rels}
    corpus = [{"id": d, "text": document_text(*data.corpus[d])} for d in data.corpus]
    queries = [{"id": q, "text": data.queries[q]} for q in data.queries if q in qrels]
    result = evaluate(
        "scifact",
        work,
        corpus,
        queries,
        qrels,
        instructions["corpus"],
        instructions["query"],
        model,
        100,
        builds,
        vectors,
    )
    result["instructions"] = instructions
    if not skip_eval:
        eval_dir = work / "eval"
        result["eval_s"] = round(
            cli(
                "eval",
                "--model",
                model,
                "--tasks",
                "SciFact",
                "--instructions",
                "instructor-large",
                "--data-dir",
                data_dir,
                "--out",
                eval_dir,
                *(["--limit", limit] if limit else []),
            ),
            1,
        )
        result["eval"] = json.loads((eval_dir / "SciFact.json").read_text(encoding="utf-8"))["main_score"]
        result["index_minus_eval"] = round(result["truncate"] - result["eval"], 3)
    return result


def summeval(work: Path, model: str, data_dir: Path) -> dict[str, Any]:
    data = load_summeval_reference_free(data_dir)
    corpus, queries, qrels = [], [], {}
    for a, group in enumerate(data.groups):
        corpus.append({"id": f"a{a}", "text": group.references[0]})
        for s, summary in enumerate(group.summaries):
            qid = f"a{a}-s{s}"
            queries.append({"id": qid, "text": summary})
            qrels[qid] = {f"a{a}": 1}
    return evaluate("summeval", work, corpus, queries, qrels, SUMMEVAL_DOC, SUMMEVAL_QUERY, model, 10)


def mctest(work: Path, model: str, data_dir: Path) -> dict[str, Any]:
    stories = read_mctest(data_dir)
    corpus, queries, qrels = [], [], {}
    for n, story in enumerate(stories):
        corpus.append({"id": f"s{n}", "text": story.story})
        for q, statement in enumerate(story.correct):
            qid = f"s{n}-q{q}"
            queries.append({"id": qid, "text": statement})
            qrels[qid] = {f"s{n}": 1}
    return evaluate("mctest", work, corpus, queries, qrels, MCTEST_DOC, MCTEST_QUERY, model, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work", type=Path, default=None, help="Where indexes and hits go (default: a temp dir)."
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--skip-eval", action="store_true", help="Do not run `instructembed eval` (slow).")
    parser.add_argument("--tasks", default="scifact,summeval,mctest")
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="SciFact: N evenly spaced queries, their relevant abstracts and 20 x N others (as eval --limit).",
    )
    parser.add_argument("--builds", default="default,truncate", help="SciFact: default and/or truncate.")
    parser.add_argument(
        "--vectors", default="", help="SciFact: also search the truncated index as int8 and/or binary codes."
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="index-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"model": args.model, "cpu": _cpu()}
    tasks = args.tasks.split(",")
    if "scifact" in tasks:
        results["SciFact"] = scifact(
            work,
            args.model,
            args.skip_eval,
            args.data_dir,
            args.limit,
            tuple(args.builds.split(",")),
            tuple(v for v in args.vectors.split(",") if v),
        )
        results["SciFact"]["limit"] = args.limit
    if "summeval" in tasks:
        results["SummEval-retrieval"] = summeval(work, args.model, args.data_dir)
    if "mctest" in tasks:
        results["MCTest-retrieval"] = mctest(work, args.model, args.data_dir)
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nmodel {args.model}; {results['cpu']}; work dir {work}\n")
    print(
        "| task (nDCG@10) | docs | truncated docs | default chunks | truncate | **default** | default, max "
        "| default, mean | eval |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in ("SciFact", "SummEval-retrieval", "MCTest-retrieval"):
        if name in results and "default_info" in results[name] and "truncate_info" in results[name]:
            r = results[name]
            print(
                f"| {name} | {r['documents']} | {r['truncate_info']['truncated_documents']} | "
                f"{r['default_info']['chunks']} | {r['truncate']:.2f} | **{r['default']:.2f}** "
                f"({r['default'] - r['truncate']:+.2f}) | {r['default_max']:.2f} | {r['default_mean']:.2f} | "
                f"{r.get('eval', '-')} |"
            )
    for kind in ("int8", "binary"):
        if f"truncate_{kind}" in results.get("SciFact", {}):
            r = results["SciFact"]
            print(f"SciFact truncated, {kind} codes + float rescoring: {r[f'truncate_{kind}']:.2f} "
                  f"({r[f'truncate_{kind}_minus_float']:+.2f} vs float {r['truncate']:.2f})")  # fmt: skip


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
