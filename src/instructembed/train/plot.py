"""Loss curve from `train_log.jsonl` (raw loss and a running mean) -> PNG. Needs matplotlib ([train] extra)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def read_log(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def running_mean(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_loss(logs: Path | dict[str, Path], png: Path, window: int = 50) -> Path:
    """One log, or {label: log} for several runs on one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {"": logs} if isinstance(logs, Path) else logs
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, path in runs.items():
        rows = [r for r in read_log(Path(path)) if "loss" in r]
        steps = [int(r["step"]) for r in rows]  # type: ignore[call-overload]
        losses = [float(r["loss"]) for r in rows]  # type: ignore[arg-type]
        if not label:
            ax.plot(steps, losses, alpha=0.3, linewidth=0.8, label="loss")
        ax.plot(
            steps,
            running_mean(losses, window),
            linewidth=1.5,
            label=f"{label + ' ' if label else ''}mean of {window}",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png
