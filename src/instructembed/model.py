"""The torch model: a Hugging Face encoder plus the pooling head, loaded from a `ModelSpec`.

`EmbeddingModel.forward` is the one forward pass: inference runs it under `torch.inference_mode`,
training runs it with gradients. Pooling itself is the pure functions of `pooling.py`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from instructembed.checkpoint import ModelSpec, weights_file
from instructembed.errors import CheckpointError
from instructembed.pooling import PoolingMode, l2_normalize, pool

log = logging.getLogger(__name__)

T5_TYPES = ("t5", "mt5", "umt5")
_ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


class Dense(nn.Module):
    """sentence-transformers' Dense module: activation(linear(x)); weights named linear.*."""

    def __init__(self, in_features: int, out_features: int, bias: bool, activation: str) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation_name = activation
        self.activation = _ACTIVATION_MODULES[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x))


class EmbeddingModel(nn.Module):
    """encoder -> per-row masked pooling -> optional Dense -> optional L2 normalize."""

    def __init__(
        self, encoder: nn.Module, pooling: PoolingMode, dense: Dense | None, normalize: bool
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dense = dense
        self.normalize = normalize

    def token_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T) ids -> (B, T, H) last hidden states; the encoder attends over instruction and text."""
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(**kwargs, return_dict=True)
        return out.last_hidden_state  # type: ignore[no-any-return]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pool_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        states = self.token_states(input_ids, attention_mask, token_type_ids)  # (B, T, H)
        pooled = pool(states.float(), pool_mask.float(), self.pooling)  # (B, H), pooled in fp32
        if self.dense is not None:
            pooled = self.dense(pooled.to(self.dense.linear.weight.dtype)).float()  # (B, D)
        return l2_normalize(pooled) if self.normalize else pooled


def load_encoder(spec: ModelSpec, allow_pickle: bool) -> nn.Module:
    from transformers import AutoConfig, AutoModel, T5EncoderModel

    _, is_safe = weights_file(spec.encoder_dir, allow_pickle)
    config = AutoConfig.from_pretrained(str(spec.encoder_dir), local_files_only=True)
    cls: Any = T5EncoderModel if spec.model_type in T5_TYPES else AutoModel
    try:
        encoder = cls.from_pretrained(
            str(spec.encoder_dir), config=config, local_files_only=True, use_safetensors=is_safe
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"could not load the encoder from {spec.encoder_dir}: {exc}") from exc
    # transformers may keep a checkpoint's half-precision dtype; we compute in fp32 unless asked.
    return encoder.float().eval()  # type: ignore[no-any-return]


def load_dense(spec: ModelSpec, allow_pickle: bool) -> Dense | None:
    if spec.dense is None:
        return None
    d = spec.dense
    path, is_safe = weights_file(d.directory, allow_pickle)
    if is_safe:
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    dense = Dense(d.in_features, d.out_features, d.bias, d.activation)
    try:
        dense.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as exc:
        raise CheckpointError(f"Dense weights in {path} do not match its config.json: {exc}") from None
    return dense.eval()


def load_model(spec: ModelSpec, allow_pickle: bool = False) -> EmbeddingModel:
    encoder = load_encoder(spec, allow_pickle)
    dense = load_dense(spec, allow_pickle)
    if dense is not None and dense.linear.in_features != spec.hidden_size:
        raise CheckpointError(
            f"Dense expects {dense.linear.in_features} inputs but the encoder gives {spec.hidden_size}"
        )
    return EmbeddingModel(encoder, spec.pooling, dense, spec.normalize).eval()


def save_dense(dense: Dense, directory: Path) -> dict[str, Any]:
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in dense.state_dict().items()},
        str(directory / "model.safetensors"),
    )
    config = {
        "in_features": dense.linear.in_features,
        "out_features": dense.linear.out_features,
        "bias": dense.linear.bias is not None,
        "activation": dense.activation_name,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config
