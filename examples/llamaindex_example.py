"""LlamaIndex with instructembed: a VectorStoreIndex whose nodes and queries get different instructions.

    python examples/llamaindex_example.py                          # the packaged all-MiniLM-L6-v2
    python examples/llamaindex_example.py hkunlp/instructor-large  # a real INSTRUCTOR model

Needs `pip install 'instructembed[llamaindex]'`. Only retrieval is shown, so no LLM is needed.
"""

from __future__ import annotations

import sys

from llama_index.core import Document, Settings, VectorStoreIndex

from instructembed.integrations.llamaindex import InstructEmbedding

DOCUMENTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.",
    "The Python programming language was created by Guido van Rossum.",
]
QUESTIONS = ["Who created Python?", "Which tower was finished in Paris in 1889?"]


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else "all-MiniLM-L6-v2"
    Settings.embed_model = InstructEmbedding(
        model,
        text_instruction="Represent the document for retrieval: ",
        query_instruction="Represent the question for retrieving supporting documents: ",
    )
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS])
    retriever = index.as_retriever(similarity_top_k=1)
    for question in QUESTIONS:
        best = retriever.retrieve(question)[0]
        print(f"{question} -> {best.node.get_content()}")


if __name__ == "__main__":
    main()
