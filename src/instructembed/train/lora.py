"""LoRA through `peft` (the `[lora]` extra): low-rank adapters on the encoder, merged into the saved
weights, so the output is an ordinary model directory that every loader reads.

    apply_lora(model, rank=8, alpha=16)   # encoder weights frozen; adapters (and a Dense head) train
    merge_lora(model)                     # before saving: W + (alpha / r) B A, adapters removed

Adapters go where peft puts them for the architecture (BERT: query/value; T5: q/v). A Dense head
(INSTRUCTOR's 2_Dense) is small and keeps training in full; the merged `model/` holds everything.
"""

from __future__ import annotations

import logging

from instructembed.errors import MissingExtraError
from instructembed.model import EmbeddingModel

log = logging.getLogger(__name__)


def apply_lora(model: EmbeddingModel, *, rank: int, alpha: int, dropout: float = 0.0) -> None:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise MissingExtraError("lora", "peft") from None
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout)
    model.encoder = get_peft_model(model.encoder, config)  # type: ignore[assignment]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info(
        "LoRA rank %d: %d of %d parameters train (%.2f%%)", rank, trainable, total, 100 * trainable / total
    )


def is_lora(model: EmbeddingModel) -> bool:
    return hasattr(model.encoder, "merge_and_unload")


def merge_lora(model: EmbeddingModel) -> None:
    """Fold the adapters into the encoder's weights: W <- W + (alpha / r) B A; peft modules removed."""
    if is_lora(model):
        model.encoder = model.encoder.merge_and_unload()  # type: ignore[operator]
