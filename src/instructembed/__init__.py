"""instructembed: INSTRUCTOR-style instruction-conditioned text embeddings.

`Embedder` and `EmbedConfig` load lazily, so light entry points (`instructembed --help`, the ONNX
backend) do not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from instructembed.errors import CheckpointError, InstructEmbedError, ModelNotFoundError, UnsafeWeightsError
from instructembed.inputs import Item
from instructembed.package_data import package_version

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
#: The installed distribution's version, read from its metadata (pyproject.toml's `version`).
__version__ = package_version()


def __getattr__(name: str) -> Any:
    if name in ("Embedder", "EmbedConfig"):
        from instructembed import embedder

        return getattr(embedder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
