"""instructembed: INSTRUCTOR-style instruction-conditioned text embeddings."""

from __future__ import annotations

from instructembed.embedder import EmbedConfig, Embedder
from instructembed.errors import CheckpointError, InstructEmbedError, ModelNotFoundError, UnsafeWeightsError
from instructembed.inputs import Item

__all__ = [
    "CheckpointError",
    "EmbedConfig",
    "Embedder",
    "InstructEmbedError",
    "Item",
    "ModelNotFoundError",
    "UnsafeWeightsError",
]
__version__ = "0.1.0"
