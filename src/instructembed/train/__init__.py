"""Fine-tuning: MEDI data or your own pairs / triplets / scored pairs / labelled texts (loop.py).

Attributes load lazily so that `instructembed --help` does not import torch.

    from instructembed.train import Shape, TrainConfig, mine_negatives, read_pairs_file, read_texts, train
"""

from __future__ import annotations

from typing import Any

from instructembed.train.config import LossKind, Shape, TrainConfig

__all__ = [
    "LossKind",
    "MiningOptions",
    "Shape",
    "TrainConfig",
    "in_batch_loss",
    "instructor_loss",
    "mine_negatives",
    "read_pairs_file",
    "read_texts",
    "train",
]

_LAZY = {
    "in_batch_loss": ("instructembed.train.loss", "in_batch_loss"),
    "instructor_loss": ("instructembed.train.loss", "instructor_loss"),
    "mine_negatives": ("instructembed.train.mining", "mine_negatives"),
    "MiningOptions": ("instructembed.train.mining", "MiningOptions"),
    "read_pairs_file": ("instructembed.train.user_data", "read_pairs_file"),
    "read_texts": ("instructembed.train.user_eval", "read_corpus"),
    "train": ("instructembed.train.loop", "train"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
