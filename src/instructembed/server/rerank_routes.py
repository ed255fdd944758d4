"""Reranking and tokenizing: TEI's `POST /rerank` and `POST /tokenize`, Cohere's `POST /v1/rerank`.

Both rerank shapes share one implementation (`rank`): the query and the texts go through the same
queue as `/v1/embeddings` in one job (the query under the query instruction, each text under the
document instruction), and each text is scored by its cosine with the query. Same limits, auth and
error table as the embedding routes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from instructembed.server.errors import ErrorKind, ServerError
from instructembed.server.routes import _ERRORS, _body, _json, _read_json, get_state, pick_model
from instructembed.server.schemas import (
    CohereRerankRequest,
    RankedText,
    RerankRequest,
    ServedItem,
    TokenizeRequest,
    TokenOut,
    json_type,
    parse_items,
    validate_model,
)
from instructembed.server.service import ServerState
from instructembed.server.settings import OverlongPolicy

rerank_router = APIRouter(tags=["rerank"])


@dataclass(frozen=True)
class Ranked:
    """Cosines of each text with the query, in input order, and the tokens embedded."""

    cosines: np.ndarray  # (N,) float32
    tokens: int


def cosine_to_query(query: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Cosine of each row of `texts` (N, D) with `query` (D,): (N,) float32; zero rows score 0."""
    q = query / max(float(np.linalg.norm(query)), 1e-12)
    norms = np.maximum(np.linalg.norm(texts, axis=1), np.float32(1e-12))  # (N,)
    return ((texts @ q) / norms).astype(np.float32)


def _query_item(query: object) -> str:
    if not isinstance(query, str):
        raise ServerError(
            ErrorKind.VALIDATION, f"`query` must be a string, got {json_type(query)}", param="query"
        )
    return query


def _instruction(given: str | None, default: str) -> str | None:
    chosen = default if given is None else given
    return chosen or None


async def rank(
    state: ServerState,
    request: Request,
    query: object,
    texts: list[str],
    *,
    field: str,
    query_instruction: str | None,
    document_instruction: str | None,
    overlong: OverlongPolicy | None,
) -> Ranked:
    """Embed the query and `texts` (already checked to be strings) in one job; score by cosine."""
    settings = state.settings
    q_instruction = _instruction(query_instruction, settings.rerank_query_instruction)
    d_instruction = _instruction(document_instruction, settings.rerank_document_instruction)
    [query_served] = parse_items(
        _query_item(query), field="query", instruction=q_instruction, max_items=1, allow_pair_lists=False
    )
    documents = parse_items(
        texts,
        field=field,
        instruction=d_instruction,
        max_items=max(1, settings.max_items_per_request - 1),
        allow_pair_lists=False,
    )
    items: list[ServedItem] = [query_served, *documents]
    vectors, tokens = await state.embed(
        request, items, overlong=overlong, param_of=lambda i: "query" if i == 0 else f"{field}[{i - 1}]"
    )
    return Ranked(cosine_to_query(vectors[0], vectors[1:]), tokens)


def _strings(raw: object, field: str, *, objects: bool) -> list[str]:
    """`raw` as a list of strings (Cohere's `{"text": ...}` objects too, when `objects`)."""
    if not isinstance(raw, list):
        raise ServerError(
            ErrorKind.VALIDATION, f"`{field}` must be a list of strings, got {json_type(raw)}", param=field
        )
    out: list[str] = []
    for i, value in enumerate(raw):
        if objects and isinstance(value, dict) and set(value) == {"text"}:
            value = value["text"]
        if not isinstance(value, str):
            shape = 'a string or a {"text": ...} object' if objects else "a string"
            raise ServerError(
                ErrorKind.VALIDATION,
                f"`{field}[{i}]` must be {shape}, got {json_type(value)}",
                param=f"{field}[{i}]",
            )
        out.append(value)
    return out


def _overlong(truncate: bool | None) -> OverlongPolicy | None:
    if truncate is None:
        return None
    return OverlongPolicy.TRUNCATE if truncate else OverlongPolicy.REJECT


@rerank_router.post(
    "/rerank", response_model=list[RankedText], responses=_ERRORS, openapi_extra=_body(RerankRequest)
)
async def rerank(request: Request) -> Response:
    """TEI's rerank: `[{"index", "score", "text"?}]`, best first."""
    body = validate_model(RerankRequest, await _read_json(request, get_state(request)))
    state = pick_model(request, body.model)
    texts = _strings(body.texts, "texts", objects=False)
    ranked = await rank(
        state,
        request,
        body.query,
        texts,
        field="texts",
        query_instruction=body.query_instruction,
        document_instruction=body.document_instruction,
        overlong=_overlong(body.truncate),
    )
    scores = ranked.cosines if body.raw_scores else (1 + ranked.cosines) / 2
    order = np.argsort(-scores, kind="stable")
    out: list[dict[str, Any]] = []
    for i in order.tolist():
        entry: dict[str, Any] = {"index": i, "score": float(scores[i])}
        if body.return_text:
            entry["text"] = texts[i]
        out.append(entry)
    return _json(out)


@rerank_router.post("/v1/rerank", responses=_ERRORS, openapi_extra=_body(CohereRerankRequest))
async def cohere_rerank(request: Request) -> Response:
    """Cohere's rerank: `{"id", "results": [{"index", "relevance_score", "document"?}], "meta"}`."""
    body = validate_model(CohereRerankRequest, await _read_json(request, get_state(request)))
    state = pick_model(request, body.model)
    documents = _strings(body.documents, "documents", objects=True)
    ranked = await rank(
        state,
        request,
        body.query,
        documents,
        field="documents",
        query_instruction=body.query_instruction,
        document_instruction=body.document_instruction,
        overlong=None,
    )
    relevance = (1 + ranked.cosines) / 2  # in [0, 1], as Cohere's relevance_score
    order = np.argsort(-relevance, kind="stable")[: body.top_n]
    results: list[dict[str, Any]] = []
    for i in order.tolist():
        entry: dict[str, Any] = {"index": i, "relevance_score": float(relevance[i])}
        if body.return_documents:
            entry["document"] = {"text": documents[i]}
        results.append(entry)
    return _json(
        {
            "id": str(uuid.uuid4()),
            "results": results,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
        }
    )


@rerank_router.post(
    "/tokenize", response_model=list[list[TokenOut]], responses=_ERRORS, openapi_extra=_body(TokenizeRequest)
)
async def tokenize(request: Request) -> Response:
    """TEI's tokenize: one list of `{"id", "text", "special", "start", "stop"}` per input."""
    body = validate_model(TokenizeRequest, await _read_json(request, get_state(request)))
    state = pick_model(request, body.model)
    items = parse_items(
        body.inputs,
        field="inputs",
        instruction=body.instruction,
        max_items=state.settings.max_items_per_request,
        allow_pair_lists=False,
    )
    rows = await state.runner.token_details(
        [item.to_embed_input() for item in items],
        add_special_tokens=body.add_special_tokens,
        truncate=body.truncate,
    )
    return _json(
        [
            [
                {"id": t.id, "text": t.text, "special": t.special, "start": t.start, "stop": t.stop}
                for t in row
            ]
            for row in rows
        ]
    )
