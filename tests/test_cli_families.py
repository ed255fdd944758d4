"""`instructembed embed --model DIR --prompt-name query --input texts.txt --output v.npy` equals
sentence-transformers' `encode(texts, prompt_name="query")` for every family; `info` lists what the
model declares; `--prompt-name` refuses a name the model lacks and clashes with `--instruction`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from instructembed.cli import app
from instructembed.testing_families import FAMILY_RECIPES, FAMILY_TEXTS, build_family_checkpoint

pytestmark = pytest.mark.slow  # a tiny checkpoint per family, each against sentence-transformers or an export

runner = CliRunner()
TEXTS = [t for t in FAMILY_TEXTS if t.strip() == t and t]  # a text file holds one stripped line each


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.parametrize("name", list(FAMILY_RECIPES))
def test_embed_prompt_name_equals_sentence_transformers(name: str, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = build_family_checkpoint(tmp_path / name, name)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    code, output = invoke(
        "embed", "--model", model, "--prompt-name", "query", "--input", texts, "--output", tmp_path / "v.npy"
    )
    assert code == 0, output
    expected = SentenceTransformer(str(model), device="cpu").encode(TEXTS, prompt_name="query", batch_size=4)
    assert np.abs(np.load(tmp_path / "v.npy") - expected).max() <= 1e-5


def test_info_and_bad_prompt_names(tmp_path: Path) -> None:
    model = build_family_checkpoint(tmp_path / "qwen3", "qwen3")
    code, output = invoke("info", model, "--json")
    assert code == 0, output
    info = json.loads(output[output.index("{") :])
    assert info["family"] == "Qwen3" and info["pooling"] == "lasttoken" and info["padding_side"] == "left"
    assert info["end_token"] == "<|endoftext|>" and info["prompts"] == FAMILY_RECIPES["qwen3"].prompts
    texts = tmp_path / "texts.txt"
    texts.write_text("a text\n", encoding="utf-8")
    args = ["embed", "--model", model, "--input", texts, "--output", tmp_path / "v.npy"]
    code, output = invoke(*args, "--prompt-name", "passage")
    assert code != 0 and "'passage' is not declared" in output and not (tmp_path / "v.npy").exists()
    code, output = invoke(*args, "--prompt-name", "query", "--instruction", "x")
    assert code != 0 and "--prompt-name or --instruction" in output
