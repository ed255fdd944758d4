"""The errors the index raises on purpose; each says what is wrong and what to do about it."""

from __future__ import annotations

from instructembed.errors import InstructEmbedError


class IndexStoreError(InstructEmbedError, ValueError):
    """An index directory cannot be used as asked (missing, exists, bad request)."""


class FingerprintMismatchError(IndexStoreError):
    """The vectors would be made differently from the ones the index holds; never mixed silently."""

    def __init__(self, path: object, differences: list[str], hint: str) -> None:
        listed = "; ".join(differences)
        super().__init__(f"{path} was built differently: {listed}. {hint}")
        self.differences = differences


class IndexLockedError(IndexStoreError):
    """Another process is writing to the index."""


class IndexCorruptError(IndexStoreError):
    """A file of the index is damaged or truncated; the message names the file and the way back."""


class RecordError(IndexStoreError):
    """A record to add is invalid (missing or duplicate id, empty text, metadata that is not JSON)."""


class StorageFullError(IndexStoreError):
    """The disk filled up (or a file-size limit was hit) while writing; the index is at its last commit."""
