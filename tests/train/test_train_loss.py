"""The vectorized losses against a per-row loop written the way INSTRUCTOR's trainer writes it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from instructembed.train.loss import in_batch_loss, instructor_loss


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.unsqueeze(0), b.unsqueeze(0), dim=-1)


def naive_instructor(q: torch.Tensor, p: torch.Tensor, n: torch.Tensor, t: float) -> torch.Tensor:
    rows = []
    for i in range(len(q)):
        scores = [_cos(q[i], p[i]) / t] + [_cos(q[i], n[j]) / t for j in range(len(n))]
        rows.append(torch.cat(scores))
    first = F.cross_entropy(torch.stack(rows), torch.zeros(len(q), dtype=torch.long))
    rows = []
    for i in range(len(q)):
        scores = [_cos(p[i], q[i]) / t] + [_cos(p[i], q[j]) / t for j in range(len(q)) if j != i]
        rows.append(torch.cat(scores))
    return first + F.cross_entropy(torch.stack(rows), torch.zeros(len(q), dtype=torch.long))


def naive_in_batch(q: torch.Tensor, p: torch.Tensor, n: torch.Tensor, t: float) -> torch.Tensor:
    rows = []
    for i in range(len(q)):
        scores = [_cos(q[i], p[i]) / t]
        scores += [_cos(q[i], p[j]) / t for j in range(len(p)) if j != i]
        scores += [_cos(q[i], n[j]) / t for j in range(len(n))]
        rows.append(torch.cat(scores))
    first = F.cross_entropy(torch.stack(rows), torch.zeros(len(q), dtype=torch.long))
    rows = []
    for i in range(len(q)):
        scores = [_cos(p[i], q[i]) / t] + [_cos(p[i], q[j]) / t for j in range(len(q)) if j != i]
        rows.append(torch.cat(scores))
    return first + F.cross_entropy(torch.stack(rows), torch.zeros(len(q), dtype=torch.long))


@pytest.mark.parametrize(
    ("fast", "slow"), [(instructor_loss, naive_instructor), (in_batch_loss, naive_in_batch)]
)
@pytest.mark.parametrize("temperature", [0.01, 0.05, 1.0])
@pytest.mark.parametrize("batch", [2, 5])
def test_loss_matches_naive_loop(fast, slow, temperature: float, batch: int) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(batch)
    q, p, n = (torch.randn(batch, 16, generator=g, dtype=torch.float64) for _ in range(3))
    q.requires_grad_(True)
    expected = slow(q, p, n, temperature)
    got = fast(q, p, n, temperature)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    (grad_fast,) = torch.autograd.grad(got, q)
    (grad_slow,) = torch.autograd.grad(expected, q)
    torch.testing.assert_close(grad_fast.double(), grad_slow, rtol=1e-4, atol=1e-5)


def test_loss_is_pure_and_scale_invariant() -> None:
    q, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
    copies = [t.clone() for t in (q, p, n)]
    a = instructor_loss(q, p, n, 0.01)
    for before, after in zip(copies, (q, p, n), strict=True):
        assert torch.equal(before, after)
    torch.testing.assert_close(instructor_loss(3 * q, p, 0.5 * n, 0.01), a)  # cosine: norms do not matter


def test_in_batch_never_below_instructor() -> None:
    # more negatives in the query-side softmax can only raise the loss
    q, p, n = torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 8)
    assert in_batch_loss(q, p, n, 0.05) >= instructor_loss(q, p, n, 0.05)


def test_bad_shapes_and_temperature_raise() -> None:
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        instructor_loss(torch.randn(3, 4), torch.randn(2, 4), torch.randn(3, 4), 0.01)
    with pytest.raises(ValueError, match="temperature"):
        instructor_loss(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4), 0.0)
