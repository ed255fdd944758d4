"""`create_app`: the FastAPI app factory. The model is loaded in the lifespan, so tests can build an
app around a fake embedder, and importing this module never loads a model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
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
    embedder: EmbedderSource, settings: ServerSettings | None = None, *, index: str | Path | Any = None
) -> FastAPI:
    """Build the app around a loaded embedder, or a zero-argument function that loads one.

    A loader runs in a thread during startup (uvicorn answers nothing until it returns); the queue
    drains on shutdown. `index` (a directory, or an opened `instructembed.index.Index`) adds
    POST /v1/search; it is opened with the loaded embedder, which must match its fingerprint.
    """
    settings = settings or ServerSettings()
    metrics = ServerMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if hasattr(embedder, "embed_tokenized"):
            loaded: EmbedderLike = embedder  # type: ignore[assignment]
        else:
            loaded = await asyncio.to_thread(embedder)  # type: ignore[operator]
        served = await asyncio.to_thread(_open_index, index, loaded) if index is not None else None
        state = ServerState(loaded, settings, metrics, served)
        state.batcher.start()
        app.state.server = state
        logger.info(
            "serving %s (dimension %d, max %d tokens) on the embedding routes",
            state.model_name,
            loaded.dimension,
            loaded.max_seq_length,
        )
        if settings.playground:
            logger.info("playground page at /playground/ (turn it off with --no-playground)")
        try:
            yield
        finally:
            logger.info("shutting down: draining %d queued inputs", state.batcher.pending_items)
            await state.close()
            app.state.server = None

    app = FastAPI(
        title="instructembed",
        summary="Instruction-conditioned text embeddings behind the OpenAI embeddings API",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.server = None
    install_handlers(app)
    app.include_router(embeddings_router)
    app.include_router(rerank_router)
    app.include_router(search_router)
    app.include_router(ops_router)
    if settings.playground:
        app.include_router(playground_router)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


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
