"""Ray's overhead at equal resources, and per-actor throughput by precision, for docs/scale.md.

Passages are SciFact abstracts from ../shared/data cut to their first ~200 tokens, embedded with an
instruction by the packaged all-MiniLM-L6-v2. Two measurements, in one process, alternating:

1. plain `Embedder.embed` with 1 and 2 threads for fp32 (torch), bf16 (torch) and int8 (ONNX
   Runtime, dynamic): what one actor with that many CPUs does, the per-actor figure of the sizing model;
2. the `embed --engine ray` job (`run_job`) on a local Ray runtime with 2 CPUs, as 1 actor x 2
   threads and 2 actors x 1 thread, against plain fp32 embed with 2 threads: the same texts and
   the same threads in total. Each job runs on N and 3N passages (one shard per N/4), so the
   marginal rate (2N passages / the extra seconds) leaves out the fixed start-up (actors, model
   loads, weight hashing) that a long job amortises; the end-to-end rate on 3N is printed too.

    .venv/bin/python benchmarks/scale_throughput.py [--passages 400] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from instructembed import Embedder
from instructembed.eval.loaders import load_scifact
from instructembed.scale.batches import ModelOptions
from instructembed.scale.job import JobConfig, run_job

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INSTRUCTION = "Represent the scientific paragraph for retrieval: "
MODEL = "all-MiniLM-L6-v2"
PRECISIONS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "bf16": {"dtype": "bfloat16"},
    "int8": {"backend": "onnx", "quantize": "int8"},
}


def passages(n: int, words: int = 150) -> list[str]:
    corpus = load_scifact(DATA).corpus
    texts = [" ".join(abstract.split()[:words]) for _, abstract in list(corpus.values())[:n]]
    if len(texts) < n:
        raise SystemExit(f"SciFact has only {len(texts)} abstracts")
    return texts


def plain_rate(texts: list[str], threads: int, repeats: int, **load: Any) -> float:
    model = Embedder.load(MODEL, threads=threads, **load)
    model.embed(texts[:32], instruction=INSTRUCTION)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.embed(texts, instruction=INSTRUCTION)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def write_shards(texts: list[str], directory: Path, per_shard: int) -> None:
    directory.mkdir(parents=True)
    for s in range(0, len(texts), per_shard):
        with (directory / f"part-{s // per_shard:03d}.jsonl").open("w", encoding="utf-8") as f:
            for i, text in enumerate(texts[s : s + per_shard], start=s):
                f.write(json.dumps({"id": str(i), "text": text}) + "\n")


def job_seconds(texts: list[str], actors: int, cpus: int, per_shard: int, root: Path) -> float:
    run = Path(tempfile.mkdtemp(dir=root))
    write_shards(texts, run / "in", per_shard)
    config = JobConfig(
        str(run / "in"),
        run / "out",
        ModelOptions(MODEL),
        instruction=INSTRUCTION,
        actors=actors,
        cpus_per_actor=cpus,
    )
    start = time.perf_counter()
    report = run_job(config)
    seconds = time.perf_counter() - start
    if report.rows != len(texts):
        raise SystemExit(f"the job embedded {report.rows} rows of {len(texts)}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=400, help="N: jobs run on N and 3N passages")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-precisions", action="store_true")
    args = parser.parse_args()
    n = args.passages
    texts = passages(3 * n)
    probe = Embedder.load(MODEL)
    tokens = probe.token_counts(texts, instruction=INSTRUCTION)
    text_tokens = sum(tokens) / len(tokens)
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs")
    print(f"{len(texts)} passages, {text_tokens:.0f} tokens each on average (instruction included)\n")

    if not args.skip_precisions:
        print("per-actor throughput, plain Embedder.embed (passages/s)")
        print(f"{'precision':<10} {'1 thread':>10} {'2 threads':>10}")
        for name, load in PRECISIONS.items():
            one = plain_rate(texts[:n], 1, args.repeats, **load)
            two = plain_rate(texts[:n], 2, args.repeats, **load)
            print(f"{name:<10} {one:>10.1f} {two:>10.1f}")
        print()

    import ray

    ray.init(num_cpus=2, object_store_memory=250 * 1024**2, include_dashboard=False, log_to_driver=False)
    root = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    per_shard = max(1, n // 4)
    layouts = {"ray 1 actor x 2 threads": (1, 2), "ray 2 actors x 1 thread": (2, 1)}
    plain: list[float] = []
    small: dict[str, list[float]] = {k: [] for k in layouts}
    big: dict[str, list[float]] = {k: [] for k in layouts}
    for _ in range(args.repeats):  # alternate, so a noisy neighbour hits every row alike
        plain.append(len(texts) / plain_rate(texts, 2, 1))
        for name, (actors, cpus) in layouts.items():
            small[name].append(job_seconds(texts[:n], actors, cpus, per_shard, root))
            big[name].append(job_seconds(texts, actors, cpus, per_shard, root))
    ray.shutdown()

    base = len(texts) / min(plain)
    print(f"Ray against plain embed, 2 threads in total, fp32 ({n} and {3 * n} passages)")
    print(f"{'run':<26} {'marginal/s':>11} {'vs plain':>9} {'end-to-end/s':>13} {'vs plain':>9}")
    print(f"{'plain embed, 2 threads':<26} {base:>11.1f} {1:>9.0%} {base:>13.1f} {1:>9.0%}")
    for name in layouts:
        marginal = 2 * n / (min(big[name]) - min(small[name]))
        whole = len(texts) / min(big[name])
        print(f"{name:<26} {marginal:>11.1f} {marginal / base:>9.0%} {whole:>13.1f} {whole / base:>9.0%}")


if __name__ == "__main__":
    main()
