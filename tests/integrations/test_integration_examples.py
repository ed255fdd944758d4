"""Every example in examples/ runs as a user runs it (a fresh process, offline) and answers right."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = [
    "Who created Python? -> The Python programming language was created by Guido van Rossum.",
    "Which tower was finished in Paris in 1889? -> The Eiffel Tower is a wrought-iron lattice tower",
]


@pytest.mark.real_model
@pytest.mark.slow
@pytest.mark.parametrize("name", ["langchain", "llamaindex", "chroma", "haystack"])
def test_example_runs(name: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "HAYSTACK_TELEMETRY_ENABLED": "False",
    }
    script = ROOT / "examples" / f"{name}_example.py"
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == len(EXPECTED), proc.stdout
    for line, want in zip(lines, EXPECTED, strict=True):
        assert line.startswith(want), (line, want)
