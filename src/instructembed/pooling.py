"""Pure pooling math on token states: masked mean / CLS / max, the optional Dense layer, L2 normalize.

Functions take and return tensors and never modify their inputs. `pool_mask` is the per-row mask
built at tokenization time: 1 for the text's tokens, 0 for the instruction's and for padding.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the functions only call tensor methods; importing this module stays light
    import torch


class PoolingMode(str, Enum):
    MEAN = "mean"
    CLS = "cls"
    MAX = "max"


def masked_mean(states: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): mean over positions where pool_mask is 1 (as sentence-transformers)."""
    mask = pool_mask.to(states.dtype).unsqueeze(-1)  # (B, T, 1)
    summed = (states * mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / counts


def cls_token(states: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) -> (B, H): the first position, whatever the instruction (as INSTRUCTOR's Pooling)."""
    del pool_mask
    return states[:, 0]


def masked_max(states: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): per-dimension max over pooled positions."""
    keep = pool_mask.unsqueeze(-1) > 0  # (B, T, 1)
    return states.masked_fill(~keep, -1e9).max(dim=1).values


POOLERS = {PoolingMode.MEAN: masked_mean, PoolingMode.CLS: cls_token, PoolingMode.MAX: masked_max}


def pool(states: torch.Tensor, pool_mask: torch.Tensor, mode: PoolingMode) -> torch.Tensor:
    return POOLERS[mode](states, pool_mask)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """(B, D) -> (B, D) with unit rows (zero rows stay zero), as torch.nn.functional.normalize."""
    return x / x.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-12)
