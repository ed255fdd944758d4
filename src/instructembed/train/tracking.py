"""Dev scores during training and the best checkpoint they choose; the test file scored once.

    tracker = DevTracker(out, dev, test, bf16=False)
    tracker.start(embedder)              # step 0: the base model on dev (and on test, kept aside)
    tracker.update(embedder, step)       # every N steps: dev; a new best is written to best.pt
    result = tracker.finish(embedder)    # best weights back in the model; test scored once

The base model's test score is computed at step 0 with the base weights (it chooses nothing); the
tuned model's test score only once, at the end, on the weights dev chose. Files under `out`:
`best.pt` (weights of the best dev step, written atomically), `base_scores.json`.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from instructembed.embedder import Embedder
from instructembed.eval.encoder import CachingEncoder
from instructembed.train.user_eval import Evaluator

log = logging.getLogger(__name__)

BEST_FILE = "best.pt"
BASE_FILE = "base_scores.json"


@dataclass
class Best:
    step: int
    main: float


def eval_encoder(embedder: Embedder, bf16: bool) -> Embedder:
    """The embedder as it is now; with bf16, a bfloat16 copy (the training weights stay fp32)."""
    if not bf16 or embedder.model is None:
        return embedder
    from instructembed.backends.torch_backend import TorchBackend

    model = copy.deepcopy(embedder.model)
    device = next(embedder.model.parameters()).device
    backend = TorchBackend(model, device, torch.bfloat16)
    return Embedder(embedder.spec, embedder.tokenizer, backend, name=embedder.name, config=embedder.config)


class DevTracker:
    def __init__(self, out: Path, dev: Evaluator, test: Evaluator | None, *, bf16: bool) -> None:
        self.out, self.dev, self.test, self.bf16 = out, dev, test, bf16
        self.best: Best | None = None
        self.base: dict[str, Any] = {}
        self._cache: tuple[int, CachingEncoder] | None = None  # embeddings of one model state (step)

    def _score(self, evaluator: Evaluator, embedder: Embedder, step: int) -> dict[str, float]:
        was_training = embedder.model is not None and embedder.model.training
        if embedder.model is not None:
            embedder.model.eval()
        try:
            if self._cache is None or self._cache[0] != step:
                self._cache = (step, CachingEncoder(eval_encoder(embedder, self.bf16)))
            with torch.no_grad():
                return evaluator.score(self._cache[1])
        finally:
            if was_training and embedder.model is not None:
                embedder.model.train()

    def _save_best(self, embedder: Embedder, step: int, main: float) -> None:
        if embedder.model is None:  # pragma: no cover - the torch backend always has one
            return
        tmp = self.out / f".{BEST_FILE}.tmp"
        torch.save({k: v.detach().cpu() for k, v in embedder.model.state_dict().items()}, tmp)
        tmp.replace(self.out / BEST_FILE)
        self.best = Best(step, main)

    def start(self, embedder: Embedder, resumed_best: dict[str, Any] | None) -> dict[str, float] | None:
        """Step 0 scores (a fresh run), or the state a resumed run had. Returns what to log."""
        base_path = self.out / BASE_FILE
        if resumed_best is not None and base_path.exists():
            self.best = Best(int(resumed_best["step"]), float(resumed_best["main"]))
            self.base = json.loads(base_path.read_text(encoding="utf-8"))
            return None
        dev = self._score(self.dev, embedder, 0)
        self.base = {"dev": dev}
        if self.test is not None:
            self.base["test"] = self._score(self.test, embedder, 0)
        base_path.write_text(json.dumps(self.base, indent=2) + "\n", encoding="utf-8")
        self._save_best(embedder, 0, dev["main"])
        log.info("base model on dev: %s", dev)
        return dev

    def update(self, embedder: Embedder, step: int) -> dict[str, float]:
        dev = self._score(self.dev, embedder, step)
        if self.best is None or dev["main"] > self.best.main:
            self._save_best(embedder, step, dev["main"])
        return dev

    def state(self) -> dict[str, Any] | None:
        return None if self.best is None else {"step": self.best.step, "main": self.best.main}

    def finish(self, embedder: Embedder, last_step: int, keep_best: bool) -> dict[str, Any]:
        """Load the best dev weights (when `keep_best`), score test once; the before/after record."""
        chosen = last_step
        if keep_best and self.best is not None and self.best.step != last_step and embedder.model is not None:
            state = torch.load(self.out / BEST_FILE, map_location="cpu", weights_only=True)
            embedder.model.load_state_dict(state)
            chosen = self.best.step
            self._cache = None  # the weights changed: embeddings of step `chosen` are no longer held
            if chosen == 0:
                log.warning("no step beat the base model on dev; the saved model is the base model")
            else:
                log.info("keeping step %d, the best on dev (%s %.2f)", chosen, self.dev.main, self.best.main)
        dev_after = self._score(self.dev, embedder, chosen)
        result: dict[str, Any] = {
            "metric": self.dev.main,
            "chosen_step": chosen,
            "dev": {"base": self.base.get("dev"), "tuned": dev_after},
        }
        if self.test is not None:
            result["test"] = {
                "base": self.base.get("test"),
                "tuned": self._score(self.test, embedder, chosen),
            }
        return result


def before_after_table(result: dict[str, Any]) -> str:
    """The printed summary: one line per split and metric, base -> tuned (difference)."""
    lines = [f"{'split':<6} {'metric':<16} {'base':>8} {'tuned':>8} {'change':>8}"]
    for split in ("dev", "test"):
        scores = result.get(split)
        if not scores or not scores.get("base") or not scores.get("tuned"):
            continue
        for metric, tuned in scores["tuned"].items():
            if metric == "main":
                continue
            base = scores["base"].get(metric)
            if base is None:
                continue
            lines.append(f"{split:<6} {metric:<16} {base:>8.2f} {tuned:>8.2f} {tuned - base:>+8.2f}")
    lines.append(f"model chosen on dev: step {result['chosen_step']} (by {result['metric']})")
    return "\n".join(lines)
