"""The server end to end on a real socket with a fake embedder: the official openai client, httpx,
batching across requests, 429, dropped clients, draining on shutdown, auth, metrics."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

try:  # openai>=3 ships the httpx2 fork; older stacks have httpx (same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]
import numpy as np
import openai
import pytest
from server_fakes import FakeEmbedder, start_server

from instructembed.server import OverlongPolicy, ServerSettings
from instructembed.server.vectors import from_base64


def client_for(base_url: str, api_key: str = "unused", **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_openai_client_float_and_base64_match_embed(fake_server: tuple[str, FakeEmbedder]) -> None:
    base_url, fake = fake_server
    client = client_for(base_url)
    texts = ["first text", "second, longer text here"]
    expected = fake.embed(texts)

    as_float = client.embeddings.create(model="anything", input=texts, encoding_format="float")
    assert as_float.object == "list" and as_float.model == "fake-embedder"
    assert [d.index for d in as_float.data] == [0, 1]
    np.testing.assert_array_equal(np.array([d.embedding for d in as_float.data], dtype=np.float32), expected)
    assert (
        as_float.usage.prompt_tokens == 2 + 2 + 4 + 2
        and as_float.usage.total_tokens == as_float.usage.prompt_tokens
    )

    default = client.embeddings.create(model="anything", input=texts)  # the client asks for base64
    np.testing.assert_array_equal(np.array([d.embedding for d in default.data], dtype=np.float32), expected)

    single = client.embeddings.create(model="anything", input="first text", encoding_format="float")
    np.testing.assert_array_equal(np.array(single.data[0].embedding, dtype=np.float32), expected[0])


def test_openai_client_instruction_extension(fake_server: tuple[str, FakeEmbedder]) -> None:
    base_url, fake = fake_server
    client = client_for(base_url)
    shared = client.embeddings.create(
        model="m",
        input=["a b", "c"],
        encoding_format="float",
        extra_body={"instruction": "Represent the title:"},
    )
    expected = fake.embed([("Represent the title:", "a b"), ("Represent the title:", "c")])
    np.testing.assert_array_equal(np.array([d.embedding for d in shared.data], dtype=np.float32), expected)

    items = [
        {"instruction": "Represent the query:", "text": "q"},
        "plain",
        {"instruction": "Doc:", "text": "d"},
    ]
    mixed = client.embeddings.create(model="m", input=["placeholder"], extra_body={"input": items})
    expected = fake.embed([("Represent the query:", "q"), "plain", ("Doc:", "d")])
    np.testing.assert_array_equal(np.array([d.embedding for d in mixed.data], dtype=np.float32), expected)


def test_dimensions_truncate_and_renormalize(fake_server: tuple[str, FakeEmbedder]) -> None:
    base_url, fake = fake_server
    response = client_for(base_url).embeddings.create(
        model="m", input=["x y"], dimensions=3, encoding_format="float"
    )
    row = np.array(response.data[0].embedding, dtype=np.float32)
    full = fake.embed(["x y"])[0]
    np.testing.assert_allclose(row, full[:3] / np.linalg.norm(full[:3]), rtol=1e-6)
    same = client_for(base_url).embeddings.create(
        model="m", input=["x y"], dimensions=8, encoding_format="float"
    )
    np.testing.assert_array_equal(np.array(same.data[0].embedding, dtype=np.float32), full)


def test_embed_route_and_ops_routes(fake_server: tuple[str, FakeEmbedder]) -> None:
    base_url, fake = fake_server
    with httpx.Client(base_url=base_url) as http:
        rows = http.post("/embed", json={"inputs": ["a", ["instr", "b"], {"instruction": "i2", "text": "c"}]})
        assert rows.status_code == 200
        np.testing.assert_array_equal(
            np.array(rows.json(), dtype=np.float32), fake.embed(["a", ("instr", "b"), ("i2", "c")])
        )
        shared = http.post("/embed", json={"inputs": "a", "instruction": "I"}).json()
        np.testing.assert_array_equal(np.array(shared, dtype=np.float32), fake.embed([("I", "a")]))

        info = http.get("/info").json()
        assert info["model"] == "fake-embedder" and info["dimension"] == 8 and info["max_seq_length"] == 32
        assert info["limits"]["max_items_per_request"] == 16 and info["limits"]["overlong"] == "truncate"
        assert "api_key" not in str(info)
        models = client_for(base_url).models.list()
        assert [m.id for m in models.data] == ["fake-embedder"]

        metrics = http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        for name in (
            'instructembed_requests_total{route="/embed",status="200"}',
            "instructembed_queue_items",
            "instructembed_batch_items_bucket",
            "instructembed_batch_tokens_bucket",
            'instructembed_request_seconds_bucket{le="0.005",route="/embed"}',
        ):
            assert name in metrics.text, name


def test_embed_route_normalizes_an_unnormalized_model() -> None:
    fake = FakeEmbedder(normalized=False)
    server = start_server(fake)
    try:
        rows = np.array(httpx.post(f"{server.base_url}/embed", json={"inputs": ["a", "b"]}).json())
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-6)
        raw = httpx.post(f"{server.base_url}/embed", json={"inputs": ["a"], "normalize": False}).json()
        np.testing.assert_array_equal(np.array(raw, dtype=np.float32), fake.embed(["a"]))
    finally:
        server.stop()


def test_overlong_truncate_counts_truncated_tokens_and_reject_refuses() -> None:
    long_text = "w " * 50  # 52 fake tokens, limit 32
    truncating = start_server(FakeEmbedder())
    rejecting = start_server(FakeEmbedder(), ServerSettings(overlong=OverlongPolicy.REJECT))
    try:
        ok = httpx.post(f"{truncating.base_url}/v1/embeddings", json={"input": ["a", long_text]}).json()
        assert ok["usage"]["prompt_tokens"] == 3 + 32
        refused = httpx.post(f"{rejecting.base_url}/v1/embeddings", json={"input": ["a", long_text]})
        assert refused.status_code == 422
        assert refused.json()["error"]["param"] == "input[1]"
        assert "52 tokens" in refused.json()["error"]["message"]
    finally:
        truncating.stop()
        rejecting.stop()


def test_api_key() -> None:
    server = start_server(FakeEmbedder(), ServerSettings(api_key="s3cret"))
    try:
        with pytest.raises(openai.AuthenticationError) as wrong:
            client_for(server.base_url, api_key="wrong").embeddings.create(model="m", input="a")
        assert wrong.value.status_code == 401 and "invalid API key" in str(wrong.value)
        missing = httpx.post(f"{server.base_url}/v1/embeddings", json={"input": "a"})
        assert missing.status_code == 401 and "missing API key" in missing.json()["error"]["message"]
        assert missing.headers["www-authenticate"] == "Bearer"
        basic = httpx.post(
            f"{server.base_url}/embed", json={"inputs": "a"}, headers={"Authorization": "Basic s3cret"}
        )
        assert basic.status_code == 401
        # Refused before the body is read: a huge body with a wrong key is a 401, not a 413.
        big = httpx.post(
            f"{server.base_url}/v1/embeddings",
            content=b"x" * (8 << 20),
            headers={"Authorization": "Bearer no"},
        )
        assert big.status_code == 401
        good = client_for(server.base_url, api_key="s3cret").embeddings.create(model="m", input="a")
        assert len(good.data) == 1
        assert httpx.get(f"{server.base_url}/health").status_code == 200  # probes need no key
    finally:
        server.stop()


def test_concurrent_mixed_requests_batch_together_and_match_embed() -> None:
    fake = FakeEmbedder(delay=0.02)
    # one model call per batch, so fake.calls counts batches (micro-batches: test_server_units.py)
    server = start_server(fake, ServerSettings(max_wait_ms=5, microbatch_overhead_tokens=10**9))
    instructions = [None, "Represent the query:", "Represent the document:", ""]

    def one(i: int) -> tuple[list[str | tuple[str, str]], np.ndarray]:
        instruction = instructions[i % len(instructions)]
        texts = [f"request {i} item {j} " + "x " * (i % 7) for j in range(1 + i % 5)]
        body: dict[str, object] = {"input": texts, "encoding_format": "base64"}
        if instruction is not None:
            body["instruction"] = instruction
        items: list[str | tuple[str, str]] = [t if instruction is None else (instruction, t) for t in texts]
        if i % 3 == 0:  # per-item instructions, mixed with plain strings
            items = [(f"own {i}", t) if j % 2 else t for j, t in enumerate(texts)]
            body = {
                "input": [{"instruction": f"own {i}", "text": t} if j % 2 else t for j, t in enumerate(texts)]
            }
        response = httpx.post(f"{server.base_url}/v1/embeddings", json=body, timeout=30)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        rows = [
            from_base64(d["embedding"]) if isinstance(d["embedding"], str) else d["embedding"] for d in data
        ]
        return items, np.array(rows, dtype=np.float32)

    try:
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(one, range(64)))
    finally:
        server.stop()
    for items, rows in results:
        np.testing.assert_array_equal(rows, FakeEmbedder().embed(items))
    assert sum(len(call) for call in fake.calls) == sum(len(items) for items, _ in results)
    assert len(fake.calls) < 64, "requests were not batched together"


def test_full_queue_answers_429_at_once() -> None:
    fake = FakeEmbedder(delay=0.6)
    server = start_server(fake, ServerSettings(max_items_per_request=4, max_queue_items=4, max_wait_ms=0))
    url = f"{server.base_url}/v1/embeddings"
    try:
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(httpx.post, url, json={"input": ["r1", "r2", "r3", "r4"]}, timeout=30)
            time.sleep(0.2)  # batch 1 is now in the model; the queue is empty again
            queued = pool.submit(httpx.post, url, json={"input": ["q1", "q2", "q3", "q4"]}, timeout=30)
            time.sleep(0.1)  # queued: the queue is full
            refused = httpx.post(url, json={"input": "one more"}, timeout=30)
            assert refused.status_code == 429, refused.text
            assert not queued.done(), "the 429 must not wait for the queue to move"
            assert refused.headers["retry-after"] == "1"
            assert "overloaded" in refused.json()["error"]["message"]
            assert running.result().status_code == 200
            assert queued.result().status_code == 200
        # the official client sees a RateLimitError
        with pytest.raises(openai.RateLimitError), ThreadPoolExecutor(2) as pool:
            pool.submit(httpx.post, url, json={"input": ["a", "b", "c", "d"]}, timeout=30)
            time.sleep(0.2)
            pool.submit(httpx.post, url, json={"input": ["e", "f", "g", "h"]}, timeout=30)
            time.sleep(0.1)
            client_for(server.base_url).embeddings.create(model="m", input="x")
    finally:
        server.stop()


def test_work_for_a_client_that_went_away_is_dropped() -> None:
    fake = FakeEmbedder(delay=0.6)
    # batch_tokens=3: one short item per batch, so the abandoned request waits in the queue
    server = start_server(fake, ServerSettings(max_wait_ms=0, batch_tokens=3))
    url = f"{server.base_url}/v1/embeddings"
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.post, url, json={"input": "a"}, timeout=30)
            time.sleep(0.1)
            second = pool.submit(httpx.post, url, json={"input": "b"}, timeout=30)
            time.sleep(0.1)
            with pytest.raises(httpx.TimeoutException):
                httpx.post(url, json={"input": ["abandoned 1", "abandoned 2"]}, timeout=0.8)
            assert first.result().status_code == 200 and second.result().status_code == 200
        time.sleep(1.5)  # the worker would have run the abandoned items by now
        embedded = [item for call in fake.calls for item in call]
        assert "abandoned 1" not in embedded and "abandoned 2" not in embedded
        metrics = httpx.get(f"{server.base_url}/metrics").text
        assert "instructembed_dropped_items_total 2.0" in metrics
        assert 'status="499"' in metrics
        assert httpx.post(url, json={"input": "after"}).status_code == 200
    finally:
        server.stop()


def _wait_until_queued(base_url: str, items: int, timeout: float = 60.0) -> None:
    """Until the queue gauge reads `items` (a fixed sleep loses the race on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in httpx.get(f"{base_url}/metrics", timeout=10).text.splitlines():
            if line.startswith("instructembed_queue_items ") and float(line.split()[1]) >= items:
                return
        time.sleep(0.02)
    raise AssertionError(f"{items} inputs never reached the queue within {timeout} s")


def test_shutdown_drains_queued_requests() -> None:
    fake = FakeEmbedder(delay=0.3)
    server = start_server(fake, ServerSettings(max_wait_ms=0, batch_tokens=4))  # one item per batch
    url = f"{server.base_url}/v1/embeddings"
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(httpx.post, url, json={"input": f"drain {i}"}, timeout=30) for i in range(6)]
        _wait_until_queued(server.base_url, 5)  # all six are in: one in the model, five queued
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        statuses = [f.result().status_code for f in futures]
        stopper.join()
    assert statuses == [200] * 6
    assert sorted(item for call in fake.calls for item in call) == sorted(f"drain {i}" for i in range(6))


def test_a_refused_item_fails_only_its_own_request() -> None:
    fake = FakeEmbedder(delay=0.4)
    server = start_server(fake, ServerSettings(max_wait_ms=0))
    url = f"{server.base_url}/v1/embeddings"
    try:
        with ThreadPoolExecutor(3) as pool:
            busy = pool.submit(httpx.post, url, json={"input": "busy"}, timeout=30)
            time.sleep(0.2)
            good = pool.submit(httpx.post, url, json={"input": ["good"]}, timeout=30)
            bad = pool.submit(httpx.post, url, json={"input": ["__explode__"]}, timeout=30)
            assert busy.result().status_code == 200
            assert good.result().status_code == 200
            refused = bad.result()
        assert refused.status_code == 422 and "refuses __explode__" in refused.json()["error"]["message"]
        assert ["good", "__explode__"] in fake.calls or [
            "__explode__",
            "good",
        ] in fake.calls  # one batch first
    finally:
        server.stop()


def test_openapi_documents_the_request_bodies(fake_server: tuple[str, FakeEmbedder]) -> None:
    base_url, _ = fake_server
    spec = httpx.get(f"{base_url}/openapi.json").json()
    body = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"input", "model", "encoding_format", "dimensions", "user", "instruction"} <= set(
        body["properties"]
    )
    assert (
        "inputs"
        in spec["paths"]["/embed"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "properties"
        ]
    )
