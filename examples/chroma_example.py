"""Chroma with instructembed: a persistent collection, reopened later without naming the function.

    python examples/chroma_example.py                          # the packaged all-MiniLM-L6-v2
    python examples/chroma_example.py hkunlp/instructor-large  # a real INSTRUCTOR model

Needs `pip install 'instructembed[chroma]'`.
"""

from __future__ import annotations

import sys
import tempfile

import chromadb

# Importing the module registers the function, so a reopened collection rebuilds it from its config.
from instructembed.integrations.chroma import InstructEmbeddingFunction

DOCUMENTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.",
    "The Python programming language was created by Guido van Rossum.",
]
QUESTIONS = ["Who created Python?", "Which tower was finished in Paris in 1889?"]
SETTINGS = chromadb.Settings(anonymized_telemetry=False)


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else "all-MiniLM-L6-v2"
    with tempfile.TemporaryDirectory() as path:
        client = chromadb.PersistentClient(path, settings=SETTINGS)
        docs = client.create_collection("docs", embedding_function=InstructEmbeddingFunction(model))
        docs.add(ids=[f"doc-{i}" for i in range(len(DOCUMENTS))], documents=DOCUMENTS)  # document instruction

        reopened = chromadb.PersistentClient(path, settings=SETTINGS).get_collection("docs")
        found = reopened.query(query_texts=QUESTIONS, n_results=1)  # query instruction
        for question, best in zip(QUESTIONS, found["documents"] or [], strict=True):
            print(f"{question} -> {best[0]}")


if __name__ == "__main__":
    main()
