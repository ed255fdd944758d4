"""instructembed: INSTRUCTOR-style instruction-conditioned text embeddings.

`Embedder` and `EmbedConfig` load lazily, so light entry points (`instructembed --help`, the ONNX
backend) do not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from instructembed.errors import CheckpointError, InstructEmbedError, ModelNotFoundError, UnsafeWeightsError
from instructembed.inputs import Item

if TYPE_CHECKING:
    from instructembed.embedder import EmbedConfig, Embedder

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


def __getattr__(name: str) -> Any:
    if name in ("Embedder", "EmbedConfig"):
        from instructembed import embedder

        return getattr(embedder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
