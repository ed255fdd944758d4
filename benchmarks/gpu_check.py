"""GPU check of the one encode path: device="cuda" (fp32 and bf16) against the CPU on the same machine.

    python benchmarks/gpu_check.py --model DIR --texts FILE

Prints max abs diff / min cosine of CUDA vectors to CPU fp32 vectors, batch-composition invariance on
CUDA, and texts/s for CPU fp32, CUDA fp32 and CUDA bf16 (all in this one process).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from instructembed import EmbedConfig, Embedder
from instructembed.testing import build_checkpoint

INSTRUCTION = "Represent the sentence for retrieving similar sentences: "


def agreement(a: np.ndarray, b: np.ndarray) -> str:
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return f"max abs diff {np.abs(a - b).max():.2e}, min cosine {cos.min():.6f}"


def rate(model: Embedder, texts: list[str], repeats: int = 3) -> tuple[float, np.ndarray]:
    model.embed(texts[:256], instruction=INSTRUCTION)  # warm up (CUDA context, kernels)
    best, out = float("inf"), np.empty(0)
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = model.embed(texts, instruction=INSTRUCTION)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--cpu-texts", type=int, default=2000)
    args = parser.parse_args()
    texts = [t for t in args.texts.read_text(encoding="utf-8").splitlines() if t.strip()]
    print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}, {torch.cuda.get_device_name(0)}")
    print(f"{len(texts)} texts, CPU threads {torch.get_num_threads()}")

    cpu = Embedder.load(args.model)
    gpu = Embedder.load(args.model, device="cuda", config=EmbedConfig(token_budget=65536, max_batch_size=512))
    bf16 = Embedder.load(
        args.model,
        device="cuda",
        dtype="bfloat16",
        config=EmbedConfig(token_budget=65536, max_batch_size=512),
    )
    cpu_rate, v_cpu = rate(cpu, texts[: args.cpu_texts], repeats=1)
    gpu_rate, v_gpu = rate(gpu, texts)
    bf_rate, v_bf = rate(bf16, texts)
    n = len(v_cpu)
    print(f"cuda fp32 vs cpu fp32: {agreement(v_gpu[:n], v_cpu)}")
    print(f"cuda bf16 vs cpu fp32: {agreement(v_bf[:n], v_cpu)}")
    print(f"texts/s  cpu fp32 {cpu_rate:.0f}  cuda fp32 {gpu_rate:.0f}  cuda bf16 {bf_rate:.0f}")

    small = EmbedConfig(max_batch_size=7)
    gpu_small = Embedder(gpu.spec, gpu.tokenizer, gpu.backend, name="small", config=small)
    order = list(range(1000))
    random.Random(0).shuffle(order)
    subset = [texts[i] for i in order]
    reference = gpu.embed(texts[:1000], instruction=INSTRUCTION)
    print(
        f"cuda batch 7 + shuffled vs default batches: {agreement(gpu_small.embed(subset, instruction=INSTRUCTION), reference[order])}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        t5 = build_checkpoint(Path(tmp) / "t5", "t5", max_seq_length=512)
        pairs = [(INSTRUCTION, t) for t in texts[:500]]
        t5_cpu = Embedder.load(t5).embed(pairs)
        t5_gpu = Embedder.load(t5, device="cuda").embed(pairs)
        print(f"tiny T5 cuda vs cpu: {agreement(t5_gpu, t5_cpu)}")


if __name__ == "__main__":
    main()
