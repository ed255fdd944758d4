"""The language model that prompt retrieval hands its prompts to: a plug-in, local or remote.

Two implementations of one small protocol (`LanguageModel`):

- `LocalCausalLM(directory)`: a Hugging Face causal-LM directory (GPT-2, GPT-J, Llama, ...) read with
  `transformers` offline; greedy decoding; option log-likelihoods from one forward pass each.
- `CompletionsLM(base_url, model)`: an OpenAI-compatible `/v1/completions` endpoint (vLLM, llama.cpp's
  server, text-generation-inference, OpenAI itself): `temperature=0` generation, and option
  log-likelihoods through `echo=true, logprobs=0` (the prompt's own token log-probabilities).

`open_lm(spec)` picks one: an `http(s)://` URL is an endpoint, anything else a local directory.
Token budgets are counted by a `TokenCounter`; `budget_counter(...)` says which one and why.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from instructembed.errors import InputFileError

__all__ = [
    "CompletionsLM",
    "HFTokenCounter",
    "LanguageModel",
    "LocalCausalLM",
    "TokenCounter",
    "budget_counter",
    "open_lm",
    "truncate_at_stop",
]

logger = logging.getLogger(__name__)


@runtime_checkable
class LanguageModel(Protocol):
    """What prompt retrieval needs from an LM: a greedy continuation and per-option log-likelihoods."""

    name: str

    def complete(self, prompt: str, *, max_tokens: int, stop: Sequence[str]) -> str: ...

    def option_logprobs(self, prompt: str, options: Sequence[str]) -> list[float]:
        """Mean log-probability per token of each option as the continuation of `prompt`."""
        ...


class TokenCounter(Protocol):
    name: str

    def count(self, text: str) -> int: ...


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (not including) the earliest of the `stop` strings."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


class HFTokenCounter:
    """Counts tokens with a Hugging Face tokenizer directory (no special tokens added)."""

    def __init__(self, directory: str | Path, tokenizer: Any = None) -> None:
        if tokenizer is None:
            from transformers import AutoTokenizer

            path = Path(directory)
            if not path.is_dir():
                raise InputFileError(f"--budget-tokenizer {directory}: not a tokenizer directory")
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._tok = tokenizer
        self.name = str(directory)

    def count(self, text: str) -> int:
        return len(self._tok(text, add_special_tokens=False)["input_ids"])


class LocalCausalLM:
    """A local Hugging Face causal LM (greedy, fp32 on CPU unless the directory says otherwise)."""

    def __init__(self, directory: str | Path, *, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(directory)
        if not (path / "config.json").is_file():
            raise InputFileError(
                f"--lm {directory}: not a Hugging Face model directory (no config.json); give a local "
                "causal-LM directory or an http(s):// URL of an OpenAI-compatible completions endpoint"
            )
        self.name = str(directory)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model: Any = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        self.model = model.to(device).eval()
        self._torch = torch
        self._device = device
        positions = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", 2048
        )
        self.max_length = int(positions or 2048)

    def counter(self) -> HFTokenCounter:
        return HFTokenCounter(self.name, self.tokenizer)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def complete(self, prompt: str, *, max_tokens: int, stop: Sequence[str]) -> str:
        torch = self._torch
        ids = self._ids(prompt)[-(self.max_length - max_tokens) :]  # keep the end: the question
        inputs = torch.tensor([ids], device=self._device)
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            out = self.model.generate(
                inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=pad if pad is not None else 0,
            )
        text = self.tokenizer.decode(out[0, len(ids) :].tolist(), skip_special_tokens=True)
        return truncate_at_stop(str(text), stop)

    def option_logprobs(self, prompt: str, options: Sequence[str]) -> list[float]:
        torch = self._torch
        context = self._ids(prompt)
        scores = []
        for option in options:
            target = self._ids(option)
            if not target:
                raise ValueError(f"option {option!r} has no tokens")
            ids = (context + target)[-self.max_length :]
            with torch.no_grad():
                logits = self.model(torch.tensor([ids], device=self._device)).logits[0]  # (T, V)
            logp = torch.log_softmax(logits.double(), dim=-1)
            n = len(target)
            positions = range(len(ids) - n - 1, len(ids) - 1)  # the logits that predict each option token
            total = sum(float(logp[p, ids[p + 1]]) for p in positions)
            scores.append(total / n)
        return scores


class CompletionsLM:
    """An OpenAI-compatible completions endpoint; `base_url` ends before `/completions` (e.g. .../v1)."""

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 120.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"{self.base_url} ({model})"
        self._api_key = api_key
        self._timeout = timeout_s

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(
            f"{self.base_url}/completions",
            data=json.dumps({"model": self.model, **body}).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                data = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise RuntimeError(f"{self.base_url}/completions answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise RuntimeError(
                f"cannot reach {self.base_url}/completions ({exc}); is the server running and is --lm its "
                "base URL (ending in /v1)?"
            ) from None
        if not isinstance(data, dict) or not data.get("choices"):
            raise RuntimeError(f"{self.base_url}/completions returned no choices: {str(data)[:300]}")
        return data

    def complete(self, prompt: str, *, max_tokens: int, stop: Sequence[str]) -> str:
        body: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
        if stop:
            body["stop"] = list(stop)[:4]  # OpenAI accepts at most four
        text = self._post(body)["choices"][0].get("text", "")
        return truncate_at_stop(str(text), stop)

    def option_logprobs(self, prompt: str, options: Sequence[str]) -> list[float]:
        scores = []
        for option in options:
            full = prompt + option
            choice = self._post(
                {"prompt": full, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 0}
            )["choices"][0]
            logprobs = choice.get("logprobs") or {}
            offsets, values = logprobs.get("text_offset"), logprobs.get("token_logprobs")
            if not isinstance(offsets, list) or not isinstance(values, list):
                raise RuntimeError(
                    f"{self.base_url} does not return prompt log-probabilities (echo + logprobs); option "
                    "scoring needs a server that does (vLLM, llama.cpp, OpenAI's legacy completions)"
                )
            # tokens that start inside the option, not in the prompt nor in the one generated token
            picked = [
                float(v)
                for o, v in zip(offsets, values, strict=False)
                if v is not None and len(prompt) <= o < len(full)
            ]
            if not picked:
                raise RuntimeError(f"{self.base_url} returned no log-probabilities for option {option!r}")
            scores.append(math.fsum(picked) / len(picked))
        return scores


def open_lm(spec: str, *, model: str | None = None, api_key: str | None = None) -> LanguageModel:
    """An endpoint for an http(s):// URL (needs `model`), else a local causal-LM directory."""
    if spec.startswith(("http://", "https://")):
        if not model:
            raise InputFileError("--lm is an endpoint URL: give the served model's name with --lm-model")
        return CompletionsLM(spec, model, api_key=api_key)
    return LocalCausalLM(spec)


def budget_counter(spec: str | Path | None, lm: LanguageModel | None) -> tuple[TokenCounter, str]:
    """(counter, why): `spec` if given; else the local LM's own tokenizer; else the packaged MiniLM's.

    The paper counts budgets with GPT-2's tokenizer; it is not shipped (nor downloadable offline), so
    pass a GPT-2 tokenizer directory as `spec` to count exactly as the paper did.
    """
    if spec:
        return HFTokenCounter(spec), f"--budget-tokenizer {spec}"
    if isinstance(lm, LocalCausalLM):
        return lm.counter(), f"the language model's own tokenizer ({lm.name})"
    from instructembed.checkpoint import resolve_model_dir

    root = resolve_model_dir("all-MiniLM-L6-v2")
    return (
        HFTokenCounter(root),
        "the packaged all-MiniLM-L6-v2 WordPiece tokenizer (GPT-2's, which the paper counts with, is not "
        "available offline; pass --budget-tokenizer GPT2_DIR for the paper's counts)",
    )
