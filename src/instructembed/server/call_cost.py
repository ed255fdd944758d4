"""What one model call costs, learnt from the server's own calls: seconds = fixed + per_token * padded.

The batcher cuts a batch into micro-batches where the padding saved is worth more than one more call
(`batching.split_by_padding`), so it needs the fixed cost of a call in padded tokens. That is not a
constant of the model: on a quiet CPU a MiniLM call costs a few ms (tens of tokens), on a GPU or on
an oversubscribed CPU far more (on the shared 2-core test machine at load average 8-12 the fits said
1,000-3,800 padded tokens, docs/server.md). So the server fits the line to its recent calls (least
squares, older calls weighing less) and asks the fit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class CallCostFit:
    """seconds ~= fixed_s + per_token_s * padded_tokens over the calls seen."""

    fixed_s: float
    per_token_s: float
    calls: float  # effective number of calls behind the fit (decayed)

    @property
    def overhead_tokens(self) -> float:
        """The fixed cost of a call, in padded tokens."""
        return self.fixed_s / self.per_token_s


class CallCost:
    """Exponentially weighted least squares of call seconds on padded tokens; thread-safe.

    `observe` runs in the model thread after each call, `overhead_tokens` in the event loop. Until
    `min_calls` calls with different sizes are seen, or while the fit is not a rising line (noise),
    the answer is `prior_tokens`; it is always clamped to [`prior_tokens`, `max_tokens`]. The floor is
    on purpose: guessing a call too cheap is the costly mistake (~14 calls per 85-input batch took one
    serve_load phase on a loaded machine down to 25 % of in-process, docs/server.md),
    guessing it too dear only falls back towards one call per batch, the behaviour before
    micro-batches; and 128 still cuts a 16-client batch into ~4 calls at 88 % padding efficiency.
    """

    def __init__(
        self,
        prior_tokens: float = 128.0,
        half_life_calls: float = 64.0,
        min_calls: int = 8,
        max_tokens: float = 65536.0,
    ) -> None:
        if half_life_calls <= 0 or min_calls < 2 or prior_tokens < 0 or max_tokens < prior_tokens:
            raise ValueError(
                "CallCost needs half_life_calls > 0, min_calls >= 2, 0 <= prior_tokens <= max_tokens"
            )
        self.prior_tokens = prior_tokens
        self.max_tokens = max_tokens
        self.min_calls = min_calls
        self._keep = 0.5 ** (1.0 / half_life_calls)  # weight left to a call after one more call
        self._lock = threading.Lock()
        self._seen = 0
        self._w = self._x = self._y = self._xx = self._xy = 0.0  # decayed sums

    def observe(self, padded_tokens: int, seconds: float) -> None:
        if padded_tokens <= 0 or not seconds >= 0:
            return
        x, y, keep = float(padded_tokens), float(seconds), self._keep
        with self._lock:
            self._seen += 1
            self._w = self._w * keep + 1.0
            self._x = self._x * keep + x
            self._y = self._y * keep + y
            self._xx = self._xx * keep + x * x
            self._xy = self._xy * keep + x * y

    def fit(self) -> CallCostFit | None:
        """The current line, or None before `min_calls` calls or when the sizes seen do not vary."""
        with self._lock:
            seen, w, x, y, xx, xy = self._seen, self._w, self._x, self._y, self._xx, self._xy
        if seen < self.min_calls:
            return None
        spread = w * xx - x * x  # w^2 * variance of the sizes
        if spread <= 1e-9 * max(w * xx, 1.0):
            return None
        per_token = (w * xy - x * y) / spread
        fixed = (y - per_token * x) / w
        return CallCostFit(fixed_s=fixed, per_token_s=per_token, calls=w)

    def overhead_tokens(self) -> int:
        fit = self.fit()
        if fit is None or fit.per_token_s <= 0:
            return round(self.prior_tokens)
        return round(min(max(fit.overhead_tokens, self.prior_tokens), self.max_tokens))
