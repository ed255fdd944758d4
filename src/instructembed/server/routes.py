"""The HTTP routes: OpenAI's `/v1/embeddings`, the compact `/embed`, and health / info / metrics."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from instructembed.server.errors import ErrorKind, ServerError
from instructembed.server.schemas import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    ErrorResponse,
    parse_items,
    parse_json,
    request_instruction,
    validate_model,
)
from instructembed.server.service import ServerState, read_body
from instructembed.server.settings import ServerSettings
from instructembed.server.vectors import l2_normalize, to_base64
from instructembed.vectors_out import Precision, quantize, truncate

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 429, 503)
}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """Document a request body that the route reads itself (to enforce the size limit while reading)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


embeddings_router = APIRouter(tags=["embeddings"])
ops_router = APIRouter(tags=["operations"])


def get_state(request: Request) -> ServerState:
    state: ServerState | None = getattr(request.app.state, "server", None)
    if state is None:
        raise ServerError(ErrorKind.UNAVAILABLE, "the model is not loaded yet; retry in a few seconds")
    return state


def pick_model(request: Request, name: str | None) -> ServerState:
    """The model a request's `model` names. One model served: any name is accepted and the served
    name echoed (OpenAI clients send names of their own). Several: None is the first; a name not
    served is 404."""
    models: dict[str, ServerState] = getattr(request.app.state, "models", {}) or {}
    if len(models) <= 1 or name is None:
        return get_state(request)
    if name not in models:
        raise ServerError(
            ErrorKind.NOT_FOUND,
            f"the model {name!r} is not served here; GET /v1/models lists {', '.join(models)}",
            param="model",
        )
    return models[name]


def _json(payload: object) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")


async def _read_json(request: Request, state: ServerState) -> dict[str, Any]:
    state.authorize(request)  # before reading a byte of the body
    return parse_json(await read_body(request, state.settings.max_body_bytes))


@embeddings_router.post(
    "/v1/embeddings",
    response_model=EmbeddingsResponse,
    responses=_ERRORS,
    openapi_extra=_body(EmbeddingsRequest),
)
async def create_embeddings(request: Request) -> Response:
    """OpenAI-compatible embeddings, with an optional `instruction` and `{instruction, text}` items."""
    body = validate_model(EmbeddingsRequest, await _read_json(request, get_state(request)))
    state = pick_model(request, body.model)
    dimension = state.embedder.dimension
    if body.dimensions is not None and body.dimensions > dimension:
        raise ServerError(
            ErrorKind.VALIDATION,
            f"`dimensions` is {body.dimensions}; this model's embeddings have {dimension}, ask for at most that",
            param="dimensions",
        )
    items = parse_items(
        body.input,
        field="input",
        instruction=request_instruction(state.prompts, body.instruction, body.prompt_name, body.input_type),
        max_items=state.settings.max_items_per_request,
        allow_pair_lists=False,
    )
    vectors, tokens = await state.embed(request, items)  # (N, D)
    if body.dimensions is not None and body.dimensions < dimension:
        vectors = truncate(vectors, body.dimensions, renormalize=state.embedder.normalized)  # (N, d)
    precision = Precision(body.embedding_dtype)
    if precision is not Precision.FLOAT32:
        ranges = await state.quantization_ranges(vectors.shape[1]) if precision.needs_ranges else None
        vectors = quantize(vectors, precision, ranges)  # (N, d) int8/uint8, or (N, ceil(d/8)) packed
    rows: list[Any] = (
        [to_base64(row) for row in vectors] if body.encoding_format == "base64" else vectors.tolist()
    )
    return _json(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)],
            "model": state.model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


@embeddings_router.post(
    "/embed", response_model=list[list[float]], responses=_ERRORS, openapi_extra=_body(EmbedRequest)
)
async def embed(request: Request) -> Response:
    """Compact form: `{"inputs": [...], "instruction": ..., "normalize": true}` -> `[[...], ...]`."""
    body = validate_model(EmbedRequest, await _read_json(request, get_state(request)))
    state = pick_model(request, body.model)
    if not body.normalize and state.embedder.normalized:
        raise ServerError(
            ErrorKind.VALIDATION,
            f"`normalize` is false but {state.model_name} always returns unit-length embeddings; "
            "drop the field or set it to true",
            param="normalize",
        )
    items = parse_items(
        body.inputs,
        field="inputs",
        instruction=request_instruction(state.prompts, body.instruction, body.prompt_name, body.input_type),
        max_items=state.settings.max_items_per_request,
        allow_pair_lists=True,
    )
    vectors, _ = await state.embed(request, items)
    if body.normalize and not state.embedder.normalized:
        vectors = l2_normalize(vectors)
    return _json(np.asarray(vectors, dtype=np.float32).tolist())


@embeddings_router.get("/v1/models")
async def list_models(request: Request) -> Response:
    """OpenAI's model list (some clients call it first): every model this server serves."""
    state = get_state(request)
    state.authorize(request)
    models = [
        {"id": name, "object": "model", "created": 0, "owned_by": "instructembed"}
        for name in _models(request)
    ]
    return _json({"object": "list", "data": models})


def _models(request: Request) -> dict[str, ServerState]:
    models: dict[str, ServerState] = getattr(request.app.state, "models", {}) or {}
    if not models:
        state = get_state(request)
        return {state.model_name: state}
    return models


@ops_router.get("/health")
async def health(request: Request) -> Response:
    """200 once the model is loaded and the queue is accepting work, 503 before."""
    get_state(request)
    return _json({"status": "ok"})


@ops_router.get("/info")
async def info(request: Request) -> Response:
    """The default model and the limits this server runs with (the API key is never shown); with
    several models, `models` describes each (its memory and queue included)."""
    state = get_state(request)
    settings = state.settings
    models = _models(request)
    return _json(
        {
            **_model_info(state),
            "auth": settings.api_key is not None,
            "limits": {
                "max_body_bytes": settings.max_body_bytes,
                "max_items_per_request": settings.max_items_per_request,
                "max_queue_items": settings.max_queue_items,
                "batch_tokens": settings.batch_tokens,
                "max_wait_ms": settings.max_wait_ms,
                "microbatch_overhead_tokens": settings.microbatch_overhead_tokens,
                "overlong": settings.overlong.value,
                "max_search_k": settings.max_search_k,
            },
            "index": _index_info(state),
            "models": [_model_info(s) for s in models.values()],
            "process_rss_bytes": _rss_bytes(),
        }
    )


def _model_info(state: ServerState) -> dict[str, Any]:
    embedder = state.embedder
    runner = getattr(embedder, "backend", "torch")  # Embedder holds a Backend object with a name
    backend = getattr(runner, "name", runner)
    return {
        "model": state.model_name,
        "dimension": embedder.dimension,
        "max_seq_length": embedder.max_seq_length,
        "normalized": embedder.normalized,
        "prompts": state.prompts,
        "default_prompt_name": getattr(getattr(embedder, "spec", None), "default_prompt_name", None),
        "matryoshka": _matryoshka(embedder),
        "embedding_dtypes": [p.value for p in Precision],
        "backend": str(getattr(backend, "value", backend)),
        "precision": getattr(runner, "precision", None),
        "weights_bytes": _weights_bytes(embedder),
        "queue_items": state.batcher.pending_items,
        "limits": _queue_limits(state.settings),
        "call_cost": _call_cost(state),
    }


def _call_cost(state: ServerState) -> dict[str, Any]:
    """What one model call costs, as fitted to this model's calls, and the overhead batches use."""
    cost = state.runner.call_cost
    fit = cost.fit()
    fixed = state.settings.microbatch_overhead_tokens
    return {
        "fixed_ms": None if fit is None else round(fit.fixed_s * 1000, 3),
        "per_token_us": None if fit is None else round(fit.per_token_s * 1e6, 3),
        "overhead_tokens": cost.overhead_tokens() if fixed is None else fixed,
        "learnt": fixed is None,
    }


def _queue_limits(settings: ServerSettings) -> dict[str, Any]:
    """The limits one model's queue and routes run with (per model with `serve --models-file`)."""
    return {
        "max_items_per_request": settings.max_items_per_request,
        "max_queue_items": settings.max_queue_items,
        "batch_tokens": settings.batch_tokens,
        "max_wait_ms": settings.max_wait_ms,
        "microbatch_overhead_tokens": settings.microbatch_overhead_tokens,
        "overlong": settings.overlong.value,
    }


def _weights_bytes(embedder: Any) -> int | None:
    """Bytes of the model's weights in memory (torch: its parameters and buffers; None: unknown)."""
    module = getattr(embedder, "model", None)
    if module is None or not hasattr(module, "parameters"):
        return None
    tensors = [*module.parameters(), *module.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


def _rss_bytes() -> int | None:
    """The server process's resident memory (Linux), all models together."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _matryoshka(embedder: Any) -> bool | None:
    """Whether the model declares Matryoshka training (None: this embedder cannot say)."""
    describe = getattr(embedder, "info", None)
    return describe().get("matryoshka") if callable(describe) else None


def _index_info(state: ServerState) -> dict[str, Any] | None:
    if state.index is None:
        return None
    info = state.index.info()
    keys = ("path", "documents", "chunks", "dimension", "search")
    fp = info["fingerprint"]
    return {
        **{k: info[k] for k in keys},
        "doc_instruction": fp["doc_instruction"],
        "query_instruction": fp["query_instruction"],
    }


@ops_router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
