"""Contrastive losses as pure functions on embeddings (B, D): no model, no side effects.

`instructor_loss` is INSTRUCTOR's `InstructorTrainer.compute_loss` (xlang-ai/instructor-embedding,
train.py), vectorized. With s(a, b) = cos(a, b) / temperature:

- query side: row i scores its own positive against *every* hard negative of the batch,
  logits_i = [s(q_i, p_i), s(q_i, n_1), ..., s(q_i, n_B)], target 0 -- other rows' positives are
  *not* negatives here (that is the in-batch variant below);
- positive side: row i scores its own query against the batch's other queries,
  logits_i = [s(p_i, q_i)] + [s(p_i, q_j) for j != i], target 0;
- loss = CE(query side) + CE(positive side), each a mean over rows.

`in_batch_loss` is the common variant: the query side also counts the other rows' positives as
negatives (logits_i = [s(q_i, p_1..p_B), s(q_i, n_1..n_B)], target i); the positive side is the same.
Both take the *global* batch in distributed training (see `distributed.gather_with_grad`).

`cosent_loss` is for scored pairs (text1, text2, score): CoSENT (Su 2022; the loss AnglE builds on),
loss = log(1 + sum over pairs (i, j) with score_i > score_j of exp((cos_j - cos_i) / temperature)).
Why CoSENT and not a regression of cosine on the score (CosineSimilarityLoss): it only asks the
*order* of the cosines to follow the order of the scores, so the scale of the labels (0-5, 0-1,
1-10) does not matter and cosines are not pulled towards a fixed value the model never needs to hit
(the regression's gradient vanishes near its target and fights the contrastive losses' geometry).
With temperature 0.05 its scale is CoSENT's default of 20.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from instructembed.train.config import LossKind

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


def _check(q: torch.Tensor, p: torch.Tensor, n: torch.Tensor, temperature: float) -> None:
    if q.ndim != 2 or q.shape != p.shape or q.shape != n.shape:
        raise ValueError(
            f"query, positive and negative embeddings must all be (B, D); got "
            f"{tuple(q.shape)}, {tuple(p.shape)}, {tuple(n.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _unit(x: torch.Tensor) -> torch.Tensor:
    # cosine similarity as INSTRUCTOR computes it (nn.CosineSimilarity clamps the norm at 1e-8)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def _positive_side(q: torch.Tensor, p: torch.Tensor, temperature: float) -> torch.Tensor:
    # Row i of p @ q.T holds s(p_i, q_j) for all j; its own query sits at column i, so CE with target
    # i equals INSTRUCTOR's [own query, other queries] with target 0 (column order does not matter).
    logits = (p @ q.T) / temperature  # (B, B)
    return F.cross_entropy(logits, torch.arange(q.shape[0], device=q.device))


def instructor_loss(q: torch.Tensor, p: torch.Tensor, n: torch.Tensor, temperature: float) -> torch.Tensor:
    """INSTRUCTOR's loss on query, positive and hard-negative embeddings, each (B, D)."""
    _check(q, p, n, temperature)
    q, p, n = _unit(q.float()), _unit(p.float()), _unit(n.float())
    own = (q * p).sum(-1, keepdim=True)  # (B, 1) s(q_i, p_i)
    negatives = q @ n.T  # (B, B) s(q_i, n_j)
    logits = torch.cat([own, negatives], dim=1) / temperature  # (B, 1 + B)
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target) + _positive_side(q, p, temperature)


def in_batch_loss(q: torch.Tensor, p: torch.Tensor, n: torch.Tensor, temperature: float) -> torch.Tensor:
    """In-batch variant: other rows' positives are negatives for the query too."""
    _check(q, p, n, temperature)
    q, p, n = _unit(q.float()), _unit(p.float()), _unit(n.float())
    logits = torch.cat([q @ p.T, q @ n.T], dim=1) / temperature  # (B, 2B), own positive at column i
    target = torch.arange(q.shape[0], device=q.device)
    return F.cross_entropy(logits, target) + _positive_side(q, p, temperature)


def cosent_loss(a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """CoSENT on pair embeddings `a`, `b` (B, D) and their gold `scores` (B,)."""
    if a.ndim != 2 or a.shape != b.shape or scores.shape != (a.shape[0],):
        raise ValueError(
            f"cosent_loss needs a, b of one (B, D) shape and scores (B,); got "
            f"{tuple(a.shape)}, {tuple(b.shape)}, {tuple(scores.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    cos = (_unit(a.float()) * _unit(b.float())).sum(-1)  # (B,)
    diff = (cos[None, :] - cos[:, None]) / temperature  # (B, B): [i, j] = (cos_j - cos_i) / t
    ordered = scores[:, None] > scores[None, :]  # (B, B): score_i > score_j
    terms = torch.cat([torch.zeros(1, device=a.device, dtype=diff.dtype), diff[ordered]])
    return torch.logsumexp(terms, dim=0)


LOSSES: dict[LossKind, LossFn] = {LossKind.INSTRUCTOR: instructor_loss, LossKind.IN_BATCH: in_batch_loss}
