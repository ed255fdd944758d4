"""Is bf16 autocast worth it for training on this CPU? Step time fp32 vs bf16 on the same batches,
interleaved (so host load hits both alike), and how close the bf16 gradient is to the fp32 one.

    python benchmarks/train_bf16.py --data runs/study/medi.jsonl --max-length 128 --rounds 3

For a short-text task and a long-document task of the mixture it prints the median step time of each
precision, the ratio fp32 / bf16 (> 1: bf16 faster), the loss of each and the cosine between the two
flattened gradients (dropout off, same batch), which says whether bf16 trains the same direction.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from instructembed.embedder import Embedder
from instructembed.tokenize import InstructionTokenizer
from instructembed.train.data import ROLES, read_medi
from instructembed.train.loss import instructor_loss
from instructembed.train.step import plain_step, tokenize_roles


def _grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", default="snli,abc-news-story")
    args = parser.parse_args()

    examples = read_medi(args.data).examples
    embedder = Embedder.load(args.model)
    model = embedder.model
    assert model is not None
    tokenizer = InstructionTokenizer(
        embedder.tokenizer.hf_tokenizer, args.max_length, embedder.tokenizer.do_lower_case
    )
    device = torch.device("cpu")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, max length {args.max_length}, batch {args.batch}"
    )
    print("| task | fp32 s/step | bf16 s/step | fp32 / bf16 | loss fp32 | loss bf16 | grad cosine |")
    print("|---|---|---|---|---|---|---|")
    for task in args.tasks.split(","):
        rows = [e for e in examples if e.task == task][: args.batch]
        roles = {r: [e.role(r) for e in rows] for r in ROLES}
        inputs = tokenize_roles(tokenizer, roles, None)
        times: dict[bool, list[float]] = {False: [], True: []}
        losses: dict[bool, float] = {}
        grads: dict[bool, torch.Tensor] = {}
        for _ in range(args.rounds):
            for bf16 in (False, True):
                model.eval()  # dropout off: both precisions see the same function
                model.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                losses[bf16] = plain_step(model, inputs, instructor_loss, 0.05, device=device, bf16=bf16)
                times[bf16].append(time.perf_counter() - t0)
                grads[bf16] = _grad(model)
        cos = torch.nn.functional.cosine_similarity(grads[False], grads[True], dim=0).item()
        f, b = statistics.median(times[False]), statistics.median(times[True])
        print(
            f"| {task} | {f:.2f} | {b:.2f} | {f / b:.2f} | {losses[False]:.4f} | {losses[True]:.4f} | {cos:.4f} |"
        )


if __name__ == "__main__":
    main()
