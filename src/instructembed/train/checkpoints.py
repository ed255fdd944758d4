"""Training checkpoints: everything `--resume` needs, written atomically.

Layout: `<out>/checkpoints/step-00000100/` holding `model.pt`, `optimizer.pt`, `scheduler.pt`,
`state.json` (step, sampler position, config) and `rng-rank<r>.pt` (one per process: dropout draws
differ per rank). Each checkpoint is written into a hidden temporary directory beside it and then
renamed, so a crash never leaves a half-written checkpoint that looks complete.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from instructembed.train.distributed import DistInfo, barrier

log = logging.getLogger(__name__)

PREFIX = "step-"


@dataclass(frozen=True)
class Resumed:
    step: int
    state: dict[str, Any]


def checkpoint_dir(out: Path) -> Path:
    return out / "checkpoints"


def latest(out: Path) -> Path | None:
    """The newest complete checkpoint under `out`, or None."""
    root = checkpoint_dir(out)
    if not root.is_dir():
        return None
    done = sorted(
        p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / "state.json").exists()
    )
    return done[-1] if done else None


def rng_state(device: torch.device) -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save(
    out: Path,
    step: int,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    device: torch.device,
    dist_info: DistInfo,
    keep: int,
) -> Path:
    """Write checkpoint `step` (every rank calls this; rank 0 writes the shared parts)."""
    root = checkpoint_dir(out)
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".tmp-{PREFIX}{step:08d}"
    if dist_info.is_main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    barrier(dist_info)
    torch.save(rng_state(device), tmp / f"rng-rank{dist_info.rank}.pt")
    barrier(dist_info)
    if dist_info.is_main:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp / "model.pt")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        # state.json last: its presence marks the checkpoint complete
        (tmp / "state.json").write_text(
            json.dumps({**state, "step": step}, indent=2) + "\n", encoding="utf-8"
        )
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        _prune(root, keep)
        log.info("checkpoint written: %s", final)
    barrier(dist_info)
    return final


def _prune(root: Path, keep: int) -> None:
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def load(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    device: torch.device,
    dist_info: DistInfo,
) -> Resumed:
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    model.load_state_dict(torch.load(path / "model.pt", map_location=device, weights_only=True))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng_file = path / f"rng-rank{dist_info.rank}.pt"
    if rng_file.exists():
        set_rng_state(torch.load(rng_file, weights_only=False), device)
    else:
        log.warning(
            "%s has no RNG state for rank %d (different world size?); dropout draws will differ",
            path,
            dist_info.rank,
        )
    log.info("resumed from %s (step %d)", path, state["step"])
    return Resumed(int(state["step"]), state)
