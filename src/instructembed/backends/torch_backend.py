"""The default backend: the torch `EmbeddingModel` under `torch.inference_mode`."""

from __future__ import annotations

import numpy as np
import torch

from instructembed.batching import TokenBatch
from instructembed.model import EmbeddingModel

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def parse_dtype(dtype: str | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    try:
        return DTYPES[dtype.lower()]
    except KeyError:
        raise ValueError(
            f"dtype {dtype!r} is not supported on the torch backend; use float32 or bfloat16"
        ) from None


class TorchBackend:
    name = "torch"

    def __init__(
        self, model: EmbeddingModel, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ):
        self.device = torch.device(device)
        self.dtype = dtype
        # Pooling, Dense and normalization still run in fp32 inside EmbeddingModel.forward.
        model.encoder.to(device=self.device, dtype=dtype)
        if model.dense is not None:
            model.dense.to(device=self.device)
        self.model = model.eval()

    @property
    def precision(self) -> str:
        return "bf16" if self.dtype == torch.bfloat16 else "fp32"

    def run(self, batch: TokenBatch) -> np.ndarray:
        def put(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).to(self.device, non_blocking=True)

        with torch.inference_mode():
            out = self.model(
                put(batch.input_ids),
                put(batch.attention_mask),
                put(batch.pool_mask),
                put(batch.token_type_ids) if batch.token_type_ids is not None else None,
            )  # (B, D)
        return out.float().cpu().numpy()
