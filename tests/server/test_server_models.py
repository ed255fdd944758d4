"""Several models in one server: routed by the request's `model`, each with its own queue; unknown
names are 404 from the error table; /v1/models and /info list them all; `serve --model A --model B`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
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


def _serve(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
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
    _serve.captured = captured  # type: ignore[attr-defined]
    return result, captured.get("source")


def test_serve_with_several_models(monkeypatch: pytest.MonkeyPatch) -> None:
    result, source = _serve(["--model", "a=path/one", "--model", "path/two"], monkeypatch)
    assert result.exit_code == 0, result.output
    assert list(source) == ["a", "path/two"] and all(callable(v) for v in source.values())
    result, source = _serve(["--model", "only"], monkeypatch)
    assert result.exit_code == 0 and callable(source)
    result, _ = _serve(["--model", "x=a", "--model", "x=b"], monkeypatch)
    assert result.exit_code != 0 and "two models would be served as 'x'" in result.output
    result, _ = _serve(["--model", "a", "--model", "b", "--served-model-name", "n"], monkeypatch)
    assert result.exit_code != 0 and "NAME=MODEL" in result.output
