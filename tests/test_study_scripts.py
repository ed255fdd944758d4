"""The study's bookkeeping: runs.jsonl merging and the confidence interval the report prints."""

from __future__ import annotations

import argparse
import hashlib
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


# ---- what the studies would run: every build, training config, dev scoring and evaluation --------

#: sha256 of the plan `_plan` records for (study, budget), taken before study_wide.py was made to reuse
#: study.py's config building and training (so the refactor provably runs the same commands). A change
#: to what a study trains or evaluates changes these on purpose: say so in the commit.
#: 2026-12-03: TrainConfig gained `eval_rerank` (False) and `batch_sampler` ("random"), both at their
#: defaults in every study config; with the two keys removed the plans give the earlier digests.
PLAN_SHA256 = {
    ("first", "cpu"): "54610dc092682d58778779eb4910598ef8ab73397b98bdf1263c5e0c0492c694",
    ("first", "gpu"): "b9f07b71a512e40af7f27398b5195ae26b764ccfb3f375632a21241379ecbfc0",
    ("wide", "cpu"): "1bd945e933ec1d67f77b8823cc3c69a4ad607c649cef2247ab7d46cf956b68ae",
    ("wide", "gpu"): "e331c5c58bfd5a1c13760d78175b661b47ff3f4596243f35d5dcdd75885d5bf2",
}


def _fake_dev_mean(config: dict[str, object], step: int) -> float:
    """A dev curve with one best point (t 0.05, lr 2e-5, step 120 on the CPU budgets) before the end."""
    t, lr = float(config["temperature"]), float(config["lr"])  # type: ignore[arg-type]
    return 80.0 - abs(step - 120) - 100 * abs(t - 0.05) - 1e5 * abs(lr - 2e-5)


def _plan(study_name: str, budget: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Run a whole study with training, building, loading and evaluation replaced by recorders."""
    from types import SimpleNamespace

    from instructembed.train.medi_build import sibling

    calls: list[object] = []

    def train(config: object, *, resume: bool, eval_fn: object) -> None:
        record = config.to_json()  # type: ignore[attr-defined]
        calls.append(["train", record, resume])
        eval_fn("tuned")  # type: ignore[operator]
        out = Path(record["out"])
        (out / "model").mkdir(parents=True)
        every, steps = int(record["eval_every"]), int(record["max_steps"])
        lines = [
            {"step": s, "eval": {"dev_mean": _fake_dev_mean(record, s)}}
            for s in range(every, steps + 1, every)
        ]
        (out / "train_log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

    def dev_scores(embedder: object, data_dir: Path, dev: Path, *, instructions: bool) -> dict[str, float]:
        calls.append(["dev_scores", embedder, str(data_dir), str(dev), instructions])
        return {"dev_mean": 1.0}

    def build_medi(data_dir: Path, out: Path, **options: object) -> None:
        calls.append(["build_medi", str(data_dir), str(out), options])
        out.write_text("{}\n")
        sibling(out, "report").write_text("{}\n")

    class FakeEmbedder:
        @staticmethod
        def load(model: object, **options: object) -> str:
            calls.append(["load", str(model), {k: repr(v) for k, v in options.items()}])
            return "loaded"

    def run(embedder: object, tasks: list[str], **options: object) -> list[object]:
        options.pop("command")
        Path(str(options["out_dir"])).mkdir(parents=True, exist_ok=True)  # as the runner does
        calls.append(["run", embedder, list(tasks), {k: str(v) for k, v in options.items()}])
        return [SimpleNamespace(task=t, main_score=50.0, git_commit="c0ffee") for t in tasks]

    study = _load("study")
    modules = [study]
    if study_name == "wide":
        modules.append(_load("study_wide"))
    fakes = {
        "train": train,
        "dev_scores": dev_scores,
        "build_medi": build_medi,
        "Embedder": FakeEmbedder,
        "run": run,
        "git_commit": lambda: "c0ffee",
    }
    for module in modules:
        for name, fake in fakes.items():
            if hasattr(module, name):
                monkeypatch.setattr(module, name, fake)
    (tmp / "docs").mkdir()
    args = {
        "budget": budget,
        "runs": tmp / "runs",
        "data_dir": tmp / "data",
        "model": "all-MiniLM-L6-v2",
        "results": tmp / "docs" / "runs.jsonl",
    }
    if study_name == "wide":
        runner = modules[-1].WideStudy(argparse.Namespace(**args, steps=None, commit=False))
    else:
        runner = study.Study(argparse.Namespace(**args))
    runner.all()
    calls.append(["generic table", json.loads((tmp / "runs" / "generic-instructions.json").read_text())])
    calls.append(["runs.jsonl", (tmp / "docs" / "runs.jsonl").read_text().splitlines()])
    return json.loads(json.dumps(calls, default=str).replace(str(tmp), "<tmp>"))


@pytest.mark.parametrize("key", sorted(PLAN_SHA256))
def test_each_study_runs_the_commands_it_ran_before(
    key: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(*key, tmp_path, monkeypatch)
    trains = [c for c in plan if c[0] == "train"]  # type: ignore[index]
    assert trains and all(c[1]["loss"] == "instructor" for c in trains)  # type: ignore[index]
    digest = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()
    assert digest == PLAN_SHA256[key], f"{key}: {len(plan)} calls; first training config {trains[0]}"
