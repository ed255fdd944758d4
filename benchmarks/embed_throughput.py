"""fp32 throughput of `Embedder.embed` against sentence-transformers, a 512-padding loop and the roofline.

Inputs are real text from ../shared/data with an instruction: the STS-B test sentences ("short") and
those interleaved with SciFact abstracts ("mixed"). All runs share one process and alternate, so the
ratios hold on a noisy machine even when the absolute figures move.

    .venv/bin/python benchmarks/embed_throughput.py [--repeats 3] [--limit N]

Roofline (roofline.py, shared with backends.py): FLOPs per token = 2 x the weight matrices every token
goes through (attention-score FLOPs left out, so the fraction is slightly understated for long
texts) against the best fp32 GEMM rate on MiniLM-sized shapes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from instructembed import Embedder
from instructembed.batching import collate
from instructembed.eval.loaders import load_scifact, load_stsbenchmark
from instructembed.inputs import Item
from roofline import gemm_rate, matmul_flops_per_token

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INSTRUCTION = "Represent the sentence for retrieving similar sentences: "


def timed(run: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return best, out


def _pad(array: np.ndarray, width: int, value: int = 0) -> np.ndarray:
    return np.pad(array, ((0, 0), (0, width)), constant_values=value)


def pad512_loop(model: Embedder, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """What the slow path does: fixed batches of 32, every batch padded to 512 tokens."""
    rows = model.tokenizer.encode([Item(INSTRUCTION, t) for t in texts])
    out = np.empty((len(texts), model.dimension), dtype=np.float32)
    for start in range(0, len(rows), batch_size):
        idx = list(range(start, min(start + batch_size, len(rows))))
        batch = collate([rows[i] for i in idx], idx, model.tokenizer.pad_id, model.tokenizer.uses_type_ids)
        width = 512 - batch.input_ids.shape[1]
        batch = type(batch)(
            batch.indices,
            _pad(batch.input_ids, width, model.tokenizer.pad_id),
            _pad(batch.attention_mask, width),
            _pad(batch.pool_mask, width),
            None if batch.token_type_ids is None else _pad(batch.token_type_ids, width),
        )
        out[idx] = model.backend.run(batch)
    return out


def row(
    name: str, runner: str, seconds: float, n: int, tokens: int, st_rate: float, roof: float, diff: str
) -> None:
    rate = tokens / seconds
    print(
        f"{name:<7} {runner:<24} {n / seconds:>9.1f} {rate:>10.0f} {n / seconds / st_rate:>6.2f}x "
        f"{rate * roof:>8.0%} {diff:>10}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N texts of each set")
    parser.add_argument("--pad512-texts", type=int, default=256, help="texts for the (slow) 512-padding loop")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    sts = load_stsbenchmark(DATA, "test")
    short = list(dict.fromkeys(sts.sentences1 + sts.sentences2))
    abstracts = [f"{title} {text}".strip() for title, text in load_scifact(DATA).corpus.values()]
    mixed = [t for pair in zip(short, abstracts, strict=False) for t in pair]
    if args.limit:
        short, mixed = short[: args.limit], mixed[: args.limit]

    ours = Embedder.load("all-MiniLM-L6-v2")
    st = SentenceTransformer(str(ours.spec.root), device="cpu")
    setattr(st[1], "include_prompt", False)  # pool over the text only, as INSTRUCTOR does  # noqa: B010
    assert ours.model is not None
    flops_per_token = matmul_flops_per_token(ours.model.encoder)
    gflops = gemm_rate("float32")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, fp32 GEMM {gflops:.0f} GFLOP/s")
    print(f"model all-MiniLM-L6-v2: {flops_per_token / 1e6:.1f} MFLOP/token (matmuls; roofline.py)")
    header = f"{'input':<7} {'runner':<24} {'texts/s':>9} {'tokens/s':>10} {'vs ST':>7} {'roofline':>9} {'max|diff|':>10}"
    print(header)
    print("-" * len(header))
    for name, texts in (("short", short), ("mixed", mixed)):
        n_tokens = sum(len(r.ids) for r in ours.tokenizer.encode([Item(INSTRUCTION, t) for t in texts]))
        ours.embed(texts[:64], instruction=INSTRUCTION)  # warm up both
        st.encode(texts[:64], prompt=INSTRUCTION)
        t_ours, v_ours = timed(lambda: ours.embed(texts, instruction=INSTRUCTION), args.repeats)  # noqa: B023
        t_st, v_st = timed(lambda: st.encode(texts, prompt=INSTRUCTION, batch_size=32), args.repeats)  # noqa: B023
        diff = float(np.abs(v_ours - v_st).max())
        st_rate = len(texts) / t_st
        roof = flops_per_token / (gflops * 1e9)
        row(name, "sentence-transformers", t_st, len(texts), n_tokens, st_rate, roof, "ref")
        row(name, "instructembed fp32", t_ours, len(texts), n_tokens, st_rate, roof, f"{diff:.1e}")
        subset = texts[: args.pad512_texts]
        sub_tokens = sum(len(r.ids) for r in ours.tokenizer.encode([Item(INSTRUCTION, t) for t in subset]))
        t_pad, v_pad = timed(lambda: pad512_loop(ours, subset), 1)  # noqa: B023
        pad_diff = float(np.abs(v_pad - v_ours[: len(subset)]).max())
        row(
            name,
            f"pad-to-512 loop ({len(subset)})",
            t_pad,
            len(subset),
            sub_tokens,
            st_rate,
            roof,
            f"{pad_diff:.1e}",
        )
        ours_rate = len(texts) / t_ours
        print(f"{'':<7} -> ours vs pad-to-512 loop: {ours_rate / (len(subset) / t_pad):.1f}x texts/s")


if __name__ == "__main__":
    main()
