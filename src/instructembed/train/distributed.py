"""Data parallelism across processes (torchrun): the contrastive batch is the *global* batch.

Each rank embeds its own slice of the batch; `gather_with_grad` concatenates every rank's
embeddings so the loss sees all of them, with gradients flowing to this rank's rows only. Every
rank then holds the same global loss, and the gradient of that loss with respect to the weights is
the *sum* of the ranks' partial gradients, which `all_reduce_grads` computes in one flat
all-reduce per step.

We reduce gradients ourselves instead of wrapping the model in DistributedDataParallel: the cached
(GradCache) step backpropagates each chunk separately, and DDP's reducer would fire on every one of
them; one explicit reduction after the last chunk is the same communication DDP does, done once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_torchrun(device: str) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); called at the CLI edge."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    log.info("distributed: rank %d of %d (%s)", info.rank, info.world_size, dist.get_backend())
    return info


def current() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def gather_with_grad(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """(B, D) per rank -> (world * B, D) in rank order; gradients flow to this rank's rows only."""
    if not info.enabled:
        return x
    parts = [torch.empty_like(x) for _ in range(info.world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[info.rank] = x  # keep the autograd edge for our own rows
    return torch.cat(parts, dim=0)


def all_reduce_grads(module: torch.nn.Module, info: DistInfo) -> None:
    """Sum parameter gradients over ranks (each rank holds the gradient through its own rows)."""
    if not info.enabled:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def broadcast_parameters(module: torch.nn.Module, info: DistInfo) -> None:
    """Start every rank from rank 0's weights."""
    if not info.enabled:
        return
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
