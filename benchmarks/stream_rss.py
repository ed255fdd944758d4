"""Peak memory of `instructembed embed` on generated inputs of growing size: streaming means flat.

    python benchmarks/stream_rss.py --lines 100000 1000000            # tiny random BERT (default)
    python benchmarks/stream_rss.py --model all-MiniLM-L6-v2 --lines 20000 200000 --backend openvino

Each size runs in a fresh process (`instructembed embed -i FILE -o OUT.npy --no-progress`) that
reports its own peak RSS (VmHWM; `ru_maxrss` would carry over the parent's peak across exec).
The default model is a tiny random BERT in the INSTRUCTOR layout, so a million lines take minutes:
the pipeline's memory (reading, tokenizing, batching, writing) does not depend on the model's size,
whose weights only add a constant. Prints per size: lines, seconds, texts/s, peak RSS, rows written,
and the ratio of the largest to the smallest peak (1.00 = memory independent of input size).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import json, sys
from pathlib import Path
from instructembed.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
hwm = next(l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM:'))
print(json.dumps({'rss_mib': int(hwm.split()[1]) / 1024}))
"""


def generate(path: Path, lines: int) -> None:
    """Lines of varied length, a blank line every 1,000 (kept: row i = line i), no final newline."""
    words = [
        "the",
        "of",
        "a",
        "model",
        "text",
        "instruction",
        "embedding",
        "stream",
        "memory",
        "file",
        "line",
        "token",
        "batch",
    ]
    with path.open("w", encoding="utf-8") as f:
        for i in range(lines):
            if i % 1000 == 999:
                f.write("\n")
                continue
            n = 3 + (i * 7919) % 24
            f.write(f"{i} " + " ".join(words[(i + k) % len(words)] for k in range(n)))
            if i < lines - 1:
                f.write("\n")


def run(model: str, source: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    args = ["embed", "-m", model, "-i", str(source), "-o", str(out), "--no-progress", "--overwrite", *extra]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"embed failed on {source}: {done.stderr[-1500:]}")
    rss = json.loads(done.stdout.strip().splitlines()[-1])["rss_mib"]
    return seconds, float(rss)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--model", default=None, help="default: a tiny random BERT built in a temp dir")
    parser.add_argument("--instruction", default="Represent the sentence for retrieval: ")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="ie-stream-"))
    work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from instructembed.testing import build_checkpoint

        model = str(build_checkpoint(work / "tiny-bert", "bert"))
    extra = ["--instruction", args.instruction, "--backend", args.backend]
    print(f"# model {args.model or 'tiny random BERT'}; backend {args.backend}; {os.cpu_count()} CPUs")
    print(f"# command: python {' '.join(sys.argv)}")
    print("| lines | input MiB | seconds | texts/s | peak RSS MiB | rows written |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    peaks = []
    for lines in sorted(args.lines):
        source, out = work / f"input-{lines}.txt", work / f"out-{lines}.npy"
        generate(source, lines)
        seconds, rss = run(model, source, out, extra)
        rows = np.load(out, mmap_mode="r").shape[0]
        if rows != lines:
            raise SystemExit(f"{out} has {rows} rows for {lines} input lines")
        peaks.append(rss)
        size = source.stat().st_size / 2**20
        print(f"| {lines:,} | {size:.0f} | {seconds:.0f} | {lines / seconds:.0f} | {rss:.0f} | {rows:,} |")
        source.unlink()
        out.unlink()
    print(
        f"peak RSS, largest / smallest input: {peaks[-1] / peaks[0]:.2f}x ({peaks[-1] - peaks[0]:+.1f} MiB)"
    )


if __name__ == "__main__":
    main()
