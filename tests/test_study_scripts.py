"""The study's bookkeeping: runs.jsonl merging and the confidence interval the report prints."""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_interval_is_the_student_t_interval() -> None:
    stats = pytest.importorskip("scipy.stats")
    report = _load("study_report")
    diffs = [1.2, -0.4, 2.5, 0.3, 1.1, -1.0, 0.8, 0.0, 1.9, 0.6, -0.2]
    m, lo, hi = report.interval(diffs)
    want = stats.t.interval(0.95, len(diffs) - 1, loc=statistics.mean(diffs), scale=stats.sem(diffs))
    assert m == pytest.approx(statistics.mean(diffs))
    assert (lo, hi) == pytest.approx(want, abs=1e-3)


def test_append_runs_replaces_a_rerun_and_keeps_the_rest(tmp_path: Path) -> None:
    study = _load("study")
    path = tmp_path / "runs.jsonl"

    def line(task: str, score: float, seed: int | None = 1) -> dict[str, object]:
        return {"row": "T-I", "seed": seed, "table": "large", "task": task, "main_score": score, "limit": 200}

    study.append_runs(path, [line("STS13", 80.0), line("SciFact", 60.0)])
    study.append_runs(path, [line("STS13", 81.0), line("STS13", 79.0, seed=2)])
    got = {(d["task"], d["seed"]): d["main_score"] for d in map(json.loads, path.read_text().splitlines())}
    assert got == {("STS13", 1): 81.0, ("SciFact", 1): 60.0, ("STS13", 2): 79.0}
