"""Pure pooling math on token states: masked mean / CLS / max / last token / sqrt-length mean /
position-weighted mean, the optional Dense layer, L2 normalize.

Functions take and return tensors and never modify their inputs. `pool_mask` is the per-row mask
built at tokenization time: 1 for the tokens pooling reads, 0 for padding and -- when a checkpoint
excludes its prompt (`include_prompt=false`, INSTRUCTOR's rule) -- for the prompt's tokens.
`attention_mask` (1 for every real token, prompt included) is what position-dependent modes need:
`weightedmean` counts positions from the first real token, so left and right padding agree.
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
    LASTTOKEN = "lasttoken"
    MEAN_SQRT_LEN = "mean_sqrt_len_tokens"
    WEIGHTEDMEAN = "weightedmean"


def _kept(states: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) with unpooled positions set to 0 (not multiplied by 0: a runtime may leave NaN in a
    padding position whose attention row is all masked, and NaN * 0 is NaN)."""
    return states.masked_fill(pool_mask.unsqueeze(-1) <= 0, 0.0)


def masked_mean(states: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): mean over positions where pool_mask is 1 (as sentence-transformers)."""
    mask = pool_mask.to(states.dtype).unsqueeze(-1)  # (B, T, 1)
    summed = _kept(states, pool_mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / counts


def masked_mean_sqrt_len(states: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): sum over pooled positions / sqrt(their count)."""
    mask = pool_mask.to(states.dtype).unsqueeze(-1)  # (B, T, 1)
    summed = _kept(states, pool_mask).sum(dim=1)  # (B, H)
    return summed / mask.sum(dim=1).clamp(min=1e-9).sqrt()


def weighted_mean(
    states: torch.Tensor, pool_mask: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """(B, T, H), (B, T), (B, T) -> (B, H): mean weighted by position, 1 at the first real token.

    A row's weights do not depend on its padding (left or right) nor on an excluded prompt: the
    first text token after a 5-token prompt still weighs 6, as sentence-transformers computes it.
    """
    real = attention_mask.to(states.dtype)  # (B, T)
    first = real.argmax(dim=1, keepdim=True).to(states.dtype)  # (B, 1) leading pads on the left
    positions = _positions(states)  # (1, T) 0..T-1
    weights = (positions - first + 1) * pool_mask.to(states.dtype)  # (B, T)
    summed = (_kept(states, pool_mask) * weights.unsqueeze(-1)).sum(dim=1)  # (B, H)
    return summed / weights.sum(dim=1, keepdim=True).clamp(min=1e-9)


def _positions(states: torch.Tensor) -> torch.Tensor:
    """(B, T, H) -> (1, T): positions 0..T-1 in `states`' dtype and device."""
    return states.new_ones(states.shape[1]).cumsum(0).sub(1).unsqueeze(0)


def last_token(states: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): the state at each row's last pooled position.

    Works for left padding (the last column) and right padding (found by the mask) alike; a row
    with nothing pooled gives a zero vector, as sentence-transformers' `lasttoken` does.
    """
    keep = pool_mask > 0  # (B, T)
    width = keep.shape[1]
    flipped_first = keep.flip(1).to(states.dtype).argmax(dim=1)  # (B,) distance from the end
    index = (width - 1 - flipped_first).long()  # (B,)
    picked = states.gather(1, index.view(-1, 1, 1).expand(-1, 1, states.shape[-1])).squeeze(1)  # (B, H)
    return picked.masked_fill(~keep.any(dim=1, keepdim=True), 0.0)


def cls_token(states: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) -> (B, H): the first position, whatever the instruction (as INSTRUCTOR's Pooling).

    Right padding only: `checkpoint.read_spec` refuses CLS with a left-padding tokenizer."""
    del pool_mask
    return states[:, 0]


def masked_max(states: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): per-dimension max over pooled positions."""
    keep = pool_mask.unsqueeze(-1) > 0  # (B, T, 1)
    return states.masked_fill(~keep, -1e9).max(dim=1).values


POOLERS = {
    PoolingMode.MEAN: masked_mean,
    PoolingMode.CLS: cls_token,
    PoolingMode.MAX: masked_max,
    PoolingMode.LASTTOKEN: last_token,
    PoolingMode.MEAN_SQRT_LEN: masked_mean_sqrt_len,
}


def pool(
    states: torch.Tensor,
    pool_mask: torch.Tensor,
    mode: PoolingMode,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, T, H) -> (B, H) by `mode`; `attention_mask` (B, T) is needed by `weightedmean` only
    (without it, the first pooled position counts as the first real token)."""
    if mode is PoolingMode.WEIGHTEDMEAN:
        return weighted_mean(states, pool_mask, pool_mask if attention_mask is None else attention_mask)
    return POOLERS[mode](states, pool_mask)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """(B, D) -> (B, D) with unit rows (zero rows stay zero), as torch.nn.functional.normalize."""
    return x / x.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-12)
