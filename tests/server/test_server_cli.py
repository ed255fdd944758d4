"""`serve_command`: options and their INSTRUCTEMBED_* twins reach ServerSettings and Embedder.load."""

from __future__ import annotations

from typing import Any

import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from instructembed.server.cli import serve_command
from instructembed.server.settings import OverlongPolicy, ServerSettings


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen["app"] = app
        seen["run"] = kwargs

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return seen


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("serve")(serve_command)

    @app.command("other")
    def other() -> None:  # a second command keeps typer from collapsing to a single-command app
        pass

    return app


def test_flags_and_environment_twins(captured: dict[str, Any]) -> None:
    env = {"INSTRUCTEMBED_PORT": "9123", "INSTRUCTEMBED_OVERLONG": "reject", "INSTRUCTEMBED_API_KEY": "k"}
    result = CliRunner().invoke(_app(), ["serve", "--model", "m", "--max-items-per-request", "7"], env=env)
    assert result.exit_code == 0, result.output
    settings: ServerSettings = captured["app"].state.settings
    assert (
        settings.port == 9123 and captured["run"]["port"] == 9123 and captured["run"]["host"] == "127.0.0.1"
    )
    assert settings.overlong is OverlongPolicy.REJECT and settings.api_key == "k"
    assert settings.max_items_per_request == 7


def test_help_lists_every_env_var() -> None:
    result = CliRunner().invoke(_app(), ["serve", "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0
    for name in (
        "MODEL",
        "HOST",
        "PORT",
        "API_KEY",
        "BACKEND",
        "QUANTIZE",
        "MAX_BODY_BYTES",
        "MAX_QUEUE_ITEMS",
        "OVERLONG",
    ):
        assert f"INSTRUCTEMBED_{name}" in result.output, name


def test_bad_limits_are_a_clear_cli_error(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(
        _app(), ["serve", "--model", "m", "--max-items-per-request", "10", "--max-queue-items", "5"]
    )
    assert result.exit_code != 0 and "never be queued" in result.output
    assert "app" not in captured


def test_unsupported_quantize_is_a_clear_cli_error(
    captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from instructembed import embedder

    def load(cls: Any, name: str, *, backend: str = "torch", device: str | None = None) -> None:
        raise AssertionError("not reached")

    monkeypatch.setattr(embedder.Embedder, "load", classmethod(load))
    result = CliRunner().invoke(_app(), ["serve", "--model", "m", "--quantize", "int8"])
    assert result.exit_code != 0 and "--quantize" in result.output


def test_backend_quantize_and_dtype_reach_embedder_load(
    captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tiny_bert_dir: Any
) -> None:
    from fastapi.testclient import TestClient

    from instructembed import embedder

    real = embedder.Embedder.load(tiny_bert_dir)
    calls: list[dict[str, Any]] = []

    def load(
        cls: Any,
        name: str,
        *,
        backend: str = "torch",
        quantize: str | None = None,
        dtype: str | None = None,
        **rest: Any,
    ) -> Any:
        calls.append({"name": name, "backend": backend, "quantize": quantize, "dtype": dtype})
        return real

    monkeypatch.setattr(embedder.Embedder, "load", classmethod(load))
    args = ["serve", "--model", "m", "--backend", "openvino", "--quantize", "int8", "--dtype", "bfloat16"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    with TestClient(captured["app"]) as client:  # startup runs the loader
        assert client.get("/health").status_code == 200
        info = client.get("/info").json()
        assert info["backend"] == "torch" and info["precision"] == "fp32"  # what the loaded runner reports
    assert calls and calls[0]["name"] == "m"
    assert {k: calls[0][k] for k in ("backend", "quantize", "dtype")} == {
        "backend": "openvino",
        "quantize": "int8",
        "dtype": "bfloat16",
    }
