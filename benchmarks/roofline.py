"""The roofline both speed benchmarks use: the machine's GEMM rate and the model's FLOPs per token.

    rate = gemm_rate("float32")                  # GFLOP/s, best over MiniLM-sized shapes
    matmul = matmul_flops_per_token(encoder)     # 2 x the weights every token goes through
    fraction = tokens_per_s * (matmul + attention_flops_per_token(config, length)) / (rate * 1e9)

FLOPs per token count the weight matrices every token is multiplied by, twice (multiply + add):
not the embedding tables (lookups), not biases or layer norms (elementwise), not BERT's pooler
(once per row, on the first token only). Attention adds 4 x layers x hidden x row length
(scores and the weighted sum), which depends on the row length.
"""

from __future__ import annotations

import time
from typing import Any

#: (k, n) of the matmuls a MiniLM-sized layer runs: (tokens, k) x (k, n).
MINILM_SHAPES = ((384, 1536), (1536, 384), (384, 384))


def gemm_rate(dtype_name: str = "float32", tokens: int = 4096, seconds: float = 1.5) -> float:
    """Best GFLOP/s of a single torch matmul over MINILM_SHAPES, each timed for seconds / 3."""
    import torch

    dtype = getattr(torch, dtype_name)
    best = 0.0
    for k, n in MINILM_SHAPES:
        a = torch.randn(tokens, k, dtype=dtype)
        b = torch.randn(k, n, dtype=dtype)
        for _ in range(3):
            a @ b
        start = time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            t0 = time.perf_counter()
            a @ b
            best = max(best, 2 * tokens * k * n / (time.perf_counter() - t0) / 1e9)
    return best


def matmul_flops_per_token(encoder: Any) -> float:
    """2 x the parameters of the weight matrices every token goes through (see the module doc)."""
    return 2.0 * sum(
        p.numel()
        for name, p in encoder.named_parameters()
        if p.dim() == 2 and "embeddings" not in name and not name.startswith(("pooler.", "shared."))
    )


def attention_flops_per_token(config: Any, length: float) -> float:
    """Scores and weighted sum: 4 x layers x hidden x row length (BERT and T5 configs)."""
    layers = getattr(config, "num_hidden_layers", None) or config.num_layers
    hidden = getattr(config, "hidden_size", None) or config.d_model
    return 4.0 * layers * hidden * length
