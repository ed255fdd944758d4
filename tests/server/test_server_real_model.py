"""The server around the real packaged all-MiniLM-L6-v2: concurrent clients with mixed instructions
get what `Embedder.embed` returns for the same items."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

try:  # openai>=3 ships the httpx2 fork; older stacks have httpx (same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]
import numpy as np
import openai
import pytest

from instructembed.server import ServerSettings, create_app
from instructembed.server.testing import ThreadedServer
from instructembed.testing import assert_vectors_close

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

INSTRUCTIONS = [
    None,
    "Represent the Science title:",
    "Represent the Wikipedia question for retrieving supporting documents:",
    "Represent the document for retrieval:",
]
WORDS = [
    "the",
    "embedding",
    "server",
    "batches",
    "requests",
    "from",
    "many",
    "clients",
    "into",
    "one",
    "model",
    "call",
    "per",
    "budget",
]


@pytest.fixture(scope="module")
def real() -> Iterator[tuple[str, Any]]:
    embedder_module = pytest.importorskip("instructembed.embedder")
    try:
        embedder = embedder_module.Embedder.load("all-MiniLM-L6-v2")
    except Exception as error:  # the packaged model is missing here: skip, as conftest does for data
        pytest.skip(f"the packaged all-MiniLM-L6-v2 cannot be loaded: {error}")
    server = ThreadedServer(create_app(embedder, ServerSettings(max_wait_ms=5)))
    server.start()
    yield server.base_url, embedder
    server.stop()


def _request(i: int) -> tuple[dict[str, Any], list[str | tuple[str, str]]]:
    rng = random.Random(i)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(1, 40))) for _ in range(rng.randint(1, 6))]
    if i % 3 == 0:  # per-item instructions mixed with plain strings
        raw: list[Any] = []
        items: list[str | tuple[str, str]] = []
        for text in texts:
            instruction = rng.choice(INSTRUCTIONS)
            raw.append(text if instruction is None else {"instruction": instruction, "text": text})
            items.append(text if instruction is None else (instruction, text))
        return {"input": raw}, items
    instruction = INSTRUCTIONS[i % len(INSTRUCTIONS)]
    body: dict[str, Any] = {"input": texts}
    if instruction is not None:
        body["instruction"] = instruction
    return body, [t if instruction is None else (instruction, t) for t in texts]


def test_concurrent_mixed_instructions_match_embed(real: tuple[str, Any]) -> None:
    base_url, embedder = real
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)

    def call(i: int) -> tuple[list[str | tuple[str, str]], np.ndarray, int]:
        body, items = _request(i)
        extra = {k: v for k, v in body.items() if k != "input"}
        if i % 3 == 0:
            extra["input"] = body["input"]  # objects go through extra_body, the client passes them on
        response = client.embeddings.create(
            model="all-MiniLM-L6-v2", input=["placeholder"] if i % 3 == 0 else body["input"], extra_body=extra
        )
        rows = np.array([d.embedding for d in response.data], dtype=np.float32)
        return items, rows, response.usage.prompt_tokens

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(32)))
    all_items = [item for items, _, _ in results for item in items]
    expected = embedder.embed(all_items)
    got = np.concatenate([rows for _, rows, _ in results])
    assert got.shape == (len(all_items), 384)
    assert_vectors_close(got, expected)
    for items, _, tokens in results:
        assert tokens == sum(min(c, embedder.max_seq_length) for c in embedder.token_counts(items))


def test_micro_batches_of_every_length_match_embed(real: tuple[str, Any]) -> None:
    """Overhead 0 cuts each batch into one model call per distinct length: the rows still equal
    `Embedder.embed` on the same items, whatever the calls."""
    _, embedder = real
    server = ThreadedServer(
        create_app(embedder, ServerSettings(max_wait_ms=20, microbatch_overhead_tokens=0))
    )
    server.start()
    try:
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)
        requests = [_request(i) for i in range(100, 116)]

        def call(body: dict[str, Any]) -> np.ndarray:
            extra = {k: v for k, v in body.items() if k != "input"}
            texts = body["input"] if all(isinstance(t, str) for t in body["input"]) else None
            if texts is None:
                extra["input"] = body["input"]
            response = client.embeddings.create(
                model="all-MiniLM-L6-v2", input=texts or ["placeholder"], extra_body=extra
            )
            return np.array([d.embedding for d in response.data], dtype=np.float32)

        with ThreadPoolExecutor(8) as pool:
            got = np.concatenate(list(pool.map(call, [body for body, _ in requests])))
        calls = httpx.get(f"{server.base_url}/metrics").text
    finally:
        server.stop()
    assert_vectors_close(got, embedder.embed([item for _, items in requests for item in items]))
    batches = _metric(calls, "instructembed_batch_items_count")
    assert _metric(calls, "instructembed_model_calls_total") > batches  # batches were really split


def _metric(text: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_embed_route_with_instructor_pairs(real: tuple[str, Any]) -> None:
    base_url, embedder = real
    pairs = [
        ["Represent the Science title:", "3D ActionSLAM: wearable person tracking"],
        ["", "no instruction"],
    ]
    rows = httpx.post(f"{base_url}/embed", json={"inputs": pairs}, timeout=60).json()
    assert_vectors_close(np.array(rows, dtype=np.float32), embedder.embed([tuple(p) for p in pairs]))


def test_overlong_input_is_truncated_like_embed(real: tuple[str, Any]) -> None:
    base_url, embedder = real
    long_text = "tokens " * 1000
    response = httpx.post(
        f"{base_url}/v1/embeddings", json={"input": [long_text], "encoding_format": "float"}, timeout=60
    )
    body = response.json()
    assert body["usage"]["prompt_tokens"] == embedder.max_seq_length
    assert_vectors_close(
        np.array([body["data"][0]["embedding"]], dtype=np.float32), embedder.embed([long_text])
    )


@pytest.mark.parametrize(
    "text",
    [
        "\u0000nul byte",
        "emoji 🧪🚀 and CJK 漢字",
        "\u200b\u200b zero width",
        "RTL مرحبا بالعالم",
        "a" * 50_000,
        "\ufeffbom",
        "tab\tand\nnewline",
    ],
    ids=["nul", "emoji-cjk", "zero-width", "rtl", "50k-chars", "bom", "control"],
)
def test_odd_but_valid_text_embeds(real: tuple[str, Any], text: str) -> None:
    base_url, embedder = real
    response = httpx.post(
        f"{base_url}/v1/embeddings", json={"input": text, "encoding_format": "float"}, timeout=60
    )
    assert response.status_code == 200, response.text
    row = np.array(response.json()["data"][0]["embedding"], dtype=np.float32)
    assert np.isfinite(row).all() and row.shape == (384,)
    assert_vectors_close(row, embedder.embed([text])[0])
