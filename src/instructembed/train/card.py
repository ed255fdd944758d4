"""The tuned model's `README.md`: a model card in the sentence-transformers style, from summary.json.

It says what a reader needs to trust and reproduce the model: the base model, each dataset with its
shape, size and instructions, the recipe, dev and test before -> after, and the exact command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from instructembed.train.user_data import Dataset


def _scores_table(scores: dict[str, Any] | None) -> list[str]:
    if not scores:
        return ["No `--eval` file was given, so this run has no before/after scores."]
    lines = ["| split | metric | base | tuned | change |", "| --- | --- | ---: | ---: | ---: |"]
    for split in ("dev", "test"):
        part = scores.get(split) or {}
        base, tuned = part.get("base") or {}, part.get("tuned") or {}
        for metric, value in tuned.items():
            if metric == "main" or metric not in base:
                continue
            lines.append(
                f"| {split} | {metric} | {base[metric]:.2f} | {value:.2f} | {value - base[metric]:+.2f} |"
            )
    lines.append("")
    lines.append(
        f"The saved weights are those of step {scores['chosen_step']}, the best on dev by "
        f"`{scores['metric']}`; the test file was scored once, on those weights."
    )
    return lines


def render_model_card(summary: dict[str, Any], datasets: list[Dataset], command: str) -> str:
    config = summary["config"]
    rows = []
    for d in datasets:
        spec = d.spec
        rows.append(
            f"| {spec.task} | `{spec.path.name}` | {spec.shape.value} | {len(d.examples)} | {spec.weight:g} | "
            f"{spec.query_instruction!r} | {spec.document_instruction!r} |"
        )
    lines = [
        "---",
        "library_name: instructembed",
        "tags: [sentence-transformers, feature-extraction, sentence-similarity, instructembed]",
        f"base_model: {config['model']}",
        "---",
        "",
        f"# Fine-tuned {config['model']}",
        "",
        f"Fine-tuned from `{config['model']}` with instructembed's trainer (one task per batch, "
        f"{config['loss']} loss{', CoSENT for scored pairs' if any(d.scored for d in datasets) else ''}).",
        "",
        "```python",
        "from instructembed import Embedder",
        "",
        'model = Embedder.load("PATH/TO/THIS/DIRECTORY")',
        'vectors = model.embed(["a text"], instruction="the instruction it was trained with")',
        "```",
        "",
        "## Training data",
        "",
        "| task | file | shape | examples | weight | query instruction | document instruction |",
        "| --- | --- | --- | ---: | ---: | --- | --- |",
        *rows,
        "",
        "## Recipe",
        "",
        f"temperature {config['temperature']}, learning rate {config['lr']}, warm-up ratio {config['warmup_ratio']}, "
        f"global batch {config['batch_size']}, {summary['steps']} steps, max length "
        f"{config['max_length'] or 'the model default'}, bf16 {config['bf16']}, seed {config['seed']}, "
        f"GradCache chunk {config['chunk_size']}.",
        "",
        "## Evaluation (base model vs this model, same instructions)",
        "",
        *_scores_table(summary.get("scores")),
        "",
        "## Reproduce",
        "",
        "```bash",
        command,
        "```",
        "",
        f"instructembed commit {summary.get('git_commit')}, torch {summary.get('torch')}.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    model_dir: Path, summary: dict[str, Any], datasets: list[Dataset], command: str | None
) -> Path:
    """`command`: the command line that ran (the CLI passes it); None for a library call."""
    command = command or "# trained from Python: instructembed.train.loop.train(TrainConfig(...))"
    path = model_dir / "README.md"
    path.write_text(render_model_card(summary, datasets, command), encoding="utf-8")
    return path
