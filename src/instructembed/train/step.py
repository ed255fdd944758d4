"""One optimization step's forward and backward: the plain step and the cached (GradCache) step.

Both call `EmbeddingModel.forward` -- the same forward pass inference uses -- with gradients.
The cached step (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup") gives the same gradients as the plain step while holding activations for only
`chunk_size` rows at a time:

1. embed every chunk without a graph, recording the RNG state before each (dropout);
2. compute the loss on the detached embeddings and backpropagate to them only;
3. re-embed each chunk with a graph under its recorded RNG state and backpropagate the cached
   embedding gradients through it (d loss / d theta = sum_rows (d loss / d e_row) . (d e_row / d theta)).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from instructembed.batching import TokenBatch, collate
from instructembed.inputs import Item
from instructembed.model import EmbeddingModel
from instructembed.tokenize import InstructionTokenizer
from instructembed.train.distributed import DistInfo, gather_with_grad
from instructembed.train.loss import LossFn, cosent_loss

ROLE_ORDER = ("query", "pos", "neg")


@dataclass(frozen=True)
class StepInputs:
    """Tokenized rows of one local batch, per role, in `chunk`-sized pieces (one piece when not cached)."""

    chunks: dict[str, list[TokenBatch]]  # roles in ROLE_ORDER; a scored batch has query and pos only
    n_rows: int
    scores: torch.Tensor | None = None  # (B,) gold scores of a scored-pairs batch (CoSENT)


def tokenize_roles(
    tokenizer: InstructionTokenizer,
    roles: Mapping[str, Sequence[Item]],
    chunk_size: int | None,
    scores: Sequence[float] | None = None,
) -> StepInputs:
    chunks: dict[str, list[TokenBatch]] = {}
    n_rows = len(roles["query"])
    for role in (r for r in ROLE_ORDER if r in roles):
        items = list(roles[role])
        encoded = tokenizer.encode(items)
        size = chunk_size or len(items)
        chunks[role] = [
            collate(
                encoded[s : s + size],
                range(s, min(s + size, len(items))),
                tokenizer.pad_id,
                tokenizer.uses_type_ids,
            )
            for s in range(0, len(items), size)
        ]
    gold = None if scores is None else torch.tensor(list(scores), dtype=torch.float32)
    return StepInputs(chunks, n_rows, gold)


def _forward(model: EmbeddingModel, batch: TokenBatch, device: torch.device) -> torch.Tensor:
    def put(a: object) -> torch.Tensor:
        return torch.from_numpy(a).to(device, non_blocking=True)  # type: ignore[arg-type]

    return model(
        put(batch.input_ids),
        put(batch.attention_mask),
        put(batch.pool_mask),
        put(batch.token_type_ids) if batch.token_type_ids is not None else None,
    )  # (b, D)


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager[object]:
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _global_loss(
    reps: dict[str, torch.Tensor],
    loss_fn: LossFn,
    temperature: float,
    dist_info: DistInfo,
    scores: torch.Tensor | None = None,
) -> torch.Tensor:
    if scores is not None:  # scored pairs: CoSENT on (text1, text2, score)
        a, b = (gather_with_grad(reps[r], dist_info) for r in ("query", "pos"))  # (G, D) each
        gold = gather_with_grad(scores.to(a.device), dist_info)  # (G,)
        return cosent_loss(a, b, gold, temperature)
    q, p, n = (gather_with_grad(reps[r], dist_info) for r in ROLE_ORDER)  # (G, D) each
    return loss_fn(q, p, n, temperature)


def plain_step(
    model: EmbeddingModel,
    inputs: StepInputs,
    loss_fn: LossFn,
    temperature: float,
    *,
    device: torch.device,
    bf16: bool = False,
    dist_info: DistInfo | None = None,
) -> float:
    """Forward all rows with a graph, loss on the global batch, backward. Returns the loss."""
    info = dist_info or DistInfo()
    reps: dict[str, torch.Tensor] = {}
    with _autocast(device, bf16):
        for role in inputs.chunks:
            reps[role] = torch.cat([_forward(model, c, device) for c in inputs.chunks[role]]).float()
    loss = _global_loss(reps, loss_fn, temperature, info, inputs.scores)
    loss.backward()
    return float(loss.detach())


class _RngState:
    """CPU (and current CUDA device) RNG state, so a chunk's re-forward draws the same dropout."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.device = device

    @contextlib.contextmanager
    def restored(self) -> Iterator[None]:
        with torch.random.fork_rng(devices=[self.device] if self.cuda is not None else []):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def cached_step(
    model: EmbeddingModel,
    inputs: StepInputs,
    loss_fn: LossFn,
    temperature: float,
    *,
    device: torch.device,
    bf16: bool = False,
    dist_info: DistInfo | None = None,
) -> float:
    """GradCache: the plain step's gradients with activations for one chunk at a time."""
    info = dist_info or DistInfo()
    states: dict[str, list[_RngState]] = {}
    reps: dict[str, torch.Tensor] = {}
    with torch.no_grad(), _autocast(device, bf16):
        for role in inputs.chunks:
            outs = []
            states[role] = []
            for chunk in inputs.chunks[role]:
                states[role].append(_RngState(device))
                outs.append(_forward(model, chunk, device).float())
            reps[role] = torch.cat(outs).requires_grad_(True)  # (B, D) leaf: collects d loss / d e
    loss = _global_loss(reps, loss_fn, temperature, info, inputs.scores)
    loss.backward()
    for role in inputs.chunks:
        grad = reps[role].grad
        if grad is None:  # pragma: no cover - every role enters the loss
            continue
        start = 0
        for chunk, state in zip(inputs.chunks[role], states[role], strict=True):
            rows = len(chunk.indices)
            with state.restored(), _autocast(device, bf16):
                out = _forward(model, chunk, device).float()
            out.backward(grad[start : start + rows])
            start += rows
    return float(loss.detach())


StepFn = Callable[..., float]
