"""Several models in one server: routed by the request's `model`, each with its own queue; unknown
names are 404 from the error table; /v1/models and /info list them all; `serve --model A --model B`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # openai>=3 ships the httpx2 fork; older stacks have httpx (same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]
import numpy as np
import openai
import pytest
import typer
import uvicorn
from server_fakes import FakeEmbedder
from typer.testing import CliRunner

from instructembed.server import ServerSettings, create_app
from instructembed.server.cli import serve_command
from instructembed.server.testing import ThreadedServer


@pytest.fixture(scope="module")
def two() -> Iterator[tuple[str, FakeEmbedder, FakeEmbedder]]:
    small, slow = FakeEmbedder(dimension=8), FakeEmbedder(dimension=12, delay=0.6)
    server = ThreadedServer(create_app({"small": small, "slow": lambda: slow}, ServerSettings(max_wait_ms=0)))
    server.start()
    yield server.base_url, small, slow
    server.stop()


def test_requests_are_routed_by_model(two: tuple[str, FakeEmbedder, FakeEmbedder]) -> None:
    base_url, small, slow = two
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
    a = client.embeddings.create(model="small", input=["hello there"])
    b = client.embeddings.create(model="slow", input=["hello there"])
    default = client.embeddings.create(model="small", input=["hello there"], extra_body={"model": None})
    assert a.model == "small" and b.model == "slow" and default.model == "small"
    np.testing.assert_array_equal(np.array(a.data[0].embedding, np.float32), small.embed(["hello there"])[0])
    np.testing.assert_array_equal(np.array(b.data[0].embedding, np.float32), slow.embed(["hello there"])[0])
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="gpt-4", input=["x"])
    error = missing.value.response.json()["error"]
    assert error["type"] == "not_found" and error["param"] == "model" and "small, slow" in error["message"]
    listed = client.models.list()
    assert [m.id for m in listed.data] == ["small", "slow"]
    for route, body in (
        ("/rerank", {"model": "slow", "query": "q", "texts": ["a b"]}),
        ("/v1/rerank", {"model": "nope", "query": "q", "documents": ["a b"]}),
        ("/tokenize", {"model": "nope", "inputs": "a"}),
        ("/embed", {"model": "nope", "inputs": ["a"]}),
    ):
        response = httpx.post(f"{base_url}{route}", content=json.dumps(body), timeout=30)
        assert response.status_code == (200 if body["model"] == "slow" else 404), response.text


def test_each_model_has_its_own_queue(two: tuple[str, FakeEmbedder, FakeEmbedder]) -> None:
    base_url, _, _ = two
    done: dict[str, float] = {}

    def call(model: str) -> None:
        started = time.perf_counter()
        response = httpx.post(f"{base_url}/v1/embeddings", json={"model": model, "input": ["x"]}, timeout=30)
        assert response.status_code == 200
        done[model] = time.perf_counter() - started

    slow_call = threading.Thread(target=call, args=("slow",))
    slow_call.start()
    time.sleep(0.1)  # the slow model is busy for 0.6 s
    call("small")
    slow_call.join()
    assert done["small"] < done["slow"]  # the small model did not wait behind the slow one's batch


def test_info_describes_every_model(two: tuple[str, FakeEmbedder, FakeEmbedder]) -> None:
    base_url, _, _ = two
    info = httpx.get(f"{base_url}/info").json()
    assert info["model"] == "small"
    assert [(m["model"], m["dimension"]) for m in info["models"]] == [("small", 8), ("slow", 12)]
    assert all("weights_bytes" in m and "queue_items" in m for m in info["models"])
    assert info["process_rss_bytes"] > 0


def test_one_model_keeps_accepting_any_name() -> None:
    server = ThreadedServer(create_app(FakeEmbedder()))
    server.start()
    try:
        response = httpx.post(f"{server.base_url}/v1/embeddings", json={"model": "whatever", "input": "x"})
        assert response.status_code == 200 and response.json()["model"] == "fake-embedder"
    finally:
        server.stop()


def test_the_real_model_reports_its_weights() -> None:
    from instructembed import Embedder

    server = ThreadedServer(create_app(Embedder.load("all-MiniLM-L6-v2")))
    server.start()
    try:
        [model] = httpx.get(f"{server.base_url}/info").json()["models"]
        assert 80e6 < model["weights_bytes"] < 100e6  # 22.7M float32 parameters
        assert model["matryoshka"] is False
    finally:
        server.stop()


def _serve(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    """`serve ARGS` with uvicorn and create_app stubbed: (the CLI result, what create_app was given)."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app))
    captured: dict[str, Any] = {}

    def fake_create_app(source: Any, settings: Any, index: Any = None, model_settings: Any = None) -> Any:
        captured.update(source=source, settings=settings, model_settings=model_settings)
        return object()

    monkeypatch.setattr("instructembed.server.app.create_app", fake_create_app)
    app = typer.Typer()
    app.command("serve")(serve_command)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["serve", *args])
    return result, captured


def test_serve_with_several_models(monkeypatch: pytest.MonkeyPatch) -> None:
    result, given = _serve(["--model", "a=path/one", "--model", "path/two"], monkeypatch)
    assert result.exit_code == 0, result.output
    source = given["source"]
    assert list(source) == ["a", "path/two"] and all(callable(v) for v in source.values())
    result, given = _serve(["--model", "only"], monkeypatch)
    assert result.exit_code == 0 and callable(given["source"])
    result, _ = _serve(["--model", "x=a", "--model", "x=b"], monkeypatch)
    assert result.exit_code != 0 and "two models would be served as 'x'" in result.output
    result, _ = _serve(["--model", "a", "--model", "b", "--served-model-name", "n"], monkeypatch)
    assert result.exit_code != 0 and "NAME=MODEL" in result.output


MODELS_TOML = """
[models.small]
path = "all-MiniLM-L6-v2"
batch_tokens = 4096
max_queue_items = 100
max_items_per_request = 50

[models.slow]
path = "some/other-model"
max_wait_ms = 25
microbatch_overhead_tokens = "auto"
overlong = "reject"
max_seq_length = 64
"""


def test_models_file_gives_each_model_its_path_and_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(MODELS_TOML, encoding="utf-8")
    loads: list[tuple[str, dict[str, Any]]] = []

    def fake_load(path: str, *, threads: int | None = None, backend: str | None = None, **kw: Any) -> str:
        loads.append((path, {"threads": threads, "backend": backend, **kw}))
        return path

    monkeypatch.setattr("instructembed.embedder.Embedder.load", fake_load)
    result, given = _serve(
        ["--models-file", str(models), "--batch-tokens", "2000", "--threads", "2"], monkeypatch
    )
    assert result.exit_code == 0, result.output
    assert list(given["source"]) == ["small", "slow"]  # file order: the first is the default model
    for loader in given["source"].values():
        loader()
    assert [path for path, _ in loads] == ["all-MiniLM-L6-v2", "some/other-model"]
    assert loads[0][1]["threads"] == 2 and loads[0][1]["max_seq_length"] is None
    assert loads[1][1]["max_seq_length"] == 64  # the file's load options win over the flags
    small, slow = given["model_settings"]["small"], given["model_settings"]["slow"]
    assert (small.batch_tokens, small.max_queue_items, small.max_items_per_request) == (4096, 100, 50)
    assert (slow.batch_tokens, slow.max_wait_ms, slow.microbatch_overhead_tokens) == (2000, 25, None)
    assert small.microbatch_overhead_tokens is None  # the server default: learnt
    assert slow.overlong.value == "reject" and given["settings"].batch_tokens == 2000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such file"),
        ("[models.a\n", "not valid TOML"),
        ("", "no [models.NAME] tables"),
        ("title = 'x'\n[models.a]\npath = 'm'", "unknown top-level key(s) 'title'"),
        ("[models.a]\nbatch_tokens = 10", "[models.a]: no path"),
        ("[models.a]\npath = 'm'\nbatch_token = 10", "unknown key(s) 'batch_token'; known keys: path"),
        ("[models.a]\npath = 'm'\nbatch_tokens = '10'", "batch_tokens must be an integer, got '10'"),
        ("[models.a]\npath = 'm'\nmax_queue_items = true", "max_queue_items must be an integer"),
        (
            "[models.a]\npath = 'm'\nbatch_tokens = 0",
            "[models.a]: ServerSettings.batch_tokens must be a positive",
        ),
        ("[models.a]\npath = 'm'\nmax_items_per_request = 99999", "never be queued"),
        ("[models.a]\npath = 'm'\noverlong = 'cut'", "overlong must be one of ['truncate', 'reject']"),
        ("[models.a]\npath = 'm'\nthreads = 2", "unknown key(s) 'threads'"),
        ("models = 3", "no [models.NAME] tables"),
        ("[models]\na = 'x'", "models.a must be a table"),
    ],
)
def test_models_file_mistakes_name_the_file_table_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | None, message: str
) -> None:
    models = tmp_path / "models.toml"
    if text is not None:
        models.write_text(text, encoding="utf-8")
    result, given = _serve(["--models-file", str(models)], monkeypatch)
    assert result.exit_code != 0 and "source" not in given
    output = _said(result.output)
    assert str(models.name) in output and " ".join(message.split()) in output, output


def test_models_file_excludes_model_and_served_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models.toml"
    models.write_text(MODELS_TOML, encoding="utf-8")
    result, _ = _serve(["--models-file", str(models), "--model", "x"], monkeypatch)
    assert result.exit_code != 0 and "not both" in _said(result.output)
    result, _ = _serve(["--models-file", str(models), "--served-model-name", "n"], monkeypatch)
    assert result.exit_code != 0 and "each table is named" in _said(result.output)


def _said(output: str) -> str:
    """typer's error panel as one line: its borders gone, its wrapped lines joined."""
    return " ".join(output.replace("│", " ").split())


def test_each_model_runs_under_its_own_limits() -> None:
    """Through HTTP: one model's queue and item limits are its own, /info reports each."""
    small, other = FakeEmbedder(dimension=8), FakeEmbedder(dimension=12)
    settings = ServerSettings(max_wait_ms=0)
    own = ServerSettings(max_wait_ms=0, max_items_per_request=2, max_queue_items=2, batch_tokens=64)
    server = ThreadedServer(
        create_app({"small": small, "tight": other}, settings, model_settings={"tight": own})
    )
    server.start()
    try:
        body = {"input": ["a", "b", "c"], "model": "tight"}
        tight = httpx.post(f"{server.base_url}/v1/embeddings", json=body, timeout=30)
        assert tight.status_code == 422 and "limit is 2" in tight.json()["error"]["message"]
        body["model"] = "small"
        assert httpx.post(f"{server.base_url}/v1/embeddings", json=body, timeout=30).status_code == 200
        info = httpx.get(f"{server.base_url}/info").json()
        limits = {m["model"]: m["limits"] for m in info["models"]}
        assert limits["tight"]["max_items_per_request"] == 2 and limits["tight"]["batch_tokens"] == 64
        assert limits["small"]["max_items_per_request"] == settings.max_items_per_request
        assert all(m["call_cost"]["learnt"] for m in info["models"])  # the default: learnt
    finally:
        server.stop()
    with pytest.raises(ValueError, match="not served: nope"):
        create_app({"small": small}, settings, model_settings={"nope": own})
