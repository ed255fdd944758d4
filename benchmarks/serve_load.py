"""Load test for `instructembed serve` on loopback: throughput vs in-process `embed`, latency, memory.

    python benchmarks/serve_load.py --model all-MiniLM-L6-v2 --concurrency 16 64 --duration 20
    python benchmarks/serve_load.py --model all-MiniLM-L6-v2 --soak 10      # memory stays flat, nothing lost

The server runs in its own process (`python -m instructembed.server`), so its RSS is measured alone.
Every client loops for `--duration` seconds sending requests of `--items-per-request` inputs drawn
from a fixed corpus with mixed instructions (base64 responses, as the openai client asks for).
Throughput is compared with one in-process `Embedder.embed` call on the same items, run first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:  # openai>=3 ships the httpx2 fork; older stacks have httpx (same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTIONS = [
    None,
    "Represent the Science title:",
    "Represent the Wikipedia question for retrieving supporting documents:",
    "Represent the Wikipedia document for retrieval:",
]
WORDS = [
    "embedding",
    "server",
    "batch",
    "token",
    "budget",
    "instruction",
    "query",
    "document",
    "retrieval",
    "science",
    "title",
    "model",
    "vector",
    "cosine",
    "similarity",
    "latency",
    "throughput",
    "queue",
    "worker",
    "request",
    "client",
    "python",
    "numpy",
    "torch",
    "search",
    "passage",
    "answer",
    "question",
    "represent",
    "wikipedia",
    "sentence",
    "paragraph",
]


def corpus(size: int, seed: int = 0) -> list[dict[str, Any] | str]:
    """Inputs as the API takes them: plain strings and {instruction, text} objects, 5-60 words."""
    rng = random.Random(seed)
    out: list[dict[str, Any] | str] = []
    for _ in range(size):
        text = " ".join(rng.choices(WORDS, k=rng.randint(5, 60)))
        instruction = rng.choice(INSTRUCTIONS)
        out.append(text if instruction is None else {"instruction": instruction, "text": text})
    return out


def as_embed_input(item: dict[str, Any] | str) -> str | tuple[str, str]:
    return item if isinstance(item, str) else (item["instruction"], item["text"])


@dataclass
class Phase:
    name: str
    concurrency: int
    duration_s: float
    requests: int = 0
    items: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    items_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    vs_in_process: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    rss_samples_mb: list[float] = field(default_factory=list)
    in_process_items_per_s: float = 0.0
    model_busy: float = 0.0  # fraction of the phase the server's model thread spent in embed
    mean_batch_items: float = 0.0


def scrape(base_url: str) -> dict[str, float]:
    """The server's own counters: model seconds and batches (to tell queueing from model time)."""
    wanted = (
        "instructembed_batch_seconds_sum",
        "instructembed_batch_seconds_count",
        "instructembed_embedded_items_total",
    )
    out = {}
    for line in httpx.get(f"{base_url}/metrics").text.splitlines():
        name = line.split(" ")[0]
        if name in wanted:
            out[name] = float(line.split()[-1])
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [
        sys.executable,
        "-m",
        "instructembed.server",
        "--model",
        args.model,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    command += ["--max-queue-items", str(args.max_queue_items), "--max-wait-ms", str(args.max_wait_ms)]
    command += ["--batch-tokens", str(args.batch_tokens)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    for option in ("backend", "quantize", "dtype"):
        if getattr(args, option):
            command += [f"--{option}", getattr(args, option)]
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} during startup")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    process.kill()
    raise SystemExit("the server did not become healthy within 180 s")


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def run_phase(
    base_url: str, items: list[Any], phase: Phase, per_request: int, pid: int, sample_every: float
) -> list[float]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + phase.duration_s
    limits = httpx.Limits(max_connections=phase.concurrency, max_keepalive_connections=phase.concurrency)

    async def client(worker: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(worker)
        while time.perf_counter() < stop_at:
            start = rng.randrange(0, len(items) - per_request)
            batch = items[start : start + per_request]
            began = time.perf_counter()
            try:
                response = await http.post(
                    "/v1/embeddings", json={"input": batch, "encoding_format": "base64"}
                )
                status = str(response.status_code)
                if response.status_code == 200 and len(response.json()["data"]) != len(batch):
                    status = "short-answer"
            except httpx.HTTPError as error:
                status = type(error).__name__
            phase.requests += 1
            if status == "200":
                phase.items += len(batch)
                latencies.append(time.perf_counter() - began)
            else:
                phase.errors[status] = phase.errors.get(status, 0) + 1

    async def sampler() -> None:
        while time.perf_counter() < stop_at:
            phase.rss_samples_mb.append(round(rss_mb(pid), 1))
            await asyncio.sleep(sample_every)

    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(sampler(), *(client(i, http) for i in range(phase.concurrency)))
        elapsed = time.perf_counter() - started
    phase.items_per_s = phase.items / elapsed
    if latencies:
        phase.p50_ms = float(np.percentile(latencies, 50) * 1000)
        phase.p99_ms = float(np.percentile(latencies, 99) * 1000)
    return latencies


def load_embedder(args: argparse.Namespace) -> Any:
    from instructembed.embedder import Embedder

    options: dict[str, Any] = {"backend": args.backend, "quantize": args.quantize, "dtype": args.dtype}
    if args.threads is not None:
        options["threads"] = args.threads
    return Embedder.load(args.model, **options)


def in_process_items_per_s(embedder: Any, items: list[Any]) -> float:
    """One `embed` call on the same items the clients send: the best the server could do."""
    inputs = [as_embed_input(item) for item in items]
    started = time.perf_counter()
    embedder.embed(inputs)
    return len(inputs) / (time.perf_counter() - started)


def in_process_in_calls_of(embedder: Any, items: list[Any], call_items: int) -> float:
    """The same items embedded in calls of `call_items`: in-process speed at the server's batch size.

    With few clients the server cannot form batches as large as the baseline's one big call (only
    clients x items-per-request inputs are ever in flight); this separates that from server overhead.
    """
    inputs = [as_embed_input(item) for item in items]
    size = max(1, call_items)
    started = time.perf_counter()
    for start in range(0, len(inputs), size):
        embedder.embed(inputs[start : start + size])
    return len(inputs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per concurrency level")
    parser.add_argument("--items-per-request", type=int, default=8)
    parser.add_argument("--corpus", type=int, default=2048, help="distinct inputs the clients draw from")
    parser.add_argument(
        "--baseline-items", type=int, default=512, help="items in each in-process baseline call"
    )
    parser.add_argument("--max-queue-items", type=int, default=16384)
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="server: wait to fill a batch")
    parser.add_argument("--batch-tokens", type=int, default=16384, help="server: token budget per batch")
    parser.add_argument("--threads", type=int, default=None, help="threads for server and baseline")
    parser.add_argument(
        "--backend", default=None, help="torch (default), onnx or openvino: server and baseline"
    )
    parser.add_argument("--quantize", default=None, help="int8 on the onnx/openvino backends")
    parser.add_argument("--dtype", default=None, help="bfloat16 on the torch/openvino backends")
    parser.add_argument(
        "--soak", type=float, default=None, metavar="MINUTES", help="one long phase at the first concurrency"
    )
    parser.add_argument("--soak-tolerance-mb", type=float, default=64.0, help="allowed RSS growth in a soak")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    items = corpus(args.corpus)
    embedder = load_embedder(args)
    embedder.embed([as_embed_input(item) for item in items[:64]])  # warm up
    sample = items[: args.baseline_items]

    port = free_port()
    server = start_server(args, port)
    base_url = f"http://127.0.0.1:{port}"
    phases: list[Phase] = []
    try:
        warmup = Phase("warmup", 4, 3.0)
        asyncio.run(run_phase(base_url, items, warmup, args.items_per_request, server.pid, 1.0))
        levels = (
            [(f"soak {args.soak:g} min", args.concurrency[0], args.soak * 60)]
            if args.soak
            else [(f"load c={c}", c, args.duration) for c in args.concurrency]
        )
        for name, concurrency, duration in levels:
            phase = Phase(name, concurrency, duration)
            # The baseline is measured right before and after each phase (the machine is shared, its
            # speed drifts), while the server sits idle; the ratio uses their mean.
            before_baseline = in_process_items_per_s(embedder, sample)
            phase.rss_before_mb = round(rss_mb(server.pid), 1)
            before = scrape(base_url)
            phase_started = time.perf_counter()
            asyncio.run(
                run_phase(
                    base_url, items, phase, args.items_per_request, server.pid, 10.0 if args.soak else 2.0
                )
            )
            after = scrape(base_url)
            elapsed = time.perf_counter() - phase_started
            phase.rss_after_mb = round(rss_mb(server.pid), 1)
            batches = after["instructembed_batch_seconds_count"] - before["instructembed_batch_seconds_count"]
            phase.model_busy = (
                after["instructembed_batch_seconds_sum"] - before["instructembed_batch_seconds_sum"]
            ) / elapsed
            phase.mean_batch_items = (
                after["instructembed_embedded_items_total"] - before["instructembed_embedded_items_total"]
            ) / max(batches, 1)
            after_baseline = in_process_items_per_s(embedder, sample)
            baseline = (before_baseline + after_baseline) / 2
            phase.in_process_items_per_s = baseline
            phase.vs_in_process = phase.items_per_s / baseline
            same_size = in_process_in_calls_of(embedder, sample, round(phase.mean_batch_items))
            phases.append(phase)
            print(
                f"{name:>14}: {phase.items_per_s:7.1f} items/s = {phase.vs_in_process:5.1%} of in-process "
                f"({baseline:.1f} items/s) | "
                f"p50 {phase.p50_ms:7.1f} ms  p99 {phase.p99_ms:7.1f} ms | {phase.requests} requests, "
                f"errors {phase.errors or 0} | server RSS {phase.rss_before_mb:.0f} -> {phase.rss_after_mb:.0f} MB | "
                f"model busy {phase.model_busy:.0%}, {phase.mean_batch_items:.0f} items/batch | "
                f"{phase.items_per_s / same_size:.1%} of in-process calls of that size ({same_size:.1f} items/s)",
                flush=True,
            )
        metrics = httpx.get(f"{base_url}/metrics").text
        embedded = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("instructembed_embedded_items_total")
        )
    finally:
        server.terminate()
        server.wait(60)
    received = warmup.items + sum(p.items for p in phases)
    failed = sum(sum(p.errors.values()) for p in [warmup, *phases])
    print(f"server embedded {embedded:.0f} items; clients received {received}; failed requests: {failed}")
    if args.soak:
        # RSS swings by the size of one batch's activations, so compare like with like: the peak of
        # the last third against the peak of the first third, and the idle RSS before and after.
        soak = phases[0]
        samples = soak.rss_samples_mb
        third = max(len(samples) // 3, 1)
        peak_growth = max(samples[-third:]) - max(samples[:third])
        idle_growth = soak.rss_after_mb - soak.rss_before_mb
        lost = failed + int(embedded) - received
        print(f"soak: RSS samples every 10 s (MB) {samples}")
        print(
            f"soak: peak RSS growth (last third vs first third) {peak_growth:+.0f} MB; idle RSS growth "
            f"{idle_growth:+.0f} MB; failed or lost requests/items: {lost}"
        )
        if lost or peak_growth > args.soak_tolerance_mb or idle_growth > args.soak_tolerance_mb:
            raise SystemExit("soak FAILED: requests were lost or memory kept growing")
        print("soak OK: memory flat, no request lost")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "phases": [asdict(p) for p in phases]},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
