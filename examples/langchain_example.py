"""LangChain with instructembed: documents and questions embedded with different instructions.

    python examples/langchain_example.py                          # the packaged all-MiniLM-L6-v2
    python examples/langchain_example.py hkunlp/instructor-large  # a real INSTRUCTOR model
    python examples/langchain_example.py --base-url http://127.0.0.1:8080   # a running `instructembed serve`

Needs `pip install 'instructembed[langchain]'`.
"""

from __future__ import annotations

import argparse

from langchain_core.vectorstores import InMemoryVectorStore

from instructembed.integrations.langchain import InstructEmbeddings

DOCUMENTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.",
    "The Python programming language was created by Guido van Rossum.",
]
QUESTIONS = ["Who created Python?", "Which tower was finished in Paris in 1889?"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="all-MiniLM-L6-v2")
    parser.add_argument(
        "--base-url", help="a running `instructembed serve` instead of loading the model here"
    )
    parser.add_argument("--api-key")
    args = parser.parse_args()

    if args.base_url:
        embeddings = InstructEmbeddings(model=args.model, base_url=args.base_url, api_key=args.api_key)
    else:
        embeddings = InstructEmbeddings(model=args.model)  # embed_instruction / query_instruction: defaults
    store = InMemoryVectorStore.from_texts(DOCUMENTS, embedding=embeddings)
    for question in QUESTIONS:
        best = store.similarity_search(question, k=1)[0]
        print(f"{question} -> {best.page_content}")


if __name__ == "__main__":
    main()
