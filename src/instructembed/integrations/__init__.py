"""Drop-ins for the frameworks people already use, each a thin adapter over `Embedder`.

One module per framework, and the framework is imported only there (each is an optional extra):

- `langchain.InstructEmbeddings` (`[langchain]`): a `langchain_core` `Embeddings`, in process or over
  a running `instructembed serve` through the openai client;
- `llamaindex.InstructEmbedding` (`[llamaindex]`): a LlamaIndex `BaseEmbedding`;
- `chroma.InstructEmbeddingFunction` (`[chroma]`): a Chroma `EmbeddingFunction`;
- `haystack.InstructTextEmbedder` / `InstructDocumentEmbedder` (`[haystack]`): Haystack components.

Every one embeds documents and queries with *different* instructions (INSTRUCTOR's retrieval
recipe; `engine.py` holds the defaults) and returns exactly `Embedder.embed`'s vectors.
"""
