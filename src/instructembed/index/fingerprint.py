"""The fingerprint of an index: everything that shapes its vectors, recorded once at creation.

Adding to an index, or searching it with a loaded model, compares the model's side of the
fingerprint with the stored one field by field; a difference is an error that names the field and
both values. Vectors made differently are never mixed into one index.

The same weights can join an instruction to a text in two ways (tokenize.py: INSTRUCTOR's rule, or a
declared sentence-transformers prompt prepended, its tokens pooled or not per `include_prompt`), so
the join is recorded beside the weights' hash. An index made before it was recorded reads as
INSTRUCTOR's rule, the only one instructembed had then.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from instructembed.checkpoint import INSTRUCTION_JOIN, PROMPT_JOIN
from instructembed.chunking import ChunkSettings, LegacyChunkingError
from instructembed.export.manifest import model_identity
from instructembed.index.errors import FingerprintMismatchError, IndexStoreError

log = logging.getLogger(__name__)

#: Fields that decide how a text becomes a vector (the model's side). `package_version` is recorded
#: but only warned about: the encode path is pinned by tests against INSTRUCTOR, and refusing every
#: index after an upgrade would make upgrades cost a full re-embed.
MODEL_FIELDS = (
    "weights_sha256",
    "architecture",
    "dimension",
    "max_seq_length",
    "pooling",
    "normalize",
    "do_lower_case",
    "backend",
    "precision",
)
#: Fields that decide how an instruction meets a text (the model's side too; a Ray job's shards do
#: not record them).
JOIN_FIELDS = ("instruction_join", "include_prompt")
#: What an index made before JOIN_FIELDS existed recorded, in effect: INSTRUCTOR's rule.
LEGACY_JOIN: dict[str, Any] = {"instruction_join": INSTRUCTION_JOIN, "include_prompt": False}
#: Fields that decide how documents are cut and instructed.
DOCUMENT_FIELDS = ("doc_instruction", "chunking")
#: Fields a continued build must agree on: everything that shapes its vectors, and both instructions.
BUILD_FIELDS = (*MODEL_FIELDS, *JOIN_FIELDS, *DOCUMENT_FIELDS, "query_instruction")


@dataclass(frozen=True)
class Fingerprint:
    model: str  # how to load the model again: packaged name, directory or hub id
    weights_sha256: str  # of the checkpoint's weights, configs and tokenizer files (an export: its source's)
    architecture: str
    dimension: int
    max_seq_length: int
    pooling: str
    normalize: bool
    do_lower_case: bool
    backend: str
    precision: str
    instruction_join: str  # checkpoint.INSTRUCTION_JOIN or PROMPT_JOIN
    include_prompt: bool  # under PROMPT_JOIN: pooling reads the prompt's tokens (never under INSTRUCTOR's)
    doc_instruction: str | None
    query_instruction: str | None
    chunking: dict[str, Any]  # ChunkSettings as a dict
    package_version: str
    load: dict[str, Any]  # the Embedder.load options it was built with (backend, dtype, quantize, ...)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fingerprint:
        """Raises LegacyChunkingError for an index chunked by the scheme before the head and context
        (an unchunked one reads as today's: its vectors are the same). A fingerprint without the join
        fields reads as INSTRUCTOR's join (`LEGACY_JOIN`)."""
        data = {**LEGACY_JOIN, **data}
        names = {f.name for f in fields(cls)}
        missing = names - set(data)
        if missing:
            raise ValueError(f"the fingerprint lacks {', '.join(sorted(missing))}")
        values = {k: data[k] for k in names}
        if not isinstance(values["chunking"], dict):
            raise ValueError("the fingerprint's chunking is not an object")
        values["chunking"] = ChunkSettings.from_json(values["chunking"]).to_json()
        return cls(**values)

    @property
    def chunk_settings(self) -> ChunkSettings:
        return ChunkSettings.from_json(self.chunking)

    def load_options(self) -> dict[str, Any]:
        """Keyword arguments for `Embedder.load` that make the same vectors again."""
        return {**self.load, "max_seq_length": self.max_seq_length}


def stored_fingerprint(data: dict[str, Any], path: Path, build: dict[str, Any] | None) -> Fingerprint:
    """The fingerprint an index at `path` recorded; IndexStoreError, saying what to do, when it is
    unreadable or from a chunking scheme this version does not make (rebuild it)."""
    try:
        return Fingerprint.from_json(data)
    except LegacyChunkingError as exc:
        raise IndexStoreError(
            f"{path} was built by an older instructembed: {exc}. Rebuild it with this version: "
            f"{_rebuild_how(path, build)}; its documents are then chunked with the truncated head first "
            "(docs/index.md, Long documents)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise IndexStoreError(f"{path}: the stored fingerprint is unreadable ({exc})") from None


def _rebuild_how(path: Path, build: dict[str, Any] | None) -> str:
    source = build.get("input") if build else None
    if source:
        return f"`instructembed index build --input {source} --out {path} --overwrite` with the options it was built with"
    return "`instructembed index build --overwrite` (or `Index.create` + `add`) from its source"


def join_hint(diffs: list[str], path: Path, build: dict[str, Any] | None) -> str | None:
    """What to do when `diffs` (from `differences`) say the model joins instructions differently."""
    if not any(d.split(":", 1)[0] in JOIN_FIELDS for d in diffs):
        return None
    return (
        "This model joins instructions to texts differently from the way the index's vectors were "
        "made (an index built before instructembed recorded the join was made by INSTRUCTOR's rule), "
        "so its queries and new documents would not compare: rebuild the index with this model: "
        f"{_rebuild_how(path, build)}"
    )


def check_model(stored: Fingerprint, current: Fingerprint, path: Path, build: dict[str, Any] | None) -> None:
    """Refuse a model (`current`: its fingerprint) that would make other vectors than the index holds."""
    diffs = differences(stored, current, (*MODEL_FIELDS, *JOIN_FIELDS))
    if diffs:
        raise FingerprintMismatchError(
            path,
            diffs,
            join_hint(diffs, path, build)
            or "Its vectors would not be comparable: use the model it was built with "
            "(Index.open without an embedder loads it), or build a new index for this model",
        )


def fingerprint_of(
    embedder: Any,
    *,
    model: str,
    doc_instruction: str | None,
    query_instruction: str | None,
    chunking: ChunkSettings,
    load: dict[str, Any] | None = None,
) -> Fingerprint:
    """The fingerprint an index built with `embedder` and these settings gets."""
    from instructembed import __version__

    spec = embedder.spec
    join = str(spec.instruction_join)
    return Fingerprint(
        model=model,
        weights_sha256=model_identity(Path(spec.root)),
        architecture=str(spec.model_type),
        dimension=int(embedder.dimension),
        max_seq_length=int(embedder.max_seq_length),
        pooling=str(spec.pooling.value),
        normalize=bool(spec.normalize),
        do_lower_case=bool(spec.do_lower_case),
        backend=str(embedder.backend.name),
        precision=str(embedder.backend.precision),
        instruction_join=join,
        include_prompt=bool(spec.include_prompt) and join == PROMPT_JOIN,
        doc_instruction=doc_instruction,
        query_instruction=query_instruction,
        chunking=chunking.to_json(),
        package_version=__version__,
        load={k: v for k, v in (load or {}).items() if v is not None},
    )


def differences(
    stored: Fingerprint, current: Any, names: tuple[str, ...], *, theirs: str = "this model gives"
) -> list[str]:
    """'field: the index has A, <theirs> B' for each named field that differs.

    `current` is another fingerprint with those fields: the loaded model's, or a Ray job's shards'.
    """
    out = []
    for name in names:
        before, now = getattr(stored, name), getattr(current, name)
        if before != now:
            if name == "weights_sha256":
                before, now = str(before)[:12], str(now)[:12]
            out.append(f"{name}: the index has {before!r}, {theirs} {now!r}")
    return out


def warn_version(stored: Fingerprint, path: object) -> None:
    from instructembed import __version__

    if stored.package_version != __version__:
        log.warning(
            "%s was built by instructembed %s; this is %s (vectors are compared by model fingerprint only)",
            path,
            stored.package_version,
            __version__,
        )
