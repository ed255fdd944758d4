"""Backends side by side on the same inputs: speed, agreement with torch fp32, memory, roofline.

    python benchmarks/backends.py --model all-MiniLM-L6-v2 --short 1000 --long 128 --rounds 3

Inputs (real text from ../shared/data, each with an instruction):
  short: STS-B test sentences          with "Represent the sentence for semantic similarity: "
  long:  SciFact abstracts (title + text) with "Represent the scientific document for retrieval: "

Configurations: sentence-transformers fp32 (the baseline: `prompt=` with the Pooling module's
`include_prompt=False`, so instruction tokens are not pooled, as INSTRUCTOR does), our torch fp32,
torch fp32 through torch.compile (a trial: inductor, freezing on, dynamic shapes), torch bf16 (encoder weights cast), torch bf16 via autocast (fp32 weights), ONNX fp32, ONNX int8 (default coverage: FFN down
projections fp32) and ONNX int8 with every matmul quantized; OpenVINO fp32 (f32 precision), OpenVINO
bf16 (the fp32 graph run in bf16) and OpenVINO static int8 (NNCF, calibrated on the packaged set).
sentence-transformers' own ONNX backend needs `optimum-onnx`, which pins transformers < 4.58; it is
measured only when it imports.

Timing: every configuration is loaded once and warmed up; then `--rounds` rounds run every
configuration in turn (interleaved, so a noisy neighbour slows all of them alike) and the best round
counts. Peak RSS is measured in a fresh subprocess per configuration (load + embed 256 rows of each set).
Roofline: the best torch fp32 GEMM rate on MiniLM-sized shapes (measured in every round, best
counts), against FLOPs/token =
2 x the weight matrices every token goes through (not the embedding tables, not BERT's once-per-row
pooler) + 4 x layers x hidden x mean padded length (attention).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roofline import attention_flops_per_token, gemm_rate, matmul_flops_per_token

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SHORT_INSTRUCTION = "Represent the sentence for semantic similarity: "
LONG_INSTRUCTION = "Represent the scientific document for retrieval: "
CONFIGS = (
    "st-fp32",
    "st-onnx-int8",
    "torch-fp32",
    "torch-fp32-compiled",
    "torch-bf16",
    "torch-bf16-autocast",
    "onnx-fp32",
    "onnx-int8",
    "onnx-int8-all",
    "openvino-fp32",
    "openvino-bf16",
    "openvino-int8",
)


# ------------------------------------------------------------------------------------------- data
def sts_sentences(n: int) -> list[str]:
    """STS-B test sentences (columns 5 and 6; QUOTE_NONE: the file has stray quotes), deduplicated."""
    seen: dict[str, None] = {}
    with (DATA / "stsbenchmark" / "sts-test.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                seen.setdefault(row[5], None)
                seen.setdefault(row[6], None)
    return list(seen)[:n]


def scifact_abstracts(n: int) -> list[str]:
    from instructembed.eval.loaders import load_scifact

    corpus = load_scifact(DATA).corpus
    docs = [f"{title}. {text}" for title, text in corpus.values()]
    step = max(1, len(docs) // n)
    return docs[::step][:n]


# ------------------------------------------------------------------------------------------- configs
@dataclass
class Runner:
    name: str
    embed: Callable[[list[tuple[str, str]]], np.ndarray]


def make_runner(name: str, model: str, cache_dir: Path) -> Runner | None:
    from instructembed import Embedder

    if name == "torch-fp32":
        e = Embedder.load(model)
        return Runner(name, e.embed)
    if name == "torch-fp32-compiled":
        # A trial, not a feature: inductor with freezing (weights prepacked for oneDNN, pointwise ops
        # fused into the matmuls), dynamic shapes so every batch shape reuses one compilation.
        import torch
        import torch._inductor.config as inductor

        inductor.freezing = True
        e = Embedder.load(model)
        assert e.model is not None
        e.model.encoder = torch.compile(e.model.encoder, dynamic=True)  # type: ignore[assignment]
        return Runner(name, e.embed)
    if name == "torch-bf16":
        e = Embedder.load(model, dtype="bfloat16")
        return Runner(name, e.embed)
    if name == "torch-bf16-autocast":
        import torch

        e = Embedder.load(model)

        def run(items: list[tuple[str, str]]) -> np.ndarray:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return e.embed(items)

        return Runner(name, run)
    if name == "onnx-fp32":
        e = Embedder.load(model, backend="onnx", cache_dir=cache_dir)
        return Runner(name, e.embed)
    if name == "onnx-int8":
        e = Embedder.load(model, backend="onnx", quantize="int8", cache_dir=cache_dir)
        return Runner(name, e.embed)
    if name == "onnx-int8-all":
        from instructembed.export import export_onnx

        out = export_onnx(model, cache_dir / "int8-all", int8=True, int8_coverage="all")
        e = Embedder.load(out, backend="onnx", quantize="int8")
        return Runner(name, e.embed)
    if name.startswith("openvino-"):
        kind = name.removeprefix("openvino-")
        e = Embedder.load(
            model,
            backend="openvino",
            quantize="int8" if kind == "int8" else None,
            dtype="bfloat16" if kind == "bf16" else None,
            cache_dir=cache_dir,
        )
        return Runner(name, e.embed)
    if name in ("st-fp32", "st-onnx-int8"):
        from sentence_transformers import SentenceTransformer

        from instructembed.checkpoint import resolve_model_dir

        path = str(resolve_model_dir(model))
        if name == "st-fp32":
            st = SentenceTransformer(path, device="cpu")
        else:
            try:
                st = SentenceTransformer(
                    path,
                    device="cpu",
                    backend="onnx",
                    model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx"},
                )
            except Exception as exc:  # optimum missing or incompatible: report and skip
                print(f"# {name}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
                return None
        for module in st:
            if hasattr(module, "include_prompt"):
                setattr(module, "include_prompt", False)  # noqa: B010

        def st_embed(items: list[tuple[str, str]]) -> np.ndarray:
            # All items of one call share an instruction here (one per data set).
            prompt = items[0][0]
            return np.asarray(
                st.encode([t for _, t in items], prompt=prompt, batch_size=32, normalize_embeddings=False),
                dtype=np.float32,
            )

        return Runner(name, st_embed)
    raise ValueError(name)


# ------------------------------------------------------------------------------------------- roofline
def model_flops_per_token(model: str, mean_padded: float) -> tuple[float, float]:
    """(matmul FLOPs/token, attention FLOPs/token at this padded length): see roofline.py."""
    from instructembed import Embedder

    e = Embedder.load(model)
    assert e.model is not None
    encoder: Any = e.model.encoder
    return matmul_flops_per_token(encoder), attention_flops_per_token(encoder.config, mean_padded)


# ------------------------------------------------------------------------------------------- rss
def rss_child(name: str, model: str, cache_dir: str, short: list[str], long: list[str]) -> None:
    runner = make_runner(name, model, Path(cache_dir))
    if runner is None:
        print(json.dumps({"rss_mb": None}))
        return
    runner.embed([(SHORT_INSTRUCTION, t) for t in short])
    runner.embed([(LONG_INSTRUCTION, t) for t in long])
    print(json.dumps({"rss_mb": vm_hwm_mb()}))


def vm_hwm_mb() -> float:
    """Peak RSS of this process image. Not ru_maxrss: Linux carries that over from the parent across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss(name: str, model: str, cache_dir: Path, short: list[str], long: list[str]) -> float | None:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"short": short[:256], "long": long[:256]}, f)
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--rss-child",
            name,
            "--model",
            model,
            "--cache-dir",
            str(cache_dir),
            "--inputs",
            f.name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    Path(f.name).unlink()
    for line in reversed(proc.stdout.splitlines()):
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(line)["rss_mb"]  # type: ignore[no-any-return]
    print(f"# rss {name} failed: {proc.stderr[-400:]}")
    return None


# ------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--short", type=int, default=1000, help="STS-B sentences")
    parser.add_argument("--long", type=int, default=128, help="SciFact abstracts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="ONNX export cache (default: a temp dir)"
    )
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        data = json.loads(args.inputs.read_text())
        rss_child(args.rss_child, args.model, str(args.cache_dir), data["short"], data["long"])
        return

    import torch

    from instructembed import Embedder

    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="ie-onnx-"))
    sets = {
        "short": [(SHORT_INSTRUCTION, t) for t in sts_sentences(args.short)],
        "long": [(LONG_INSTRUCTION, t) for t in scifact_abstracts(args.long)],
    }
    counter = Embedder.load(args.model)
    tokens = {k: sum(len(e.ids) for e in counter.tokenizer.encode(_items(v))) for k, v in sets.items()}
    print(
        f"# model {args.model}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{platform.processor() or platform.machine()}; command: python {' '.join(sys.argv)}"
    )
    for k, v in sets.items():
        print(f"# {k}: {len(v)} texts, {tokens[k]} tokens (mean {tokens[k] / len(v):.1f} incl. instruction)")

    runners: dict[str, Runner] = {}
    for name in args.configs:
        t0 = time.perf_counter()
        runner = make_runner(name, args.model, cache_dir)
        if runner is None:
            continue
        for items in sets.values():
            runner.embed(items[:64])  # warm-up (and the ONNX export, on a cold cache)
        runners[name] = runner
        print(f"# loaded {name} in {time.perf_counter() - t0:.1f}s")

    best: dict[tuple[str, str], float] = {}
    vectors: dict[tuple[str, str], np.ndarray] = {}
    fp32_rate = bf16_rate = 0.0
    for r in range(args.rounds):
        for name, runner in runners.items():
            for key, items in sets.items():
                t0 = time.perf_counter()
                out = runner.embed(items)
                dt = time.perf_counter() - t0
                best[name, key] = min(dt, best.get((name, key), float("inf")))
                vectors[name, key] = out
        # The GEMM rate is measured in every round too, and its best counts, as for throughput:
        # one measurement at the end caught whatever load the machine had at that moment.
        fp32_rate = max(fp32_rate, gemm_rate("float32", seconds=0.6))
        bf16_rate = max(bf16_rate, gemm_rate("bfloat16", seconds=0.6))
        print(f"# round {r + 1}/{args.rounds} done")

    rss = (
        {}
        if args.no_rss
        else {
            name: peak_rss(
                name, args.model, cache_dir, [t for _, t in sets["short"]], [t for _, t in sets["long"]]
            )
            for name in runners
        }
    )
    mean_padded = tokens["short"] / len(sets["short"])
    matmul_flops, attn_flops = model_flops_per_token(args.model, mean_padded)

    rows = []
    base = "st-fp32" if "st-fp32" in runners else next(iter(runners))
    for name in runners:
        for key in sets:
            dt = best[name, key]
            ref = vectors.get(("torch-fp32", key))
            out = vectors[name, key]
            cos = diff = float("nan")
            if ref is not None:
                cos = float(
                    ((out * ref).sum(1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1))).min()
                )
                diff = float(np.abs(out - ref).max())
            rows.append(
                {
                    "config": name,
                    "set": key,
                    "texts_s": len(sets[key]) / dt,
                    "tokens_s": tokens[key] / dt,
                    "ratio": best[base, key] / dt,
                    "min_cos": cos,
                    "max_abs": diff,
                    "rss_mb": rss.get(name),
                }
            )
    print()
    print(
        f"| backend | set | texts/s | tokens/s | × {base} | min cos vs torch fp32 | max abs diff | peak RSS MB |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        rss_text = f"{row['rss_mb']:.0f}" if row["rss_mb"] else "-"
        print(
            f"| {row['config']} | {row['set']} | {row['texts_s']:.1f} | {row['tokens_s']:.0f} | "
            f"{row['ratio']:.2f} | {_num(row['min_cos'], '.5f')} | {_num(row['max_abs'], '.2e')} | {rss_text} |"
        )
    print()
    print(
        f"GEMM (torch, {torch.get_num_threads()} threads, best of MiniLM shapes): fp32 {fp32_rate:.0f} GFLOP/s, "
        f"bf16 {bf16_rate:.0f} GFLOP/s ({bf16_rate / fp32_rate:.2f}x)"
    )
    print(
        f"FLOPs/token: {matmul_flops / 1e6:.1f} M matmul (2 x per-token weight params, roofline.py) + "
        f"{attn_flops / 1e6:.1f} M attention (short set, mean length {mean_padded:.1f})"
    )
    for name in ("torch-fp32", "torch-fp32-compiled", "onnx-fp32", "openvino-fp32"):
        for key in sets:
            if (name, key) in best:
                tps = tokens[key] / best[name, key]
                mean_len = tokens[key] / len(sets[key])
                per_token = matmul_flops + attn_flops * mean_len / mean_padded
                print(
                    f"roofline {name} {key}: {tps:.0f} tokens/s x {per_token / 1e6:.1f} MFLOP = "
                    f"{tps * per_token / 1e9:.0f} GFLOP/s = {100 * tps * per_token / 1e9 / fp32_rate:.0f}% "
                    "of the fp32 GEMM rate"
                )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "gemm_fp32": fp32_rate,
                    "gemm_bf16": bf16_rate,
                    "tokens": tokens,
                    "argv": sys.argv,
                },
                indent=2,
            )
        )


def _num(value: float, spec: str) -> str:
    """A table cell: "-" where there was nothing to compare with (torch-fp32 not among --configs)."""
    return "-" if np.isnan(value) else format(value, spec)


def _items(pairs: list[tuple[str, str]]) -> list[Any]:
    from instructembed.inputs import to_items

    return to_items(pairs)


if __name__ == "__main__":
    main()
