"""Which instruction each text gets: an INSTRUCTOR table (base, large, xl), none, or a user file.

Tables are `{task type: {task name: instruction | {"query": ..., "corpus": ...}}}` (the layout of
`../shared/instructions/instructor-*.json`, shipped verbatim as package data). A task is looked
up by its own name, then by its `instruction_key` (the MTEB task it stands in for); the paper's
Billboard and prompt-retrieval tasks take the same size's entry of `paper-task-instructions.json`;
local tasks that are not MTEB tasks fall back to `local-task-instructions.json`. A user file is
searched first and falls back to the instructor-large chain, with a warning naming each task it did
not cover.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructembed.errors import InputFileError
from instructembed.package_data import read_text

from .tasks import Role, Task, TaskType

__all__ = ["Instructions", "load_instructions"]

logger = logging.getLogger(__name__)

Table = dict[str, dict[str, Any]]


def _package_table(name: str) -> Table:
    return json.loads(read_text(name))  # type: ignore[no-any-return]


def _check_table(table: object, origin: str) -> Table:
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise InputFileError(
            f"{origin}: an instruction table must be a JSON object of task types, each an object of "
            'task names, e.g. {"STS": {"STSBenchmark": "Represent the statement: "}}'
        )
    return table


@dataclass(frozen=True)
class Instructions:
    """A resolved instruction source. `name` is what results record (`instructor-large`, `none`, a path)."""

    name: str
    tables: tuple[tuple[str, Table], ...]  # (origin, table), searched in order

    def lookup(self, task: Task, role: Role) -> tuple[str | None, str]:
        """(instruction or None, where it came from) for `task`'s texts in `role`."""
        if not self.tables:
            return None, "none"
        for origin, table in self.tables:
            section = table.get(task.type.value, {})
            for key in (task.name, task.instruction_key):
                if key in section:
                    entry = section[key]
                    if isinstance(entry, str):
                        return entry, f"{origin}[{task.type.value}][{key}]"
                    if isinstance(entry, dict) and isinstance(entry.get(role.value), str):
                        return entry[role.value], f"{origin}[{task.type.value}][{key}][{role.value}]"
                    raise InputFileError(
                        f"{origin}: entry {task.type.value}/{key} must be a string or an object with "
                        f"a {role.value!r} string, got {entry!r}"
                    )
        raise ValueError(
            f"no instruction for task {task.name} ({task.type.value}, role {role.value}) in {self.name}; "
            f"add an entry under {task.type.value!r} -> {task.name!r} or use --instructions none"
        )

    def for_task(self, task: Task) -> dict[str, str | None]:
        """{role: instruction} for the roles the task's type uses (query/corpus or one shared text)."""
        roles = (
            (Role.QUERY, Role.DOCUMENT)
            if task.type in (TaskType.RETRIEVAL, TaskType.RERANKING)
            else (Role.QUERY,)
        )
        resolved = {}
        for role in roles:
            instruction, origin = self.lookup(task, role)
            if self.name not in (*BUILTIN, "none") and not origin.startswith(self.tables[0][0]):
                logger.warning("%s has no entry for %s; falling back to %s", self.name, task.name, origin)
            resolved[role.value] = instruction
        return resolved


BUILTIN = ("instructor-base", "instructor-large", "instructor-xl")


def _builtin_chain(size: str) -> tuple[tuple[str, Table], ...]:
    mteb = _package_table(f"{size}.json")
    paper = _package_table("paper-task-instructions.json")[size]
    return (
        (size, mteb),
        (f"paper-task-instructions[{size}]", paper),
        ("local-task-instructions", _package_table("local-task-instructions.json")),
    )


def load_instructions(spec: str | Path) -> Instructions:
    """`instructor-base|large|xl` (packaged tables), `none` (bare texts) or a path to a JSON table."""
    if str(spec) in BUILTIN:
        return Instructions(str(spec), _builtin_chain(str(spec)))
    if str(spec) == "none":
        return Instructions("none", ())
    builtin = _builtin_chain("instructor-large")
    path = Path(spec)
    if not path.is_file():
        raise InputFileError(
            f"--instructions {spec!r} is neither one of {', '.join(BUILTIN)}, 'none' nor an existing JSON file"
        )
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    return Instructions(str(path), ((str(path), _check_table(table, str(path))), *builtin))
