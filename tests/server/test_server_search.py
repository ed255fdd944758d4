"""POST /v1/search on a real socket over a real index (tiny BERT, FAISS, SQLite): answers equal
`Index.search`, and refusals follow the embedding routes' error table and limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # openai>=3 ships the httpx2 fork; older stacks have httpx (same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]
import numpy as np
import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from instructembed import Embedder
from instructembed.index import ChunkSettings, Index
from instructembed.server import ServerSettings, create_app
from instructembed.server.cli import serve_command
from instructembed.server.testing import ThreadedServer

QUERY = "Represent the question for retrieving documents: "
TEXTS = {
    "a": ("Rivers flow into the sea through wide valleys.", {"kind": "water", "year": 2020}),
    "b": ("Trains leave the station every ten minutes.", {"kind": "transport", "year": 2021}),
    "c": ("Glaciers carve valleys over thousands of years.", {"kind": "water", "year": 2021}),
    "d": ("Bread needs flour, water, salt and time.", {"kind": "food", "year": 2020}),
}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("served") / "ix"
    embedder = Embedder.load(tiny_bert_dir)
    with Index.create(
        path,
        model=str(tiny_bert_dir),
        doc_instruction="Represent the document: ",
        query_instruction=QUERY,
        chunking=ChunkSettings(overlap=4),
        embedder=embedder,
    ) as index:
        index.add([{"id": k, "text": t, "metadata": m} for k, (t, m) in TEXTS.items()])
    return path


@pytest.fixture(scope="module")
def served(index_dir: Path, tiny_bert_dir: Path) -> Iterator[str]:
    settings = ServerSettings(max_body_bytes=4096, max_items_per_request=4, max_search_k=3)
    server = ThreadedServer(create_app(lambda: Embedder.load(tiny_bert_dir), settings, index=index_dir))
    server.start()
    yield server.base_url
    server.stop()


def post(base_url: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/search", json=body, timeout=30, **kwargs)


def test_search_answers_what_the_index_answers(served: str, index_dir: Path, tiny_bert_dir: Path) -> None:
    queries = ["where do rivers go?", "bread"]
    with Index.open(index_dir, embedder=Embedder.load(tiny_bert_dir)) as index:
        for body, kwargs in [
            ({"queries": queries, "k": 3}, {}),
            ({"queries": queries, "k": 2, "filter": {"kind": "water"}}, {"filter": {"kind": "water"}}),
            (
                {"queries": queries, "k": 2, "pool": "mean", "filter": {"year": [2021]}},
                {"pool": "mean", "filter": {"year": [2021]}},
            ),
            ({"queries": queries, "k": 2, "instruction": ""}, {"query_instruction": ""}),
        ]:
            response = post(served, body)
            assert response.status_code == 200, response.text
            payload = response.json()
            expected = index.search(queries, k=body["k"], **kwargs)
            assert payload["object"] == "list" and payload["usage"]["prompt_tokens"] > 0
            for result, want in zip(payload["data"], expected, strict=True):
                assert [h["id"] for h in result["hits"]] == [h.id for h in want]
                np.testing.assert_allclose(
                    [h["score"] for h in result["hits"]], [h.score for h in want], atol=2e-6
                )
                for hit in result["hits"]:
                    assert hit["text"] == TEXTS[hit["id"]][0] and hit["metadata"] == TEXTS[hit["id"]][1]
    single = post(served, {"queries": "trains"}).json()  # one string is one query; k: at most the limit
    assert len(single["data"]) == 1 and len(single["data"][0]["hits"]) == 3


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"queries": ["x"], "k": 4}, 422, "k"),
        ({"queries": ["x"], "k": 0}, 422, "k"),
        ({"queries": ["x"], "filter": {"kind": {"$in": 1}}}, 422, "filter"),
        ({"queries": ["x"], "filter": "kind=water"}, 422, "filter"),
        ({"queries": []}, 400, "queries"),
        ({"queries": ["ok", "  "]}, 400, "queries[1]"),
        ({"queries": ["ok", 3]}, 422, "queries[1]"),
        ({"queries": ["q"] * 5}, 422, "queries"),
        ({"queries": ["x"], "pool": "sum"}, 422, "pool"),
        ({"queries": ["x"], "nope": 1}, 422, "nope"),
    ],
)
def test_search_refusals_name_the_field(served: str, body: dict[str, Any], status: int, param: str) -> None:
    response = post(served, body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def test_search_limits_metrics_and_info(served: str) -> None:
    big = post(served, {"queries": ["x" * 5000]})
    assert big.status_code == 413
    info = httpx.get(f"{served}/info").json()
    assert info["index"]["documents"] == 4 and info["index"]["query_instruction"] == QUERY
    assert info["limits"]["max_search_k"] == 3
    metrics = httpx.get(f"{served}/metrics").text
    assert 'instructembed_requests_total{route="/v1/search",status="200"}' in metrics
    assert 'instructembed_requests_total{route="/v1/search",status="422"}' in metrics
    assert "instructembed_search_queries_total" in metrics and "instructembed_search_seconds_count" in metrics


def test_search_without_an_index_is_404(tiny_bert_dir: Path) -> None:
    server = ThreadedServer(create_app(Embedder.load(tiny_bert_dir)))
    server.start()
    try:
        response = post(server.base_url, {"queries": ["x"]})
        assert response.status_code == 404 and "--index" in response.json()["error"]["message"]
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # uvicorn's exit(3)
def test_an_index_of_another_model_refuses_to_start(index_dir: Path, tmp_path: Path) -> None:
    from instructembed.testing import build_checkpoint

    other = Embedder.load(build_checkpoint(tmp_path / "other", "bert", seed=3))
    server = ThreadedServer(create_app(other, index=index_dir))
    with pytest.raises(RuntimeError, match="startup"):
        server.start(timeout=60)


def test_serve_index_loads_the_model_the_index_names(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(app=app))
    app = typer.Typer()
    app.command("serve")(serve_command)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["serve", "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    server = ThreadedServer(seen["app"])  # the app the command built, started for real
    server.start()
    try:
        response = post(server.base_url, {"queries": ["rivers"], "k": 1})
        assert response.status_code == 200 and response.json()["data"][0]["hits"][0]["id"]
    finally:
        server.stop()
    result = CliRunner().invoke(app, ["serve", "--index", str(index_dir.parent / "missing")])
    # typer's error panel wraps at the terminal width, so a long temporary path can split the words
    assert result.exit_code != 0 and "does not exist" in " ".join(result.output.replace("│", " ").split())
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code != 0 and "give --model" in result.output
