"""Per family (tiny random checkpoints from `instructembed.testing_families`): our vectors vs
sentence-transformers' `encode(texts, prompt_name=...)` (worst over every declared prompt and none),
a batch vs each row alone, bf16 vs fp32 on the CPU, and the ONNX / OpenVINO exports vs torch.
Prints the markdown table of docs/models.md.

    PYTHONPATH=src python benchmarks/family_parity.py [--out DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from instructembed import CheckpointError, Embedder
from instructembed.testing import cosines
from instructembed.testing_families import FAMILY_RECIPES, FAMILY_TEXTS, build_family_checkpoint


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def measure(name: str, work: Path) -> dict[str, str]:
    from sentence_transformers import SentenceTransformer

    from instructembed.export import export_model

    root = build_family_checkpoint(work / name, name)
    recipe = FAMILY_RECIPES[name]
    ours = Embedder.load(root)
    st = SentenceTransformer(str(root), device="cpu")
    names = [None, *recipe.prompts]
    vs_st = max(
        _diff(ours.embed(FAMILY_TEXTS, prompt_name=p), st.encode(FAMILY_TEXTS, prompt_name=p, batch_size=4))
        for p in names
    )
    first = next(iter(recipe.prompts))
    batch = ours.embed(FAMILY_TEXTS, prompt_name=first)
    alone = np.stack([ours.embed([t], prompt_name=first)[0] for t in FAMILY_TEXTS])
    bf16 = Embedder.load(root, dtype="bfloat16").embed(FAMILY_TEXTS, prompt_name=first)
    row = {
        "family": ours.spec.family.name,
        "model_type": recipe.model_type,
        "pooling": recipe.pooling + ("" if recipe.include_prompt else " (prompt excluded)"),
        "padding": ours.tokenizer.padding_side,
        "end token": str(ours.tokenizer.end_token()),
        "prompts": ", ".join(recipe.prompts),
        "vs ST": f"{vs_st:.2g}",
        "batch vs alone": f"{_diff(batch, alone):.2g}",
        "bf16 min cos": f"{float(cosines(batch, bf16).min()):.5f}",
    }
    for fmt in ("onnx", "openvino"):
        try:
            out = export_model(root, work / f"{name}-{fmt}", formats=[fmt])
        except CheckpointError as exc:
            row[fmt] = "refused: " + ("decoder" if "decoder" in str(exc) else "NaN (measured)")
            continue
        exported = Embedder.load(out, backend=fmt)
        worst = max(
            _diff(exported.embed(FAMILY_TEXTS, prompt_name=p), ours.embed(FAMILY_TEXTS, prompt_name=p))
            for p in names
        )
        row[fmt] = f"{worst:.2g}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        rows = [measure(name, work) for name in FAMILY_RECIPES]
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row[h] for h in header) + " |", flush=True)


if __name__ == "__main__":
    main()
