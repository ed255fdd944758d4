"""The closed set of errors the library raises on purpose.

Every message says what went wrong *and* what to do about it. Input-shape problems raised by
`Embedder.embed` are plain `TypeError` / `ValueError` (what Python users expect); loading problems
are `CheckpointError` subclasses so callers (CLI, server) can map them in one place.
"""

from __future__ import annotations


class InstructEmbedError(Exception):
    """Base class for errors raised by instructembed on purpose."""


class CheckpointError(InstructEmbedError, ValueError):
    """A model directory is missing, malformed, or uses something we do not support."""


class ModelNotFoundError(CheckpointError, FileNotFoundError):
    """The model name is neither a local directory, a packaged model, nor reachable on the hub."""


class UnsafeWeightsError(CheckpointError):
    """Weights are stored as a pickle (`.bin`), which can run code when loaded."""


class InputFileError(InstructEmbedError, ValueError):
    """An input file for the command line cannot be read as asked (missing field, bad line, empty)."""


class MissingExtraError(InstructEmbedError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, package: str) -> None:
        super().__init__(
            f"this feature needs the optional package '{package}': "
            f"install the [{extra}] extra, e.g. pip install 'instructembed[{extra}]'"
        )
        self.extra = extra
        self.package = package


class PackageDataError(InstructEmbedError, FileNotFoundError):
    """A file that ships inside the package is missing: the installation is incomplete."""
