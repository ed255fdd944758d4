"""Instruction fine-tuning on MEDI-format data (see loop.py for the shape of a run).

Attributes load lazily so that `instructembed --help` does not import torch.
"""

from __future__ import annotations

from typing import Any

from instructembed.train.config import LossKind, TrainConfig

__all__ = ["LossKind", "TrainConfig", "in_batch_loss", "instructor_loss"]


def __getattr__(name: str) -> Any:
    if name in ("in_batch_loss", "instructor_loss"):
        from instructembed.train import loss

        return getattr(loss, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
