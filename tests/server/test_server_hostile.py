"""Hostile inputs: every one gets the documented status and a message naming the problem, never a
500, and the server keeps answering afterwards."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

try:  # openai>=3 ships the httpx2 fork; older stacks have httpx (same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]
import pytest

V1 = "/v1/embeddings"
EMBED = "/embed"


@dataclass(frozen=True)
class Case:
    name: str
    body: Any  # dict/list -> JSON; bytes -> sent raw
    status: int
    message: str  # substring of error.message
    path: str = V1
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


def raw(text: str) -> bytes:
    return text.encode("utf-8")


LONG = "word " * 40  # 42 fake tokens > max_seq_length 32, fine under truncation
CASES = [
    # -- not JSON / not an object
    Case("empty body", b"", 422, "body is empty"),
    Case("whitespace body", b"   \n", 422, "body is empty"),
    Case("truncated json", raw('{"input": ["a"'), 422, "not valid JSON"),
    Case("trailing garbage", raw('{"input": "a"} x'), 422, "not valid JSON"),
    Case("single quotes", raw("{'input': 'a'}"), 422, "not valid JSON"),
    Case("NaN literal", raw('{"input": "a", "dimensions": NaN}'), 422, "NaN is not valid JSON"),
    Case(
        "Infinity literal", raw('{"input": "a", "dimensions": Infinity}'), 422, "Infinity is not valid JSON"
    ),
    Case("-Infinity literal", raw('{"input": "a", "dimensions": -Infinity}'), 422, "not valid JSON"),
    Case("overflowing float", raw('{"input": "a", "dimensions": 1e999}'), 422, "too large"),
    Case(
        "5000-digit integer", raw('{"input": "a", "dimensions": ' + "9" * 5000 + "}"), 422, "not valid JSON"
    ),
    Case("invalid utf-8", b'{"input": "\xff\xfe"}', 422, "not UTF-8"),
    Case("top-level array", ["a", "b"], 422, "must be a JSON object, got array"),
    Case("top-level string", "hello", 422, "must be a JSON object, got string"),
    Case("top-level null", None, 422, "must be a JSON object, got null"),
    Case("deep nesting", raw('{"input": ' + "[" * 30_000 + "]" * 30_000 + "}"), 422, "nests too deeply"),
    # -- missing / unknown / wrongly typed fields
    Case("missing input", {"model": "m"}, 422, "`input`", param="input"),
    Case(
        "unknown top-level field", {"input": "a", "temperature": 1}, 422, "unknown field", param="temperature"
    ),
    Case("model is a number", {"input": "a", "model": 3}, 422, "`model`", param="model"),
    Case("model is a list", {"input": "a", "model": ["m"]}, 422, "`model`", param="model"),
    Case("model too long", {"input": "a", "model": "m" * 1000}, 422, "`model`", param="model"),
    Case(
        "encoding_format unknown",
        {"input": "a", "encoding_format": "int8"},
        422,
        "`encoding_format`",
        param="encoding_format",
    ),
    Case(
        "encoding_format null",
        {"input": "a", "encoding_format": None},
        422,
        "`encoding_format`",
        param="encoding_format",
    ),
    Case(
        "dimensions is a string", {"input": "a", "dimensions": "4"}, 422, "`dimensions`", param="dimensions"
    ),
    Case("dimensions is a float", {"input": "a", "dimensions": 4.0}, 422, "`dimensions`", param="dimensions"),
    Case("dimensions is bool", {"input": "a", "dimensions": True}, 422, "`dimensions`", param="dimensions"),
    Case("dimensions zero", {"input": "a", "dimensions": 0}, 422, "`dimensions`", param="dimensions"),
    Case("dimensions negative", {"input": "a", "dimensions": -5}, 422, "`dimensions`", param="dimensions"),
    Case("dimensions huge", {"input": "a", "dimensions": 10**30}, 422, "`dimensions`", param="dimensions"),
    Case("dimensions over model", {"input": "a", "dimensions": 9}, 422, "have 8", param="dimensions"),
    Case("user is a number", {"input": "a", "user": 7}, 422, "`user`", param="user"),
    Case(
        "instruction is a number", {"input": "a", "instruction": 1}, 422, "`instruction`", param="instruction"
    ),
    Case(
        "instruction is a list",
        {"input": "a", "instruction": ["x"]},
        422,
        "`instruction`",
        param="instruction",
    ),
    # -- the input itself
    Case("input null", {"input": None}, 422, "got null", param="input"),
    Case("input number", {"input": 42}, 422, "got number", param="input"),
    Case("input bool", {"input": True}, 422, "got boolean", param="input"),
    Case("input object", {"input": {"text": "a"}}, 422, "got object", param="input"),
    Case("empty list", {"input": []}, 400, "empty list", param="input"),
    Case("empty string", {"input": ""}, 400, "is empty", param="input"),
    Case("whitespace string", {"input": " \t\n"}, 400, "is empty", param="input"),
    Case("empty string in list", {"input": ["a", ""]}, 400, "`input[1]` is empty", param="input[1]"),
    Case("number in list", {"input": ["a", 1]}, 422, "`input[1]`", param="input[1]"),
    Case("null in list", {"input": [None]}, 422, "got null", param="input[0]"),
    Case("nested list of strings", {"input": [["a", "b"]]}, 422, "got array", param="input[0]"),
    Case("token ids", {"input": [[1, 2, 3]]}, 422, "token ids", param="input[0]"),
    Case("flat token ids", {"input": [1, 2, 3]}, 422, "`input[0]`", param="input[0]"),
    Case("too many items", {"input": ["a"] * 17}, 422, "limit is 16", param="input"),
    Case("lone surrogate", raw('{"input": "bad \\ud800 text"}'), 422, "surrogate", param="input"),
    Case(
        "lone surrogate in instruction",
        raw('{"input": "a", "instruction": "\\udfff"}'),
        422,
        "surrogate",
        param="instruction",
    ),
    # -- our extension objects
    Case("item missing text", {"input": [{"instruction": "x"}]}, 422, "input[0].text", param="input[0].text"),
    Case(
        "item missing instruction",
        {"input": [{"text": "x"}]},
        422,
        "input[0].instruction",
        param="input[0].instruction",
    ),
    Case(
        "item unknown field",
        {"input": [{"instruction": "x", "text": "y", "weight": 2}]},
        422,
        "unknown field",
        param="input[0].weight",
    ),
    Case(
        "item text is a number",
        {"input": [{"instruction": "x", "text": 5}]},
        422,
        "input[0].text",
        param="input[0].text",
    ),
    Case(
        "item instruction null",
        {"input": [{"instruction": None, "text": "y"}]},
        422,
        "input[0].instruction",
        param="input[0].instruction",
    ),
    Case(
        "item text empty",
        {"input": [{"instruction": "x", "text": ""}]},
        400,
        "is empty",
        param="input[0].text",
    ),
    Case(
        "item and top-level instruction",
        {"input": [{"instruction": "x", "text": "y"}], "instruction": "z"},
        422,
        "one or the other",
        param="input[0]",
    ),
    Case(
        "item surrogate text",
        raw('{"input": [{"instruction": "x", "text": "\\udc00"}]}'),
        422,
        "surrogate",
        param="input[0].text",
    ),
    # -- /embed compact form
    Case("embed: missing inputs", {"input": ["a"]}, 422, "`inputs`", path=EMBED, param="inputs"),
    Case(
        "embed: normalize is a string",
        {"inputs": ["a"], "normalize": "yes"},
        422,
        "`normalize`",
        path=EMBED,
        param="normalize",
    ),
    Case(
        "embed: normalize is 0",
        {"inputs": ["a"], "normalize": 0},
        422,
        "`normalize`",
        path=EMBED,
        param="normalize",
    ),
    Case(
        "embed: normalize false on normalized model",
        {"inputs": ["a"], "normalize": False},
        422,
        "unit-length",
        path=EMBED,
        param="normalize",
    ),
    Case(
        "embed: pair of three", {"inputs": [["a", "b", "c"]]}, 422, "inputs[0]", path=EMBED, param="inputs[0]"
    ),
    Case("embed: pair with number", {"inputs": [["a", 1]]}, 422, "inputs[0]", path=EMBED, param="inputs[0]"),
    Case(
        "embed: pair and instruction",
        {"inputs": [["a", "b"]], "instruction": "c"},
        422,
        "one or the other",
        path=EMBED,
        param="inputs[0]",
    ),
    Case(
        "embed: empty pair text", {"inputs": [["a", " "]]}, 400, "is empty", path=EMBED, param="inputs[0][1]"
    ),
    Case("embed: empty inputs", {"inputs": []}, 400, "empty list", path=EMBED, param="inputs"),
    # -- size, routes, methods
    Case(
        "declared body too large",
        {"input": "a"},
        413,
        "limit is 65536",
        headers={"content-length-override": str(10**12)},
    ),
    Case("body over the limit", {"input": "x" * 70_000}, 413, "limit is 65536"),
    Case("chunked body over the limit", b"x" * 200_000, 413, "over the limit"),
    Case("unknown route", {"input": "a"}, 404, "no route", path="/v2/embeddings"),
    Case("GET on embeddings", None, 405, "Method Not Allowed", method="GET"),
    Case("PUT on embed", {"inputs": ["a"]}, 405, "Method Not Allowed", path=EMBED, method="PUT"),
]


def _send(client: httpx.Client, case: Case) -> httpx.Response:
    headers = dict(case.headers)
    if case.name == "chunked body over the limit":
        body: bytes = case.body

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 8192):
                yield body[start : start + 8192]

        return client.request(
            case.method, case.path, content=chunks(), headers={"content-type": "application/json"}
        )
    if case.method == "GET":
        return client.request(case.method, case.path)
    content = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    override = headers.pop("content-length-override", None)
    if override is not None:
        return _send_raw(client, case.path, content, override)
    return client.request(
        case.method, case.path, content=content, headers={"content-type": "application/json", **headers}
    )


def _send_raw(client: httpx.Client, path: str, content: bytes, content_length: str) -> httpx.Response:
    """A huge declared Content-Length with a tiny body: refused before the server reads a byte.

    (No HTTP client will send a lying header, so this one writes the request by hand.)
    """
    url = httpx.URL(str(client.base_url))
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {url.host}\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
        sock.sendall(head.encode() + content)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _declared(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head_bytes, body = data.split(b"\r\n\r\n", 1)
    status = int(head_bytes.split(b" ", 2)[1])
    return httpx.Response(status, content=body)


def _declared(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 50
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input(fake_server: tuple[str, object], case: Case) -> None:
    base_url, _ = fake_server
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = _send(client, case)
        assert response.status_code == case.status, response.text
        error = response.json()["error"]
        assert case.message in error["message"], error
        assert error["code"] == case.status
        assert isinstance(error["type"], str) and error["type"]
        if case.param is not None:
            assert error["param"] == case.param, error
    # A fresh connection: the server is still up and still embeds.
    with httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.get("/health").status_code == 200
        ok = client.post(V1, json={"input": ["still alive"]})
        assert ok.status_code == 200, ok.text
        assert len(ok.json()["data"][0]["embedding"]) == 8


def test_no_500_was_ever_counted(fake_server: tuple[str, object]) -> None:
    base_url, _ = fake_server
    metrics = httpx.get(f"{base_url}/metrics").text
    assert 'status="500"' not in metrics
