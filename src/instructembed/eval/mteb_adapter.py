"""Run the full MTEB (the `mteb` package, hub data) with any `Encoder` and an instruction table.

    import mteb
    from instructembed.embedder import Embedder
    from instructembed.eval.mteb_adapter import mteb_encoder

    model = mteb_encoder(Embedder.load("hkunlp/instructor-large"), "instructor-large")
    mteb.evaluate(model, mteb.get_benchmark("MTEB(eng, v1)"))

mteb asks for embeddings with the task's metadata and a prompt type (query / document); the adapter
maps (task name, role) to an instruction through the same lookup as our own evaluator, so the 56
MTEB tasks get the INSTRUCTOR instructions. `mteb` is imported lazily: it is an optional dependency.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from instructembed.errors import MissingExtraError

from .encoder import Encoder
from .instructions import Instructions, load_instructions
from .tasks import Role, Task, TaskType

__all__ = ["instruction_for", "mteb_encoder"]

logger = logging.getLogger(__name__)

#: mteb task types that have no section of their own in the instruction tables.
_TYPE_ALIASES = {"InstructionRetrieval": "Retrieval", "MultilabelClassification": "Classification"}


def _import_mteb() -> Any:
    try:
        import mteb
    except ImportError:
        raise MissingExtraError("eval", "mteb") from None
    return mteb


def instruction_for(table: Instructions, task_name: str, task_type: str, is_query: bool) -> str | None:
    """The instruction for an MTEB task and role, or None when the table has none (logged once per task).

    Versioned names (`Banking77Classification.v2`) fall back to the base name.
    """
    type_value = _TYPE_ALIASES.get(task_type, task_type)
    try:
        kind = TaskType(type_value)
    except ValueError:
        return None
    base = task_name.split(".v")[0]
    task = Task(task_name, kind, "", (), "", base)
    try:
        return table.lookup(task, Role.QUERY if is_query else Role.DOCUMENT)[0]
    except ValueError:
        return None


def mteb_encoder(
    encoder: Encoder,
    instructions: Instructions | str = "instructor-large",
    *,
    fixed: dict[str, str | None] | None = None,
) -> Any:
    """An `mteb.models.AbsEncoder` that embeds through `encoder.embed` with table instructions.

    `fixed` ({"query": ..., "corpus": ...}) overrides the table for every task; the cross-check
    uses it to run mteb's task classes on local data under our local tasks' instructions.
    """
    _import_mteb()
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.types import PromptType

    table = instructions if isinstance(instructions, Instructions) else load_instructions(instructions)

    class InstructEmbedMTEBEncoder(AbsEncoder):  # type: ignore[misc]
        mteb_model_meta = None

        def __init__(self) -> None:
            self._encoder = encoder  # not `self.model`: AbsEncoder.similarity would call model.similarity
            self._missing: set[str] = set()

        def encode(
            self,
            inputs: Any,
            *,
            task_metadata: Any,
            hf_split: str,
            hf_subset: str,
            prompt_type: Any = None,
            **kwargs: Any,
        ) -> np.ndarray:
            texts = [text for batch in inputs for text in batch["text"]]
            is_query = prompt_type is None or prompt_type == PromptType.query
            if fixed is not None:
                instruction = fixed.get("query" if is_query else "corpus")
            else:
                instruction = instruction_for(table, task_metadata.name, str(task_metadata.type), is_query)
                if instruction is None and table.name != "none" and task_metadata.name not in self._missing:
                    self._missing.add(task_metadata.name)
                    logger.warning(
                        "no instruction for %s in %s; embedding bare texts", task_metadata.name, table.name
                    )
            if not texts:
                return np.zeros((0, 0), dtype=np.float32)
            pairs: list[str | tuple[str, str]] = [
                t if instruction is None else (instruction, t) for t in texts
            ]
            return np.asarray(self._encoder.embed(pairs), dtype=np.float32)

    return InstructEmbedMTEBEncoder()
