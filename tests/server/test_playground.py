"""The playground's serving side (no browser): files from the package with a strict CSP, the
suggestions derived from the packaged instruction table, the example sets, `--no-playground`.
What the page does in a browser is in test_playground_browser.py."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from server_fakes import FakeEmbedder
from typer.testing import CliRunner

from instructembed.server import ServerSettings, create_app
from instructembed.server.playground_routes import ASSETS, SECURITY_HEADERS, suggestions

PLAYGROUND = Path(str(resources.files("instructembed.server").joinpath("playground")))


def _table() -> dict[str, dict[str, Any]]:
    text = resources.files("instructembed").joinpath("data", "instructor-large.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@pytest.fixture
def client() -> Any:
    with TestClient(create_app(FakeEmbedder(), ServerSettings(api_key="s3cret"))) as test_client:
        yield test_client


def test_the_asset_list_is_the_directory() -> None:
    """A file added to server/playground/ must be registered (and so shipped, see pyproject)."""
    on_disk = {p.name for p in PLAYGROUND.iterdir() if p.is_file()}
    assert on_disk == set(ASSETS)


def test_page_and_assets_are_served_with_a_strict_policy(client: TestClient) -> None:
    redirect = client.get("/playground", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "playground/"
    page = client.get("/playground/")  # open without the API key: the page holds no secret
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.content == (PLAYGROUND / "index.html").read_bytes()
    for name, media_type in ASSETS.items():
        answer = client.get(f"/playground/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == media_type
        assert answer.content == (PLAYGROUND / name).read_bytes()
        for header, value in SECURITY_HEADERS.items():
            assert answer.headers[header] == value
    assert "default-src 'none'" in SECURITY_HEADERS["Content-Security-Policy"]
    assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 401  # the API stays closed


@pytest.mark.parametrize("path", ["/playground/nope.js", "/playground/..%2Froutes.py", "/playground/app.py"])
def test_anything_else_under_playground_is_a_json_404(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "not_found"


def test_assets_load_nothing_from_elsewhere() -> None:
    """No CDN, no web fonts, no absolute URL: every reference is relative to the page."""
    html = (PLAYGROUND / "index.html").read_text("utf-8")
    references = re.findall(r"""(?:src|href)=["']([^"']*)["']""", html)
    assert references and all(
        ref.startswith(("#", "data:")) or not re.match(r"^([a-z]+:|//|/)", ref) for ref in references
    ), references
    css = (PLAYGROUND / "style.css").read_text("utf-8")
    assert "@import" not in css and "url(" not in css and "@font-face" not in css
    js = (PLAYGROUND / "app.js").read_text("utf-8")
    assert not re.search(r"https?://|wss?://|\bimport\s*\(", js)
    assert re.findall(r'"\.\./[a-z/0-9]+"', js) == ['"../info"', '"../v1/embeddings"', '"../v1/search"']


def test_suggestions_keep_every_instruction_of_the_packaged_table() -> None:
    table = _table()
    result = suggestions(table)
    assert result["source"] == "instructor-large"
    by_type = {t["name"]: t["suggestions"] for t in result["task_types"]}
    assert list(by_type) == list(table)
    for task_type, tasks in table.items():
        offered = {(s["role"], s["instruction"]): s["tasks"] for s in by_type[task_type]}
        assert len(offered) == len(by_type[task_type]), f"duplicates in {task_type}"
        for task, entry in tasks.items():
            sides = entry.items() if isinstance(entry, dict) else [(None, entry)]
            for role, instruction in sides:
                assert task in offered[(role, instruction)]  # verbatim, trailing space included
    retrieval = {(s["role"], s["instruction"]) for s in by_type["Retrieval"]}
    assert ("corpus", "Represent the document for retrieval: ") in retrieval  # shared by 4 tasks, once


def test_suggestions_route_serves_the_derived_table(client: TestClient) -> None:
    answer = client.get("/playground/instructions.json")
    assert answer.status_code == 200 and answer.json() == suggestions(_table())


def test_example_sets_use_instructions_from_the_table() -> None:
    examples = json.loads((PLAYGROUND / "examples.json").read_text("utf-8"))
    known = {s["instruction"] for t in suggestions(_table())["task_types"] for s in t["suggestions"]}
    assert len(examples["sets"]) >= 2
    for example in examples["sets"]:
        assert len(example["texts"]) >= 3 and all(t.strip() for t in example["texts"])
        used = [*example["instructions"], example["search"]["query_instruction"]]
        used.append(example["search"]["doc_instruction"])
        assert len(example["instructions"]) >= 2
        assert set(used) <= known, set(used) - known


def test_requests_for_assets_are_counted_by_route_template(client: TestClient) -> None:
    for name in ASSETS:
        client.get(f"/playground/{name}")
    client.get("/playground/does-not-exist")
    metrics = client.get("/metrics").text
    assert 'route="/playground/{name}",status="200"' in metrics
    assert "does-not-exist" not in metrics


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`instructembed serve` up to uvicorn.run, with the app it would serve captured."""
    from instructembed import embedder

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(app=app))
    monkeypatch.setattr(embedder.Embedder, "load", classmethod(lambda cls, name, **kw: FakeEmbedder()))
    return seen


@pytest.mark.parametrize(
    ("args", "env", "on"),
    [
        ([], {}, True),
        (["--no-playground"], {}, False),
        ([], {"INSTRUCTEMBED_PLAYGROUND": "false"}, False),
        (["--playground"], {"INSTRUCTEMBED_PLAYGROUND": "false"}, True),  # the flag wins over the env
    ],
)
def test_no_playground_flag_and_its_env_twin(
    served: dict[str, Any], args: list[str], env: dict[str, str], on: bool
) -> None:
    from instructembed.cli import app

    result = CliRunner().invoke(app, ["serve", "--model", "m", *args], env=env)
    assert result.exit_code == 0, result.output
    assert served["app"].state.settings.playground is on
    with TestClient(served["app"]) as test_client:
        assert test_client.get("/playground/").status_code == (200 if on else 404)
        assert test_client.get("/playground/app.js").status_code == (200 if on else 404)
        assert test_client.get("/health").status_code == 200
