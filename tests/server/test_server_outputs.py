"""Output controls and the rerank / tokenize routes on a real socket: the openai SDK for
`dimensions` + base64, httpx for `embedding_dtype`, `/rerank`, `/v1/rerank` and `/tokenize`, and
hostile inputs for each of them (4xx from the error table, never 5xx)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

try:  # openai>=3 ships the httpx2 fork; older stacks have httpx (same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]
import numpy as np
import openai
import pytest
from server_fakes import FakeEmbedder, start_server

from instructembed.server import ServerSettings
from instructembed.vectors_out import calibration_inputs, quantize, ranges_from_embeddings, truncate

QUERY_INSTRUCTION = ServerSettings.rerank_query_instruction
DOC_INSTRUCTION = ServerSettings.rerank_document_instruction


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, FakeEmbedder]]:
    embedder = FakeEmbedder(dimension=16)
    settings = ServerSettings(max_body_bytes=256 * 1024, max_items_per_request=32, max_queue_items=128)
    server = start_server(embedder, settings)
    yield server.base_url, embedder
    server.stop()


def _post(base_url: str, route: str, body: dict[str, Any]) -> httpx.Response:
    # json.dumps escapes a lone surrogate as \ud800 (httpx's own encoder cannot send it)
    headers = {"Content-Type": "application/json"}
    return httpx.post(f"{base_url}{route}", content=json.dumps(body), headers=headers, timeout=30)


def test_openai_sdk_dimensions_with_base64_and_float(served: tuple[str, FakeEmbedder]) -> None:
    base_url, fake = served
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
    texts = ["one text", "another text here"]
    expected = truncate(fake.embed(texts), 5)
    default = client.embeddings.create(model="m", input=texts, dimensions=5)  # the SDK asks for base64
    as_float = client.embeddings.create(model="m", input=texts, dimensions=5, encoding_format="float")
    for response in (default, as_float):
        got = np.array([d.embedding for d in response.data], dtype=np.float32)
        assert got.shape == (2, 5)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, rtol=1e-6)
    with pytest.raises(openai.UnprocessableEntityError, match="dimensions"):
        client.embeddings.create(model="m", input=texts, dimensions=17)


def _expected_ranges(fake: FakeEmbedder, dimensions: int) -> Any:
    calibration = fake.embed(calibration_inputs())
    if dimensions < calibration.shape[1]:
        calibration = truncate(calibration, dimensions)
    return ranges_from_embeddings(calibration)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "binary", "ubinary"])
@pytest.mark.parametrize("dimensions", [None, 12])
def test_quantized_embedding_types(
    served: tuple[str, FakeEmbedder], dtype: str, dimensions: int | None
) -> None:
    base_url, fake = served
    texts = ["alpha beta", "gamma", "delta epsilon zeta"]
    full = fake.embed(texts)
    vectors = full if dimensions is None else truncate(full, dimensions)
    ranges = _expected_ranges(fake, vectors.shape[1]) if dtype in ("int8", "uint8") else None
    expected = quantize(vectors, dtype, ranges)
    body: dict[str, Any] = {"input": texts, "embedding_dtype": dtype}
    if dimensions is not None:
        body["dimensions"] = dimensions
    as_list = _post(base_url, "/v1/embeddings", body)
    assert as_list.status_code == 200, as_list.text
    rows = [d["embedding"] for d in as_list.json()["data"]]
    assert all(isinstance(v, int) for row in rows for v in row)
    np.testing.assert_array_equal(np.array(rows), expected.astype(np.int64))
    as_base64 = _post(base_url, "/v1/embeddings", {**body, "encoding_format": "base64"})
    assert as_base64.status_code == 200, as_base64.text
    decoded = np.stack(
        [
            np.frombuffer(base64.b64decode(d["embedding"]), dtype=expected.dtype)
            for d in as_base64.json()["data"]
        ]
    )
    np.testing.assert_array_equal(decoded, expected)


def test_rerank_tei_shape_scores_by_instructed_cosine(served: tuple[str, FakeEmbedder]) -> None:
    base_url, fake = served
    texts = ["the first document", "a second one", "third"]
    response = _post(base_url, "/rerank", {"query": "which one?", "texts": texts, "return_text": True})
    assert response.status_code == 200, response.text
    ranked = response.json()
    q = fake.embed([(QUERY_INSTRUCTION, "which one?")])[0]
    docs = fake.embed([(DOC_INSTRUCTION, t) for t in texts])
    cosines = docs @ q / np.linalg.norm(docs, axis=1) / np.linalg.norm(q)
    order = list(np.argsort(-cosines, kind="stable"))
    assert [r["index"] for r in ranked] == order
    for r in ranked:
        assert r["text"] == texts[r["index"]]
        assert r["score"] == pytest.approx((1 + cosines[r["index"]]) / 2, abs=1e-6)
    raw = _post(base_url, "/rerank", {"query": "which one?", "texts": texts, "raw_scores": True}).json()
    assert all("text" not in r for r in raw)
    assert [r["score"] for r in raw] == pytest.approx(sorted(cosines.tolist(), reverse=True), abs=1e-6)
    plain = _post(
        base_url,
        "/rerank",
        {
            "query": "which one?",
            "texts": texts,
            "raw_scores": True,
            "query_instruction": "",
            "document_instruction": "",
        },
    ).json()
    q0, d0 = fake.embed(["which one?"])[0], fake.embed(texts)
    expected_plain = d0 @ q0 / np.linalg.norm(d0, axis=1) / np.linalg.norm(q0)
    assert sorted(r["score"] for r in plain) == pytest.approx(sorted(expected_plain.tolist()), abs=1e-6)


def test_cohere_rerank_shares_the_ranking(served: tuple[str, FakeEmbedder]) -> None:
    base_url, _ = served
    documents = ["the first document", {"text": "a second one"}, "third"]
    tei = _post(
        base_url, "/rerank", {"query": "q?", "texts": ["the first document", "a second one", "third"]}
    ).json()
    cohere = _post(
        base_url,
        "/v1/rerank",
        {"model": "m", "query": "q?", "documents": documents, "top_n": 2, "return_documents": True},
    )
    assert cohere.status_code == 200, cohere.text
    body = cohere.json()
    assert set(body) == {"id", "results", "meta"}
    assert [r["index"] for r in body["results"]] == [r["index"] for r in tei[:2]]
    assert [r["relevance_score"] for r in body["results"]] == pytest.approx([r["score"] for r in tei[:2]])
    texts = ["the first document", "a second one", "third"]
    assert [r["document"]["text"] for r in body["results"]] == [texts[r["index"]] for r in tei[:2]]
    no_docs = _post(base_url, "/v1/rerank", {"query": "q?", "documents": texts}).json()
    assert len(no_docs["results"]) == 3 and all("document" not in r for r in no_docs["results"])


def test_rerank_truncate_false_refuses_overlong_and_true_truncates(served: tuple[str, FakeEmbedder]) -> None:
    base_url, _ = served
    long_text = " ".join(["word"] * 40)  # the fake's limit is 32 tokens
    refused = _post(base_url, "/rerank", {"query": "q", "texts": ["short", long_text], "truncate": False})
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "texts[1]"
    assert (
        _post(
            base_url, "/rerank", {"query": "q", "texts": ["short", long_text], "truncate": True}
        ).status_code
        == 200
    )
    assert (
        _post(base_url, "/rerank", {"query": "q", "texts": [long_text]}).status_code == 200
    )  # server default


def test_tokenize_tei_shape(served: tuple[str, FakeEmbedder]) -> None:
    base_url, _ = served
    response = _post(base_url, "/tokenize", {"inputs": ["hello big world", "x"]})
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [len(r) for r in rows] == [5, 3]
    assert rows[0][0] == {"id": 101, "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert rows[0][2] == {"id": 3, "text": "big", "special": False, "start": 6, "stop": 9}
    single = _post(base_url, "/tokenize", {"inputs": "hello", "add_special_tokens": False}).json()
    assert single == [[{"id": 5, "text": "hello", "special": False, "start": 0, "stop": 5}]]
    instructed = _post(base_url, "/tokenize", {"inputs": "hello", "instruction": "Say:"}).json()
    assert [t["text"] for t in instructed[0]] == ["[CLS]", "Say:", "hello", "[SEP]"]
    long_text = " ".join(["w"] * 40)
    assert len(_post(base_url, "/tokenize", {"inputs": long_text}).json()[0]) == 42
    assert len(_post(base_url, "/tokenize", {"inputs": long_text, "truncate": True}).json()[0]) == 32


HOSTILE: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("/rerank", {"query": "q", "texts": []}, 400, "texts"),
    ("/rerank", {"query": "q", "texts": [""]}, 400, "texts[0]"),
    ("/rerank", {"query": "", "texts": ["a"]}, 400, "query"),
    ("/rerank", {"query": 3, "texts": ["a"]}, 422, "query"),
    ("/rerank", {"query": "q", "texts": "a"}, 422, "texts"),
    ("/rerank", {"query": "q", "texts": [{"text": "a"}]}, 422, "texts[0]"),
    ("/rerank", {"query": "q", "texts": ["a"] * 10_000}, 422, "texts"),
    ("/rerank", {"query": "q", "texts": ["a"], "unknown": 1}, 422, "unknown"),
    ("/rerank", {"query": "q", "texts": ["a"], "raw_scores": "yes"}, 422, "raw_scores"),
    ("/rerank", {"texts": ["a"]}, 422, "query"),
    ("/rerank", {"query": "q", "texts": ["\ud800"]}, 422, "texts[0]"),
    ("/v1/rerank", {"query": "q", "documents": ["a"], "top_n": 0}, 422, "top_n"),
    ("/v1/rerank", {"query": "q", "documents": [{"txt": "a"}]}, 422, "documents[0]"),
    ("/v1/rerank", {"query": "q", "documents": ["a"] * 10_000}, 422, "documents"),
    ("/v1/rerank", {"query": "q", "documents": []}, 400, "documents"),
    ("/v1/rerank", {"query": "q", "documents": None}, 422, "documents"),
    ("/tokenize", {"inputs": []}, 400, "inputs"),
    ("/tokenize", {"inputs": ""}, 400, "inputs"),
    ("/tokenize", {"inputs": [1, 2]}, 422, "inputs[0]"),
    ("/tokenize", {"inputs": ["a"] * 10_000}, 422, "inputs"),
    ("/tokenize", {"inputs": "a", "add_special_tokens": 1}, 422, "add_special_tokens"),
    ("/v1/embeddings", {"input": "a", "dimensions": 0}, 422, "dimensions"),
    ("/v1/embeddings", {"input": "a", "dimensions": 17}, 422, "dimensions"),
    ("/v1/embeddings", {"input": "a", "embedding_dtype": "float16"}, 422, "embedding_dtype"),
    ("/v1/embeddings", {"input": "a", "embedding_dtype": 8}, 422, "embedding_dtype"),
]


@pytest.mark.parametrize(("route", "body", "status", "param"), HOSTILE)
def test_hostile_inputs_get_4xx(
    served: tuple[str, FakeEmbedder], route: str, body: dict[str, Any], status: int, param: str | None
) -> None:
    base_url, _ = served
    response = _post(base_url, route, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["param"] == param and error["message"]


@pytest.mark.parametrize("route", ["/rerank", "/v1/rerank", "/tokenize"])
def test_new_routes_need_the_api_key_and_refuse_bad_bodies(route: str) -> None:
    server = start_server(FakeEmbedder(), ServerSettings(api_key="k", max_body_bytes=1024))
    try:
        body = {"query": "q", "texts": ["a"], "documents": ["a"], "inputs": "a"}
        assert httpx.post(f"{server.base_url}{route}", json=body).status_code == 401
        headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
        assert httpx.post(f"{server.base_url}{route}", content=b"{nope", headers=headers).status_code == 422
        assert httpx.post(f"{server.base_url}{route}", content=b"[]", headers=headers).status_code == 422
        big = b'{"inputs": "' + b"a" * 2000 + b'"}'
        assert httpx.post(f"{server.base_url}{route}", content=big, headers=headers).status_code == 413
    finally:
        server.stop()
