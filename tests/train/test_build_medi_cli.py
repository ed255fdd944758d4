"""`instructembed data build-medi --mixture/--held-out` and their environment twins reach `build_medi`;
without them the command builds what `build_medi`'s defaults build. A real build reads the whole shared
data folder and embeds with the base model (minutes), so `build_medi` is replaced by a recorder here;
the builds themselves are pinned by digest in test_medi_wide.py."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from instructembed.train import medi_build
from instructembed.train.cli import _standalone
from instructembed.train.medi_build import BuildReport, HeldOut, Mixture, build_medi


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = []

    def build_medi(data_dir: Path, out: Path, **options: Any) -> BuildReport:
        recorded.append(options)
        return BuildReport(
            mixture=Mixture(options["mixture"]).value, held_out=HeldOut(options["held_out"]).value
        )

    monkeypatch.setattr(medi_build, "build_medi", build_medi)
    return recorded


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    argv = ["data", "build-medi", "--out", str(tmp_path / "m.jsonl"), "--data-dir", str(tmp_path), *args]
    return CliRunner().invoke(_standalone(), argv, env={"COLUMNS": "200", **(env or {})})


def test_without_the_flags_the_command_builds_build_medis_defaults(
    tmp_path: Path, calls: list[dict[str, Any]]
) -> None:
    result = _run(tmp_path)
    assert result.exit_code == 0, result.output
    defaults = inspect.signature(build_medi).parameters  # the real one's
    assert Mixture(calls[0]["mixture"]) is Mixture(defaults["mixture"].default) is Mixture.V1
    assert HeldOut(calls[0]["held_out"]) is HeldOut(defaults["held_out"].default) is HeldOut.WIDE
    assert "+ the wider held-out set" in result.output


def test_mixture_and_held_out_flags_and_their_environment_twins(
    tmp_path: Path, calls: list[dict[str, Any]]
) -> None:
    result = _run(tmp_path, "--mixture", "wide", "--held-out", "v1")
    assert result.exit_code == 0, result.output
    assert "+ the wider held-out set" not in result.output
    env = {"INSTRUCTEMBED_MEDI_MIXTURE": "wide", "INSTRUCTEMBED_MEDI_HELD_OUT": "v1"}
    assert _run(tmp_path, env=env).exit_code == 0
    assert _run(tmp_path, "--held-out", "wide", env=env).exit_code == 0  # a flag wins over its twin
    got = [(Mixture(c["mixture"]), HeldOut(c["held_out"])) for c in calls]
    assert got == [(Mixture.WIDE, HeldOut.V1), (Mixture.WIDE, HeldOut.V1), (Mixture.WIDE, HeldOut.WIDE)]


def test_an_unknown_mixture_is_refused_naming_the_choices(
    tmp_path: Path, calls: list[dict[str, Any]]
) -> None:
    result = _run(tmp_path, "--mixture", "v2")
    assert result.exit_code == 2 and not calls
    assert "v1" in result.output and "wide" in result.output
