"""What each framework integration costs on top of `Embedder.embed`, for the same texts and instruction.

Real text from ../shared/data (the STS-B test sentences), the packaged all-MiniLM-L6-v2, one process;
runs alternate and each figure is the best of --repeats, so the ratios hold on a noisy machine.
The LangChain server row goes through a real `instructembed serve` app on 127.0.0.1 (HTTP, base64).

    .venv/bin/python benchmarks/integrations_overhead.py [--repeats 3] [--limit 1024]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from instructembed import Embedder
from instructembed.eval.loaders import load_stsbenchmark
from instructembed.integrations.engine import DEFAULT_DOCUMENT_INSTRUCTION as DOC

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=1024)
    args = parser.parse_args()

    from haystack import Document

    from instructembed.integrations.chroma import InstructEmbeddingFunction
    from instructembed.integrations.haystack import InstructDocumentEmbedder
    from instructembed.integrations.langchain import InstructEmbeddings
    from instructembed.integrations.llamaindex import InstructEmbedding
    from instructembed.server import create_app
    from instructembed.server.testing import serve_in_thread

    split = load_stsbenchmark(DATA)
    texts = list(dict.fromkeys(split.sentences1 + split.sentences2))[: args.limit]
    model = Embedder.load("all-MiniLM-L6-v2")
    docs = [Document(content=t) for t in texts]
    with serve_in_thread(create_app(model)) as url:
        runs: dict[str, Callable[[], object]] = {
            "Embedder.embed (baseline)": lambda: model.embed([(DOC, t) for t in texts]),
            "LangChain embed_documents": lambda: InstructEmbeddings(embedder=model).embed_documents(texts),
            "LlamaIndex get_text_embedding_batch": lambda: InstructEmbedding(
                embedder=model
            ).get_text_embedding_batch(texts),
            "Chroma __call__": lambda: InstructEmbeddingFunction(embedder=model)(texts),
            "Haystack document embedder run": lambda: InstructDocumentEmbedder(embedder=model).run(docs),
            "LangChain via server (HTTP)": lambda: InstructEmbeddings(base_url=url).embed_documents(texts),
        }
        best = {name: float("inf") for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
    base = best["Embedder.embed (baseline)"]
    print(f"{len(texts)} STS-B sentences, all-MiniLM-L6-v2, best of {args.repeats}")
    print(f"{'path':40s} {'texts/s':>9s} {'time vs embed':>14s}")
    for name, seconds in best.items():
        print(f"{name:40s} {len(texts) / seconds:9.1f} {seconds / base:13.2f}x")


if __name__ == "__main__":
    main()
