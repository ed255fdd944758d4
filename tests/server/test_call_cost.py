"""`CallCost` against numpy's weighted least squares on the same calls."""

from __future__ import annotations

import numpy as np
import pytest

from instructembed.server.call_cost import CallCost


@pytest.mark.parametrize("half_life", [4.0, 64.0, 1e9])
def test_fit_equals_weighted_least_squares(half_life: float) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(16, 8000, size=50)
    y = 0.05 + 2e-4 * x + rng.normal(0, 0.01, size=50)
    cost = CallCost(half_life_calls=half_life)
    for tokens, seconds in zip(x, y, strict=True):
        cost.observe(int(tokens), float(seconds))
    fit = cost.fit()
    assert fit is not None
    weights = 0.5 ** ((len(x) - 1 - np.arange(len(x))) / half_life)  # the newest call weighs 1
    design = np.c_[np.ones(len(x)), x] * np.sqrt(weights)[:, None]
    (fixed, per_token), *_ = np.linalg.lstsq(design, y * np.sqrt(weights), rcond=None)
    assert fit.fixed_s == pytest.approx(fixed, rel=1e-6, abs=1e-9)
    assert fit.per_token_s == pytest.approx(per_token, rel=1e-6)
    assert fit.calls == pytest.approx(weights.sum())
    assert cost.overhead_tokens() == max(round(fixed / per_token), 128)  # never below the prior


def test_prior_until_the_fit_can_be_trusted_and_clamped_after() -> None:
    cost = CallCost(prior_tokens=100, min_calls=3, max_tokens=1000)
    assert cost.fit() is None and cost.overhead_tokens() == 100
    for _ in range(5):
        cost.observe(500, 0.1)  # one size only: no line through it
    assert cost.fit() is None and cost.overhead_tokens() == 100
    cost.observe(0, 1.0)  # ignored: an empty call says nothing
    cost.observe(1000, float("nan"))  # ignored
    falling = CallCost(prior_tokens=100, min_calls=3)
    for tokens, seconds in ((100, 1.0), (200, 0.5), (300, 0.1)):
        falling.observe(tokens, seconds)  # noise: bigger calls faster
    assert falling.overhead_tokens() == 100
    huge = CallCost(prior_tokens=10, min_calls=2, max_tokens=1000)
    huge.observe(100, 5.0)
    huge.observe(200, 5.001)  # fixed cost dominates: clamped
    assert huge.overhead_tokens() == 1000
    free = CallCost(prior_tokens=50, min_calls=2)
    free.observe(100, 0.0)
    free.observe(200, 0.5)  # negative intercept: a call would cost nothing extra; the floor holds
    assert free.overhead_tokens() == 50
    dear = CallCost(prior_tokens=50, min_calls=2)
    dear.observe(100, 0.3)
    dear.observe(300, 0.5)  # 0.2 s + 1 ms per token: a call = 200 tokens
    assert dear.overhead_tokens() == 200
    with pytest.raises(ValueError):
        CallCost(half_life_calls=0)
