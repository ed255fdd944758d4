"""The torch model: a Hugging Face encoder plus the pooling head, loaded from a `ModelSpec`.

`EmbeddingModel.forward` is the one forward pass: inference runs it under `torch.inference_mode`,
training runs it with gradients. Pooling itself is the pure functions of `pooling.py`.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from instructembed.checkpoint import ModelSpec, pickle_files, weights_file
from instructembed.errors import CheckpointError, UnsafeWeightsError
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
        self,
        encoder: nn.Module,
        pooling: PoolingMode,
        dense: Dense | None,
        normalize: bool,
        positions_from_mask: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        # Decoders number positions from the first real token, so a left-padded row gets the rotary
        # positions it gets alone (transformers would count the pads): a row's vector never depends on
        # its batch. (Rotary attention sees only relative positions, so this agrees with
        # sentence-transformers' left-padded vectors to ~1e-6.)
        self.positions_from_mask = positions_from_mask
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
        if self.positions_from_mask:
            kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, T)
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
        pooled = pool(states.float(), pool_mask.float(), self.pooling, attention_mask)  # (B, H), in fp32
        if self.dense is not None:
            pooled = self.dense(pooled.to(self.dense.linear.weight.dtype)).float()  # (B, D)
        return l2_normalize(pooled) if self.normalize else pooled


def load_pickled_state(path: Path, allow_pickle: bool) -> tuple[dict[str, Any], bool]:
    """A `.bin` state dict -> (state, read_weights_only).

    PyTorch's weights-only unpickler restores tensors and plain containers and refuses any other
    global (a function, a class), so a file it reads cannot have run code. A file that needs more
    is refused before anything in it runs, unless `allow_pickle=True`. Zip-format files are
    memory-mapped, so reading one only to check it costs no copy of its tensors.
    """
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
        return state, True
    except pickle.UnpicklingError as exc:
        reason = _refusal_reason(exc)
        if not allow_pickle:
            raise UnsafeWeightsError(
                f"{path} holds more than tensors ({reason}), and loading it needs full unpickling, which can "
                "run arbitrary code. If you trust its source, pass allow_pickle=True (CLI: --allow-pickle); "
                "better, convert it once to safetensors (load with allow_pickle=True, then Embedder.save(DIR))."
            ) from None
        log.warning("%s needs full unpickling (%s); loading it because allow_pickle=True", path, reason)
        return torch.load(str(path), map_location="cpu", weights_only=False), False
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(
            f"{path} is not a readable PyTorch weights file ({str(exc).splitlines()[0][:200]}); "
            "download it again"
        ) from None


def _refusal_reason(exc: Exception) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # torch names the first global it refused
    if found:
        return f"it refers to the global {found.group(1)}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines or [type(exc).__name__])[0][:200]


def load_encoder(spec: ModelSpec, allow_pickle: bool) -> nn.Module:
    from transformers import AutoConfig, AutoModel, T5EncoderModel

    path, is_safe = weights_file(spec.encoder_dir)
    weights_only = True
    if not is_safe:  # checked here, so transformers unpickles fully only what we allowed
        weights_only = all([load_pickled_state(f, allow_pickle)[1] for f in pickle_files(path)])
    config = AutoConfig.from_pretrained(str(spec.encoder_dir), local_files_only=True)
    spec.family  # noqa: B018 - refuses, naming it, a model_type we do not run exactly
    cls: Any = T5EncoderModel if spec.model_type in T5_TYPES else AutoModel
    try:
        encoder = cls.from_pretrained(
            str(spec.encoder_dir),
            config=config,
            local_files_only=True,
            use_safetensors=is_safe,
            weights_only=weights_only,
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"could not load the encoder from {spec.encoder_dir}: {exc}") from exc
    # transformers may keep a checkpoint's half-precision dtype; we compute in fp32 unless asked.
    return encoder.float().eval()  # type: ignore[no-any-return]


def load_dense(spec: ModelSpec, allow_pickle: bool) -> Dense | None:
    if spec.dense is None:
        return None
    d = spec.dense
    path, is_safe = weights_file(d.directory)
    state: dict[str, Any] = {}
    if is_safe:
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:  # released INSTRUCTOR checkpoints keep their Dense as 2_Dense/pytorch_model.bin
        for part in pickle_files(path):
            state.update(load_pickled_state(part, allow_pickle)[0])
    dense = Dense(d.in_features, d.out_features, d.bias, d.activation)
    try:
        dense.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"Dense weights in {path} do not match its config.json: {exc}") from None
    return dense.eval()


def load_model(spec: ModelSpec, allow_pickle: bool = False) -> EmbeddingModel:
    encoder = load_encoder(spec, allow_pickle)
    dense = load_dense(spec, allow_pickle)
    if dense is not None and dense.linear.in_features != spec.hidden_size:
        raise CheckpointError(
            f"Dense expects {dense.linear.in_features} inputs but the encoder gives {spec.hidden_size}"
        )
    return EmbeddingModel(
        encoder, spec.pooling, dense, spec.normalize, positions_from_mask=spec.family.decoder
    ).eval()


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
