"""Training defaults are the measured recipe (docs/results/recipe.json), in TrainConfig and in --help."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from instructembed.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_frozen_recipe() -> None:
    recipe = json.loads((ROOT / "docs" / "results" / "recipe.json").read_text(encoding="utf-8"))["candidate"]
    config = TrainConfig(model="m", data=Path("d"), out=Path("o"))
    assert config.temperature == recipe["temperature"] == 0.05  # not INSTRUCTOR's 0.01 (the collapse)
    assert config.lr == recipe["lr"]
    assert config.batch_size == recipe["batch_size"]
    assert config.warmup_ratio == 0.1


def test_help_states_the_recipe() -> None:
    from instructembed.train.cli import _standalone

    result = CliRunner().invoke(_standalone(), ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "0.05" in text and "5e-6" in text
    assert "[0.01]" not in text and "[2e-5]" not in text


def test_every_train_and_mining_option_has_an_environment_twin() -> None:
    import typer.main

    from instructembed.train.cli import _standalone

    root = typer.main.get_command(_standalone())
    commands = [root.commands["train"], root.commands["data"].commands["mine-negatives"]]  # type: ignore[attr-defined]
    for command in commands:
        for param in command.params:
            if param.name == "help":
                continue
            assert param.envvar and str(param.envvar).startswith("INSTRUCTEMBED_"), (command.name, param.name)


def test_a_checkpoint_from_before_an_option_existed_still_resumes() -> None:
    """Options added since a checkpoint was written count as their defaults (it was OOM-killed once)."""
    import pytest

    from instructembed.train.loop import _check_resumable

    config = TrainConfig(model="m", data=Path("d.jsonl"), out=Path("o"))
    saved = config.to_json()
    for newer in ("lora_rank", "lora_alpha", "lora_dropout", "shape", "eval_file"):
        saved.pop(newer)
    _check_resumable({"config": saved}, config)
    with pytest.raises(ValueError, match="lora_alpha"):
        _check_resumable({"config": {**saved, "lora_alpha": 8}}, config)
