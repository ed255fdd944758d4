"""Load test for `instructembed serve` on loopback: throughput vs in-process `embed`, latency, memory.

    python benchmarks/serve_load.py --model all-MiniLM-L6-v2 --concurrency 16 64 --duration 20
    python benchmarks/serve_load.py --concurrency 16 --microbatch-overhead-tokens auto 1000000000  # A/B
    python benchmarks/serve_load.py --concurrency 16 --side-by-side    # one model alone vs two at once
    python benchmarks/serve_load.py --model all-MiniLM-L6-v2 --soak 10      # memory stays flat, nothing lost

The server runs in its own process (`python -m instructembed.server`), so its RSS is measured alone.
Every client loops for `--duration` seconds sending requests of `--items-per-request` inputs drawn
from a fixed corpus with mixed instructions (base64 responses, as the openai client asks for).
Throughput is compared with in-process `Embedder.embed` on the same inputs: the whole corpus the
clients draw from, in calls of `--baseline-items` (one call by default), measured right before and
right after each phase, in this process, while the servers sit idle.

Several `--microbatch-overhead-tokens` (or `--max-wait-ms`) values start one server each; their
phases alternate, each between its own baselines, so a shared machine's drift hits all alike. `--side-by-side` serves the
model twice in one server (names `a` and `b`, each with its own queue and model thread) and measures
`a` alone under `--concurrency` clients, then `a` and `b` each under that many clients at once.
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
    items_by_model: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    items_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    vs_in_process: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    rss_samples_mb: list[float] = field(default_factory=list)
    in_process_items_per_s: float = 0.0
    model_busy: float = 0.0  # fraction of the phase the server's model threads spent in embed
    mean_batch_items: float = 0.0
    calls_per_batch: float = 0.0  # model calls (micro-batches) per batch taken from the queue
    padding_efficiency: float = 0.0  # real tokens / padded tokens the micro-batches ran
    load_average: float = 0.0  # the machine's 1-minute load average at the end of the phase
    overhead_tokens: list[int] = field(default_factory=list)  # per model: what batches were cut with


WANTED = (
    "instructembed_batch_seconds_sum",
    "instructembed_batch_seconds_count",
    "instructembed_embedded_items_total",
    "instructembed_model_calls_total",
    "instructembed_padded_tokens_total",
    "instructembed_prompt_tokens_total",
)


def scrape(base_url: str) -> dict[str, float]:
    """The server's own counters: model seconds, batches, calls and padding (summed over its models)."""
    out = dict.fromkeys(WANTED, 0.0)
    for line in httpx.get(f"{base_url}/metrics").text.splitlines():
        name = line.split(" ")[0]
        if name in out:
            out[name] = float(line.split()[-1])
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    args: argparse.Namespace, port: int, overhead: str, wait_ms: float, models: list[str]
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "instructembed.server"]
    for model in models:
        command += ["--model", model]
    command += ["--port", str(port), "--log-level", "warning"]
    command += ["--max-queue-items", str(args.max_queue_items), "--max-wait-ms", str(wait_ms)]
    command += ["--batch-tokens", str(args.batch_tokens)]
    command += ["--microbatch-overhead-tokens", overhead]  # off / auto (learnt) / N
    if args.threads:
        command += ["--threads", str(args.threads)]
    for option in ("backend", "quantize", "dtype"):
        if getattr(args, option):
            command += [f"--{option}", getattr(args, option)]
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 300
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
    raise SystemExit("the server did not become healthy within 300 s")


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def run_phase(
    base_url: str,
    items: list[Any],
    phase: Phase,
    per_request: int,
    pid: int,
    sample_every: float,
    targets: list[str | None] | None = None,
) -> list[float]:
    """`phase.concurrency` closed-loop clients; client i asks for model `targets[i]` (None: the default)."""
    targets = targets or [None] * phase.concurrency
    latencies: list[float] = []
    stop_at = time.perf_counter() + phase.duration_s
    limits = httpx.Limits(max_connections=len(targets), max_keepalive_connections=len(targets))

    async def client(worker: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(worker)
        model = targets[worker]
        key = model or "default"
        while time.perf_counter() < stop_at:
            start = rng.randrange(0, len(items) - per_request + 1)
            batch = items[start : start + per_request]
            body: dict[str, Any] = {"input": batch, "encoding_format": "base64"}
            if model is not None:
                body["model"] = model
            began = time.perf_counter()
            try:
                response = await http.post("/v1/embeddings", json=body)
                status = str(response.status_code)
                if response.status_code == 200 and len(response.json()["data"]) != len(batch):
                    status = "short-answer"
            except httpx.HTTPError as error:
                status = type(error).__name__
            phase.requests += 1
            if status == "200":
                phase.items += len(batch)
                phase.items_by_model[key] = phase.items_by_model.get(key, 0) + len(batch)
                latencies.append(time.perf_counter() - began)
            else:
                phase.errors[status] = phase.errors.get(status, 0) + 1

    async def sampler() -> None:
        while time.perf_counter() < stop_at:
            phase.rss_samples_mb.append(round(rss_mb(pid), 1))
            await asyncio.sleep(sample_every)

    async with httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(sampler(), *(client(i, http) for i in range(len(targets))))
        elapsed = time.perf_counter() - started
    phase.items_per_s = phase.items / elapsed
    phase.duration_s = elapsed
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


def in_process_items_per_s(embedder: Any, items: list[Any], call_items: int) -> float:
    """The items the clients draw from, embedded in process in calls of `call_items`: the best the
    server could do (one call sorts all of them by length, so it pads least)."""
    inputs = [as_embed_input(item) for item in items]
    size = max(1, call_items)
    started = time.perf_counter()
    for start in range(0, len(inputs), size):
        embedder.embed(inputs[start : start + size])
    return len(inputs) / (time.perf_counter() - started)


def measured_phase(
    args: argparse.Namespace,
    embedder: Any,
    items: list[Any],
    server: subprocess.Popen[bytes],
    base_url: str,
    phase: Phase,
    targets: list[str | None] | None = None,
) -> Phase:
    """One load phase between two in-process baselines (the machine is shared, its speed drifts;
    the ratio uses their mean)."""
    before_baseline = in_process_items_per_s(embedder, items, args.baseline_items)
    phase.rss_before_mb = round(rss_mb(server.pid), 1)
    before = scrape(base_url)
    phase_started = time.perf_counter()
    sample_every = 10.0 if args.soak else 2.0
    asyncio.run(run_phase(base_url, items, phase, args.items_per_request, server.pid, sample_every, targets))
    after = scrape(base_url)
    elapsed = time.perf_counter() - phase_started
    phase.load_average = round(os.getloadavg()[0], 2)
    phase.rss_after_mb = round(rss_mb(server.pid), 1)
    delta = {name: after[name] - before[name] for name in WANTED}
    batches = max(delta["instructembed_batch_seconds_count"], 1)
    phase.model_busy = delta["instructembed_batch_seconds_sum"] / elapsed
    phase.mean_batch_items = delta["instructembed_embedded_items_total"] / batches
    phase.calls_per_batch = delta["instructembed_model_calls_total"] / batches
    phase.padding_efficiency = delta["instructembed_prompt_tokens_total"] / max(
        delta["instructembed_padded_tokens_total"], 1
    )
    after_baseline = in_process_items_per_s(embedder, items, args.baseline_items)
    phase.in_process_items_per_s = (before_baseline + after_baseline) / 2
    phase.vs_in_process = phase.items_per_s / phase.in_process_items_per_s
    models = httpx.get(f"{base_url}/info").json()["models"]
    phase.overhead_tokens = [m["call_cost"]["overhead_tokens"] for m in models]
    return phase


def report(phase: Phase) -> str:
    by_model = ""
    if len(phase.items_by_model) > 1 or "default" not in phase.items_by_model:
        by_model = (
            " ("
            + ", ".join(f"{k} {v / phase.duration_s:.1f}" for k, v in sorted(phase.items_by_model.items()))
            + ")"
        )
    return (
        f"{phase.name:>22}: {phase.items_per_s:7.1f} items/s{by_model} = {phase.vs_in_process:5.1%} of "
        f"in-process ({phase.in_process_items_per_s:.1f} items/s) | p50 {phase.p50_ms:7.1f} ms  p99 "
        f"{phase.p99_ms:7.1f} ms | {phase.requests} requests, errors {phase.errors or 0} | server RSS "
        f"{phase.rss_before_mb:.0f} -> {phase.rss_after_mb:.0f} MB | model busy {phase.model_busy:.0%}, "
        f"{phase.mean_batch_items:.0f} items/batch in {phase.calls_per_batch:.1f} calls, padding "
        f"efficiency {phase.padding_efficiency:.0%}, call overhead "
        f"{'/'.join(map(str, phase.overhead_tokens))} tokens | load average {phase.load_average:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per concurrency level")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every phase this many times")
    parser.add_argument("--items-per-request", type=int, default=8)
    parser.add_argument(
        "--corpus",
        type=int,
        default=512,
        help="distinct inputs the clients draw from (and the baseline embeds)",
    )
    parser.add_argument(
        "--baseline-items", type=int, default=512, help="items in each in-process baseline call"
    )
    parser.add_argument("--max-queue-items", type=int, default=16384)
    parser.add_argument(
        "--max-wait-ms", type=float, nargs="+", default=[10.0], help="server: wait to fill a batch"
    )
    parser.add_argument("--batch-tokens", type=int, default=16384, help="server: token budget per batch")
    parser.add_argument(
        "--microbatch-overhead-tokens",
        nargs="+",
        default=["auto"],
        help="server: cost of one more model call in padded tokens, auto (learnt) or off (one call per "
        "batch, the server's default); several values (and several --max-wait-ms) = one server each, "
        "phases alternating",
    )
    parser.add_argument(
        "--side-by-side",
        nargs="?",
        const="",
        default=None,
        metavar="MODEL",
        help="serve --model as `a` and MODEL (default: --model again) as `b` in one server; measure `a` "
        "alone, then `a` and `b` each under --concurrency clients at once",
    )
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
    if args.corpus < args.items_per_request:
        raise SystemExit("--corpus must hold at least --items-per-request inputs")

    items = corpus(args.corpus)
    embedder = load_embedder(args)
    embedder.embed([as_embed_input(item) for item in items[:64]])  # warm up
    print(
        f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
        f"{os.cpu_count()} CPUs; git {git_commit()}",
        flush=True,
    )

    models = [args.model]
    if args.side_by_side is not None:
        models = [f"a={args.model}", f"b={args.side_by_side or args.model}"]
    variants = [(o, w) for o in args.microbatch_overhead_tokens for w in args.max_wait_ms]
    if args.side_by_side is not None:
        variants = variants[:1]
    servers: list[tuple[str, subprocess.Popen[bytes], str]] = []
    phases: list[Phase] = []
    warmups: list[Phase] = []
    try:
        for overhead, wait_ms in variants:
            port = free_port()
            server = start_server(args, port, overhead, wait_ms, models)
            base_url = f"http://127.0.0.1:{port}"
            label = f"overhead={overhead} wait={wait_ms:g}" if len(variants) > 1 else ""
            servers.append((label, server, base_url))
            warmup = Phase("warmup", 4, 3.0)
            targets: list[str | None] | None = ["a", "a", "b", "b"] if args.side_by_side is not None else None
            asyncio.run(run_phase(base_url, items, warmup, args.items_per_request, server.pid, 1.0, targets))
            warmups.append(warmup)
        for _ in range(max(args.rounds, 1)):
            for concurrency in args.concurrency[:1] if args.soak else args.concurrency:
                duration = args.soak * 60 if args.soak else args.duration
                for variant, server, base_url in servers:
                    if args.side_by_side is not None:
                        alone = Phase(f"a alone c={concurrency}", concurrency, duration)
                        phases.append(
                            measured_phase(
                                args, embedder, items, server, base_url, alone, ["a"] * concurrency
                            )
                        )
                        print(report(alone), flush=True)
                        both = Phase(f"a+b c={concurrency} each", 2 * concurrency, duration)
                        targets = ["a", "b"] * concurrency
                        phases.append(measured_phase(args, embedder, items, server, base_url, both, targets))
                        print(report(both), flush=True)
                        continue
                    label = f"soak {args.soak:g} min" if args.soak else f"load c={concurrency}"
                    if variant:
                        label += f" {variant}"
                    phase = measured_phase(
                        args, embedder, items, server, base_url, Phase(label, concurrency, duration)
                    )
                    phases.append(phase)
                    print(report(phase), flush=True)
        embedded = 0.0
        for _, _, base_url in servers:
            embedded += scrape(base_url)["instructembed_embedded_items_total"]
    finally:
        for _, server, _ in servers:
            server.terminate()
        for _, server, _ in servers:
            server.wait(60)
    received = sum(p.items for p in [*warmups, *phases])
    failed = sum(sum(p.errors.values()) for p in [*warmups, *phases])
    print(f"servers embedded {embedded:.0f} items; clients received {received}; failed requests: {failed}")
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
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "git_commit": git_commit(),
                    "phases": [asdict(p) for p in phases],
                },
                indent=2,
            )
        )


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
