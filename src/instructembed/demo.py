"""`make demo`: what instruction-conditioned embedding does, in a few seconds on the packaged model."""

from __future__ import annotations

import time

import numpy as np
import typer

TEXTS = [
    "The new phone's battery lasts two full days.",
    "I returned the headphones because they broke after a week.",
    "The central bank raised interest rates by half a point.",
    "Stocks fell sharply after the inflation report.",
    "The striker scored twice in the second half.",
    "Our team lost the final on penalties.",
]
INSTRUCTIONS = {
    "topic": "Represent the sentence for classifying its topic: ",
    "sentiment": "Represent the sentence for classifying its sentiment: ",
}
QUERY = ("Represent the question for retrieving supporting documents: ", "Why did share prices drop?")
DOCUMENT_INSTRUCTION = "Represent the document for retrieval: "


def _table(title: str, sims: np.ndarray) -> None:
    typer.echo(f"\n{title}")
    typer.echo("      " + "".join(f"{'t' + str(j + 1):>6} " for j in range(len(sims))))
    for i, row in enumerate(sims):
        typer.echo(f"  t{i + 1:<3}" + "".join(f"{v:6.2f} " for v in row))


def run_demo(model_name: str) -> None:
    from instructembed.embedder import Embedder

    start = time.perf_counter()
    model = Embedder.load(model_name)
    loaded = time.perf_counter()
    typer.echo(
        f"model: {model_name}  (dimension {model.dimension}, max {model.max_seq_length} tokens, loaded in {loaded - start:.1f}s)"
    )
    typer.echo("texts:")
    for i, text in enumerate(TEXTS):
        typer.echo(f"  t{i + 1}  {text}")
    for name, instruction in INSTRUCTIONS.items():
        vectors = model.embed(TEXTS, instruction=instruction)  # (6, D)
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        _table(f"cosine similarity under the {name} instruction {instruction.strip()!r}:", unit @ unit.T)

    # One call, mixed instructions: the query and the documents each carry their own.
    vectors = model.embed([QUERY, *[(DOCUMENT_INSTRUCTION, t) for t in TEXTS]])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit[1:] @ unit[0]
    typer.echo(f"\nsearch: {QUERY[1]!r}")
    for rank, j in enumerate(np.argsort(-scores)[:3], start=1):
        typer.echo(f"  {rank}. {scores[j]:.3f}  {TEXTS[j]}")
    typer.echo(
        f"\ndone in {time.perf_counter() - start:.1f}s (embedding {time.perf_counter() - loaded:.2f}s)"
    )
