"""`create_app`: the FastAPI app factory. The model is loaded in the lifespan, so tests can build an
app around a fake embedder, and importing this module never loads a model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from instructembed.server.batcher import EmbedderLike
from instructembed.server.errors import install_handlers
from instructembed.server.metrics import MetricsMiddleware, ServerMetrics
from instructembed.server.playground_routes import playground_router
from instructembed.server.rerank_routes import rerank_router
from instructembed.server.routes import embeddings_router, ops_router
from instructembed.server.search_routes import search_router
from instructembed.server.service import ServerState
from instructembed.server.settings import ServerSettings

logger = logging.getLogger(__name__)

EmbedderSource = EmbedderLike | Callable[[], EmbedderLike]


def create_app(
    embedder: EmbedderSource | Mapping[str, EmbedderSource],
    settings: ServerSettings | None = None,
    *,
    index: str | Path | Any = None,
    model_settings: Mapping[str, ServerSettings] | None = None,
) -> FastAPI:
    """Build the app around a loaded embedder, or a zero-argument function that loads one; or around
    several, as a mapping of served name -> embedder or loader (the first is the default model).

    A loader runs in a thread during startup (uvicorn answers nothing until it returns); the queues
    drain on shutdown. Each model has its own queue, model thread and tokenizer thread under the same
    limits; a request's `model` picks one (unknown: 404). `index` (a directory, or an opened
    `instructembed.index.Index`) adds POST /v1/search over the default model; it is opened with that
    embedder, which must match its fingerprint. `model_settings` gives a served name its own
    settings (its queue's limits, from `serve --models-file`); the others use `settings`, and the
    server-wide fields (network, API key, body limit, playground) are always `settings`'.
    """
    settings = settings or ServerSettings()
    model_settings = dict(model_settings or {})
    metrics = ServerMetrics()
    sources: dict[str | None, EmbedderSource] = (
        dict(embedder.items()) if isinstance(embedder, Mapping) else {None: embedder}
    )
    if not sources:
        raise ValueError("create_app needs at least one embedder")
    strays = sorted(set(model_settings) - {name for name in sources if name is not None})
    if strays:
        raise ValueError(f"model_settings names models that are not served: {', '.join(strays)}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        states: dict[str, ServerState] = {}
        try:
            for position, (name, source) in enumerate(sources.items()):
                loaded = await asyncio.to_thread(_load, source)
                served = None
                if position == 0 and index is not None:
                    served = await asyncio.to_thread(_open_index, index, loaded)
                own = model_settings.get(name, settings) if name is not None else settings
                state = ServerState(loaded, own, metrics, served, name=name)
                if state.model_name in states:
                    raise ValueError(f"two models are served as {state.model_name!r}; give each its own name")
                state.batcher.start()
                states[state.model_name] = state
                logger.info(
                    "serving %s (dimension %d, max %d tokens) on the embedding routes",
                    state.model_name,
                    loaded.dimension,
                    loaded.max_seq_length,
                )
            app.state.models = states
            app.state.server = next(iter(states.values()))
            if settings.playground:
                logger.info("playground page at /playground/ (turn it off with --no-playground)")
            yield
        finally:
            app.state.server = None
            app.state.models = {}
            for state in states.values():
                logger.info(
                    "shutting down %s: draining %d queued inputs",
                    state.model_name,
                    state.batcher.pending_items,
                )
                await state.close()

    app = FastAPI(
        title="instructembed",
        summary="Instruction-conditioned text embeddings behind the OpenAI embeddings API",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.server = None
    app.state.models = {}
    install_handlers(app)
    app.include_router(embeddings_router)
    app.include_router(rerank_router)
    app.include_router(search_router)
    app.include_router(ops_router)
    if settings.playground:
        app.include_router(playground_router)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _load(source: EmbedderSource) -> EmbedderLike:
    if hasattr(source, "embed_tokenized"):
        return source  # type: ignore[return-value]
    return source()  # type: ignore[operator,no-any-return]


def _open_index(index: str | Path | Any, embedder: EmbedderLike) -> Any:
    """An opened index checked against the served model (its fingerprint must match)."""
    if hasattr(index, "search_vectors"):
        return index
    from instructembed.index.core import Index

    try:
        opened = Index.open(index, embedder=embedder)
    except Exception as exc:
        logger.error("cannot serve the index %s: %s", index, exc)
        raise
    logger.info("serving index %s (%d documents) on POST /v1/search", index, len(opened))
    return opened
