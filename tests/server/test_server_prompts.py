"""`prompt_name` (TEI's field) and `input_type: query|document` on /v1/embeddings and /embed, on a
tiny Qwen3-style checkpoint that declares its prompts: the server returns `Embedder.embed`'s vectors
for the declared instruction, and refuses unknown names or two ways of saying it at once."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

try:  # openai>=3 ships the httpx2 fork; older stacks have httpx (same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]
import numpy as np
import pytest

from instructembed import Embedder
from instructembed.server import ServerSettings, create_app
from instructembed.server.testing import ThreadedServer
from instructembed.testing import assert_vectors_close
from instructembed.testing_families import FAMILY_RECIPES, FAMILY_TEXTS, build_family_checkpoint

TEXTS = FAMILY_TEXTS[:4]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Embedder]]:
    embedder = Embedder.load(build_family_checkpoint(tmp_path_factory.mktemp("m") / "qwen3", "qwen3"))
    server = ThreadedServer(create_app(embedder, ServerSettings(max_wait_ms=5)))
    server.start()
    yield server.base_url, embedder
    server.stop()


def _openai(url: str, **extra: Any) -> np.ndarray:
    response = httpx.post(f"{url}/v1/embeddings", json={"input": TEXTS, "encoding_format": "base64", **extra})
    assert response.status_code == 200, response.text
    rows = [
        np.frombuffer(base64.b64decode(d["embedding"]), dtype=np.float32) for d in response.json()["data"]
    ]
    return np.stack(rows)


def test_prompt_name_and_input_type_give_the_declared_instruction(served: tuple[str, Embedder]) -> None:
    url, embedder = served
    query = embedder.embed(TEXTS, prompt_name="query")
    assert_vectors_close(_openai(url, prompt_name="query"), query)
    assert_vectors_close(_openai(url, input_type="query"), query)
    assert_vectors_close(_openai(url, input_type="document"), embedder.embed_documents(TEXTS))
    assert_vectors_close(_openai(url), embedder.embed(TEXTS))
    compact = httpx.post(f"{url}/embed", json={"inputs": TEXTS, "prompt_name": "query"})
    assert compact.status_code == 200, compact.text
    assert_vectors_close(np.asarray(compact.json(), dtype=np.float32), query)
    assert np.abs(query - embedder.embed(TEXTS)).max() > 1e-3  # the prompt changes the vectors


def test_info_lists_the_declared_prompts(served: tuple[str, Embedder]) -> None:
    info = httpx.get(f"{served[0]}/info").json()
    assert info["prompts"] == FAMILY_RECIPES["qwen3"].prompts and info["default_prompt_name"] is None


@pytest.mark.parametrize(
    "extra,message",
    [
        (
            {"prompt_name": "passage"},
            "'passage' is not one of this model's prompts (declared: 'query', 'document')",
        ),
        ({"prompt_name": "query", "instruction": "x"}, "at most one of `instruction`, `prompt_name`"),
        ({"input_type": "question"}, "input_type"),
    ],
)
def test_bad_prompt_requests_are_refused_with_a_clear_422(
    served: tuple[str, Embedder], extra: dict[str, Any], message: str
) -> None:
    for route, key in (("/v1/embeddings", "input"), ("/embed", "inputs")):
        response = httpx.post(f"{served[0]}{route}", json={key: TEXTS, **extra})
        assert response.status_code == 422 and message in response.text, response.text
