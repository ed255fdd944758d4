"""Haystack with instructembed: an indexing and a query pipeline over the in-memory document store.

    python examples/haystack_example.py                          # the packaged all-MiniLM-L6-v2
    python examples/haystack_example.py hkunlp/instructor-large  # a real INSTRUCTOR model

Needs `pip install 'instructembed[haystack]'` (set HAYSTACK_TELEMETRY_ENABLED=False to send no usage data).
"""

from __future__ import annotations

import sys

from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore

from instructembed.integrations.haystack import InstructDocumentEmbedder, InstructTextEmbedder

DOCUMENTS = [
    Document(
        content="The Eiffel Tower is a wrought-iron lattice tower, completed in 1889.", meta={"city": "Paris"}
    ),
    Document(content="Photosynthesis turns light, water and carbon dioxide into glucose and oxygen."),
    Document(content="The Python programming language was created by Guido van Rossum."),
]
QUESTIONS = ["Who created Python?", "Which tower was finished in Paris in 1889?"]


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else "all-MiniLM-L6-v2"
    store = InMemoryDocumentStore(embedding_similarity_function="cosine")

    indexing = Pipeline()
    indexing.add_component("embedder", InstructDocumentEmbedder(model, meta_fields_to_embed=["city"]))
    indexing.add_component("writer", DocumentWriter(document_store=store))
    indexing.connect("embedder.documents", "writer.documents")
    indexing.run({"embedder": {"documents": DOCUMENTS}})

    query = Pipeline()
    query.add_component("embedder", InstructTextEmbedder(model))
    query.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store, top_k=1))
    query.connect("embedder.embedding", "retriever.query_embedding")
    for question in QUESTIONS:
        best = query.run({"embedder": {"text": question}})["retriever"]["documents"][0]
        print(f"{question} -> {best.content}")


if __name__ == "__main__":
    main()
