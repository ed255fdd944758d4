"""`POST /v1/search` (when the server was started with an index): queries -> top-k documents.

Queries go through the same queue, limits and error table as the embedding routes (body size 413,
item count and `k` 422, a full queue 429, empty queries 400); the index search itself runs in one
thread of its own beside the model thread. Filter mistakes are 422 naming `filter`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from instructembed.index.errors import IndexStoreError
from instructembed.index.search import filter_sql
from instructembed.server.errors import ErrorKind, ServerError
from instructembed.server.routes import _ERRORS, _body, _read_json, get_state
from instructembed.server.schemas import SearchRequest, SearchResponse, ServedItem, json_type, validate_model

search_router = APIRouter(tags=["search"])


@search_router.post(
    "/v1/search", response_model=SearchResponse, responses=_ERRORS, openapi_extra=_body(SearchRequest)
)
async def search(request: Request) -> Response:
    """Top-k documents of the served index for each query (instruction: the index's unless given)."""
    state = get_state(request)
    body = validate_model(SearchRequest, await _read_json(request, state))
    if state.index is None:
        raise ServerError(
            ErrorKind.NOT_FOUND, "this server has no index; start it with `instructembed serve --index DIR`"
        )
    limit = state.settings.max_search_k
    k = min(10, limit) if body.k is None else body.k
    if k > limit:
        raise ServerError(
            ErrorKind.VALIDATION, f"`k` is {k}; this server answers at most {limit} per query", param="k"
        )
    try:
        filter_sql(body.filter)  # refuse a bad filter before embedding anything
    except IndexStoreError as exc:
        raise ServerError(ErrorKind.VALIDATION, f"invalid `filter`: {exc}", param="filter") from None
    instruction = (
        body.instruction if body.instruction is not None else state.index.fingerprint.query_instruction
    )
    items = _queries(body.queries, instruction or None, state.settings.max_items_per_request)
    vectors, tokens = await state.embed(request, items)  # (Q, D)
    start = time.perf_counter()
    hits = await asyncio.get_running_loop().run_in_executor(
        state.search_executor,
        lambda: state.index.search_vectors(vectors, k, body.filter, pool=body.pool, exact=body.exact),
    )
    state.metrics.search_seconds.observe(time.perf_counter() - start)
    state.metrics.search_queries.inc(len(items))
    data = [{"index": i, "hits": [h.to_json() for h in row]} for i, row in enumerate(hits)]
    payload = {
        "object": "list",
        "data": data,
        "model": state.model_name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")


def _queries(raw: Any, instruction: str | None, max_items: int) -> list[ServedItem]:
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list):
        raise ServerError(
            ErrorKind.VALIDATION,
            f"`queries` must be a string or a list of strings, got {json_type(raw)}",
            param="queries",
        )
    if not values:
        raise ServerError(
            ErrorKind.EMPTY_INPUT, "`queries` is an empty list; send at least one", param="queries"
        )
    if len(values) > max_items:
        raise ServerError(
            ErrorKind.VALIDATION,
            f"`queries` has {len(values)} items; the limit is {max_items} per request, split it",
            param="queries",
        )
    items = []
    for i, value in enumerate(values):
        param = "queries" if isinstance(raw, str) else f"queries[{i}]"
        if not isinstance(value, str):
            raise ServerError(
                ErrorKind.VALIDATION, f"`{param}` must be a string, got {json_type(value)}", param=param
            )
        if not value.strip():
            raise ServerError(
                ErrorKind.EMPTY_INPUT, f"`{param}` is empty; every query needs text", param=param
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ServerError(
                ErrorKind.VALIDATION,
                f"`{param}` contains an unpaired UTF-16 surrogate; send valid Unicode",
                param=param,
            ) from None
        items.append(ServedItem(instruction, value))
    return items
