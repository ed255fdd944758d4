"""Training-step throughput: our step vs sentence-transformers' trainer with MultipleNegativesRankingLoss,
same model, batch and data; then peak RSS of the cached (GradCache) step as the batch grows.

    python benchmarks/train_throughput.py --data runs/first-result/medi-small.jsonl --batch 32 --steps 20
    python benchmarks/train_throughput.py --data ... --memory-batches 32,64,128,256 --chunk 16

Both sides train on the same (query, positive, hard negative) rows of one task, joined to one string per
text for sentence-transformers (it has no instruction masking), with the same AdamW lr and max length.
Each memory measurement runs in a fresh process, so ru_maxrss is that batch size's peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from instructembed.embedder import Embedder
from instructembed.train.data import read_medi
from instructembed.train.loss import in_batch_loss
from instructembed.train.step import cached_step, plain_step, tokenize_roles


def _rows(data: Path, n: int) -> list[dict[str, tuple[str, str]]]:
    examples = read_medi(data).examples
    task = max({e.task for e in examples}, key=lambda t: sum(e.task == t for e in examples))
    chosen = [e for e in examples if e.task == task][:n]
    if len(chosen) < n:
        raise SystemExit(f"the largest task has {len(chosen)} rows; lower --batch or --steps")
    return [
        {r: (e.role(r).instruction or "", e.role(r).text) for r in ("query", "pos", "neg")} for e in chosen
    ]


def ours(
    model_name: str,
    rows: list[dict[str, tuple[str, str]]],
    batch: int,
    steps: int,
    max_length: int,
    chunk: int | None,
) -> float:
    from instructembed.inputs import Item
    from instructembed.tokenize import InstructionTokenizer

    embedder = Embedder.load(model_name)
    model = embedder.model
    assert model is not None
    model.train()
    tok = InstructionTokenizer(embedder.tokenizer.hf_tokenizer, max_length, embedder.tokenizer.do_lower_case)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    step = cached_step if chunk else plain_step
    start = time.perf_counter()
    for s in range(steps):
        part = rows[s * batch : (s + 1) * batch]
        roles = {r: [Item(*row[r]) for row in part] for r in ("query", "pos", "neg")}
        # 0.05 = MNRL's scale 20, in-batch negatives like MNRL
        step(model, tokenize_roles(tok, roles, chunk), in_batch_loss, 0.05, device=torch.device("cpu"))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps / (time.perf_counter() - start)


def sentence_transformers(
    model_name: str,
    rows: list[dict[str, tuple[str, str]]],
    batch: int,
    steps: int,
    max_length: int,
    out: Path,
) -> float:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from instructembed.checkpoint import resolve_model_dir

    model = SentenceTransformer(str(resolve_model_dir(model_name, None)), device="cpu")
    model.max_seq_length = max_length
    joined = {
        k: ["".join(row[r]).strip() for row in rows[: batch * steps]]
        for k, r in (("anchor", "query"), ("positive", "pos"), ("negative", "neg"))
    }
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=2e-5,
        warmup_ratio=0.0,
        logging_strategy="no",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_drop_last=True,
        seed=42,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(joined),
        loss=MultipleNegativesRankingLoss(model),
    )
    start = time.perf_counter()
    trainer.train()
    return steps / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--chunk", type=int, default=16, help="cached step's rows per forward")
    p.add_argument("--memory-batches", default="", help="comma-separated batch sizes for the RSS table")
    p.add_argument("--only", choices=["ours", "st", "ours-cached"], help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=Path("runs/bench-train"))
    args = p.parse_args()
    rows = _rows(args.data, args.batch * args.steps)
    if args.only:  # one measurement in this process (for RSS): prints JSON
        chunk = args.chunk if args.only == "ours-cached" else None
        rate = (
            sentence_transformers(args.model, rows, args.batch, args.steps, args.max_length, args.out)
            if args.only == "st"
            else ours(args.model, rows, args.batch, args.steps, args.max_length, chunk)
        )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"steps_per_s": rate, "peak_rss_mb": peak_mb}))
        return

    def measure(kind: str, batch: int, steps: int) -> dict[str, float]:
        cmd = [
            sys.executable,
            __file__,
            "--model",
            args.model,
            "--data",
            str(args.data),
            "--batch",
            str(batch),
            "--steps",
            str(steps),
            "--max-length",
            str(args.max_length),
            "--chunk",
            str(args.chunk),
            "--only",
            kind,
            "--out",
            str(args.out),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    print(
        f"model {args.model}, batch {args.batch}, {args.steps} steps, max length {args.max_length}, "
        f"torch threads {torch.get_num_threads()}"
    )
    st = measure("st", args.batch, args.steps)
    mine = measure("ours", args.batch, args.steps)
    cached = measure("ours-cached", args.batch, args.steps)
    print("| step | steps/s | vs sentence-transformers | peak RSS MB |\n|---|---|---|---|")
    for name, r in (
        ("sentence-transformers trainer + MNRL", st),
        ("ours, plain", mine),
        (f"ours, cached (chunk {args.chunk})", cached),
    ):
        print(
            f"| {name} | {r['steps_per_s']:.3f} | {r['steps_per_s'] / st['steps_per_s']:.2f}x | {r['peak_rss_mb']:.0f} |"
        )
    if args.memory_batches:
        print("\n| batch | plain peak RSS MB | cached peak RSS MB |\n|---|---|---|")
        for b in (int(x) for x in args.memory_batches.split(",")):
            plain, cach = measure("ours", b, 1), measure("ours-cached", b, 1)
            print(f"| {b} | {plain['peak_rss_mb']:.0f} | {cach['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
