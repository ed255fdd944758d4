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


def test_wider_study_lines_never_replace_or_enter_the_first_study(tmp_path: Path) -> None:
    study = _load("study")
    report = _load("study_report")
    path = tmp_path / "runs.jsonl"
    first = {"row": "T-I", "seed": 1, "table": "large", "task": "STS13", "main_score": 80.0, "limit": 200}
    wide = {**first, "study": "issue27", "mixture": "wide", "main_score": 70.0}
    old = {**wide, "mixture": "v1", "main_score": 60.0}
    study.append_runs(path, [first])
    study.append_runs(path, [wide, old])
    study.append_runs(path, [{**wide, "main_score": 71.0}])  # a rerun replaces only its own line
    got = sorted(
        (str(d.get("mixture")), d["main_score"]) for d in map(json.loads, path.read_text().splitlines())
    )
    assert got == [("None", 80.0), ("v1", 60.0), ("wide", 71.0)]
    assert [d["main_score"] for d in report.load(path)] == [80.0]


def test_wider_study_skips_tasks_not_registered_yet() -> None:
    wide = _load("study_wide")
    have, missing = wide.registered(wide.HELD_OUT)
    assert "RedditClustering-local" in have and "SciFact" in have
    assert set(missing) <= {"SummEval", "BillboardMSCOCO", "BillboardCNNDM", "BillboardWMT20ZhEn"}
    assert len(have) + len(missing) == len(wide.HELD_OUT) == 17


def test_wider_report_means_and_interval(tmp_path: Path) -> None:
    report = _load("study_wide_report")
    tasks = ["STS13", "SciFact"]
    lines = [
        {
            "study": "issue27",
            "row": "B1",
            "seed": None,
            "table": "large",
            "mixture": None,
            "task": t,
            "main_score": s,
        }
        for t, s in zip(tasks, [80.0, 60.0], strict=True)
    ]
    for seed, shift in ((1, 1.0), (2, 2.0), (3, 0.0)):
        lines += [
            {
                "study": "issue27",
                "row": "T-I",
                "seed": seed,
                "table": "large",
                "mixture": "wide",
                "task": t,
                "main_score": s + shift,
            }
            for t, s in zip(tasks, [80.0, 60.0], strict=True)
        ]
    lines.append({**lines[-1], "seed": 4, "task": "STS13"})  # seed 4 lacks SciFact: left out of the means
    means = report.row_means(report.by_seed(lines, "T-I", "wide", "large"), tasks)
    assert means == {1: 71.0, 2: 72.0, 3: 70.0}
    text = "\n".join(report.claims(lines, tasks))
    assert "T-I (wide) − B1 on the wider mean: +1.00 over 3 seed(s)" in text
    assert "[-1.48, +3.48]" in text  # mean 1, sd 1, t(2) = 4.303: 1 ± 4.303 / sqrt(3)
