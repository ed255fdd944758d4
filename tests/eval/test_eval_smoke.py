"""CI's real end-to-end evaluation: the installed CLI, the real MiniLM, real data, a small subset."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from instructembed.cli import app


def test_eval_real_model_on_a_real_subset(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            "all-MiniLM-L6-v2",
            "--tasks",
            "STSBenchmark,Banking77Classification",
            "--limit",
            "120",
            "--out",
            str(out),
            "--data-dir",
            str(shared_data),
        ],
    )
    assert result.exit_code == 0, result.output
    sts = json.loads((out / "STSBenchmark.json").read_text())
    banking = json.loads((out / "Banking77Classification.json").read_text())
    # all-MiniLM-L6-v2 scores ~82 (STS-B Spearman) and ~80 (Banking77 accuracy) on the full sets;
    # a broken encode path or scorer lands far below.
    assert 70 < sts["main_score"] < 95, sts["main_score"]
    assert 55 < banking["main_score"] < 95, banking["main_score"]
    assert sts["instructions"] and sts["git_commit"] is not None
    assert (out / "summary.md").is_file() and (out / "summary.png").is_file()
