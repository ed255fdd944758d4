"""Evaluation: MTEB's seven task types with instructions, on real local data, scored as MTEB does.

from instructembed.eval import run, resolve_tasks
results = run(encoder, resolve_tasks("STSBenchmark,SciFact"), data_dir="../shared/data")

Names load lazily (scikit-learn and friends are imported only when scoring is used).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "CachingEncoder": "encoder",
    "Encoder": "encoder",
    "Instructions": "instructions",
    "load_instructions": "instructions",
    "markdown_summary": "report",
    "write_summary": "report",
    "TaskResult": "runner",
    "run": "runner",
    "LOCAL_TASKS": "tasks",
    "HubSource": "tasks",
    "Role": "tasks",
    "Task": "tasks",
    "TaskType": "tasks",
    "get_task": "tasks",
    "resolve_tasks": "tasks",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"instructembed.eval.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
