"""What the routes share once the model is loaded: settings, the batcher, auth, body reading."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from fastapi import Request
from starlette.requests import ClientDisconnect

from instructembed.server.batcher import Batcher, EmbedderLike, ModelRunner
from instructembed.server.errors import ErrorKind, ServerError
from instructembed.server.metrics import ServerMetrics
from instructembed.server.schemas import ServedItem
from instructembed.server.settings import OverlongPolicy, ServerSettings
from instructembed.vectors_out import QuantizationRanges, calibration_inputs, ranges_from_embeddings, truncate

logger = logging.getLogger(__name__)


class ServerState:
    """The loaded model and its queue; one per app, built in the lifespan."""

    def __init__(
        self,
        embedder: EmbedderLike,
        settings: ServerSettings,
        metrics: ServerMetrics,
        index: Any = None,
        *,
        name: str | None = None,
    ) -> None:
        self.embedder = embedder
        self.settings = settings
        self.metrics = metrics
        self.runner = ModelRunner(embedder)
        self.batcher = Batcher(self.runner, settings, metrics)
        #: `name` (several models: the name each is served as), else --served-model-name or the model's
        self.model_name = name or settings.served_model_name or embedder.name
        #: The model's declared prompts (name -> instruction), for `prompt_name` / `input_type`.
        spec = getattr(embedder, "spec", None)  # a fake embedder in tests may have none
        self.prompts: dict[str, str] = dict(getattr(spec, "prompts", None) or {})
        #: The `instructembed.index.Index` behind POST /v1/search, or None; searched in one thread.
        self.index = index
        self.search_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="instructembed-search")
        self._calibration: np.ndarray | None = None  # the packaged calibration set, embedded on first use
        self._ranges: dict[int, QuantizationRanges] = {}

    async def close(self) -> None:
        await self.batcher.close()
        await asyncio.to_thread(self.runner.close)
        self.search_executor.shutdown(wait=True)
        if self.index is not None:
            self.index.close()

    async def quantization_ranges(self, dimensions: int) -> QuantizationRanges:
        """int8/uint8 ranges for vectors of `dimensions` coordinates: the packaged calibration set
        embedded once (in the model thread, between batches), then truncated as the request's vectors are."""
        if dimensions not in self._ranges:
            if self._calibration is None:
                rows = await self.runner.tokenize(list(calibration_inputs()))
                self._calibration = await self.runner.embed(rows)  # (M, D)
            vectors = self._calibration
            if dimensions < vectors.shape[1]:
                vectors = truncate(vectors, dimensions, renormalize=self.embedder.normalized)
            self._ranges[dimensions] = ranges_from_embeddings(vectors)
        return self._ranges[dimensions]

    async def embed(
        self,
        request: Request,
        items: list[ServedItem],
        *,
        overlong: OverlongPolicy | None = None,
        param_of: Callable[[int], str] = lambda i: f"input[{i}]",
    ) -> tuple[np.ndarray, int]:
        """Embed one request's items through the shared queue: (vectors (N, D), prompt tokens).

        `overlong` overrides the server's policy for this request; `param_of` names item i in refusals.
        Watches the connection from the start, so a client that leaves while its items are being
        tokenized never reaches the queue, and one that leaves while queued is dropped from it.
        """
        self.batcher.check_room(len(items))  # a full queue answers 429 before any tokenizing
        gone: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(request))
        try:
            rows, costs = await self._tokenize(items, overlong or self.settings.overlong, param_of)
            if gone.done():
                self.metrics.dropped_items.inc(len(items))
                raise ServerError(ErrorKind.CLIENT_GONE, "the client closed the connection")
            job = self.batcher.submit(rows, costs)
            waiting: set[asyncio.Future[Any]] = {job.future, gone}
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                self.batcher.drop(job)
                raise
            if not job.future.done():
                self.batcher.drop(job)
                logger.info("client went away; dropped its %d queued inputs", len(job.items))
                raise ServerError(ErrorKind.CLIENT_GONE, "the client closed the connection")
            return job.future.result(), sum(costs)
        finally:
            gone.cancel()

    async def _tokenize(
        self, items: list[ServedItem], overlong: OverlongPolicy, param_of: Callable[[int], str]
    ) -> tuple[list[Any], list[int]]:
        """Tokenized rows and tokens per item after truncation (tokenized once: the model thread
        embeds these rows); refuses over-long items when the policy says so."""
        limit = self.embedder.max_seq_length
        rows = await self.runner.tokenize([item.to_embed_input() for item in items])
        if len(rows) != len(items):
            raise RuntimeError(f"tokenize returned {len(rows)} rows for {len(items)} inputs")
        counts = [row.n_tokens for row in rows]
        if overlong is OverlongPolicy.REJECT:
            for index, count in enumerate(counts):
                if count > limit:
                    raise ServerError(
                        ErrorKind.VALIDATION,
                        f"{param_of(index)} has {count} tokens; this model takes at most {limit} "
                        "(over-long inputs are refused instead of truncated here): shorten it",
                        param=param_of(index),
                    )
        return rows, [min(count, limit) for count in counts]

    def authorize(self, request: Request) -> None:
        key = self.settings.api_key
        if key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise ServerError(
                ErrorKind.UNAUTHORIZED, "missing API key; send the header `Authorization: Bearer <key>`"
            )
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise ServerError(ErrorKind.UNAUTHORIZED, "invalid API key")


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects (call only after the body was read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes.

    Content-Length is checked before reading anything; a chunked body is counted while it streams,
    so a huge body never sits in memory.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServerError(
            ErrorKind.PAYLOAD_TOO_LARGE,
            f"the request body is {int(declared)} bytes; the limit is {limit}, split the request",
        )
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ServerError(
                    ErrorKind.PAYLOAD_TOO_LARGE,
                    f"the request body is over the limit of {limit} bytes; split the request",
                )
            chunks.append(chunk)
    except ClientDisconnect:
        raise ServerError(ErrorKind.CLIENT_GONE, "the client closed the connection") from None
    return b"".join(chunks)
