"""Prometheus metrics for one app, in its own `CollectorRegistry` (several apps may share a process).

Requests are counted by an ASGI middleware keyed on the route *template* (never the raw path, so a
scanner cannot blow up the label set).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ITEM_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class ServerMetrics:
    """All the server's metrics; `registry` is what GET /metrics renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "instructembed_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "instructembed_request_seconds",
            "Request latency by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_items = Gauge("instructembed_queue_items", "Inputs waiting in the batch queue", registry=r)
        self.batch_items = Histogram(
            "instructembed_batch_items",
            "Inputs per batch run by the model",
            buckets=_ITEM_BUCKETS,
            registry=r,
        )
        self.batch_tokens = Histogram(
            "instructembed_batch_tokens",
            "Tokens per batch run by the model",
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "instructembed_batch_seconds", "Model time per batch", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.embedded_items = Counter("instructembed_embedded_items", "Inputs embedded", registry=r)
        self.prompt_tokens = Counter(
            "instructembed_prompt_tokens", "Tokens embedded (after truncation)", registry=r
        )
        self.model_calls = Counter(
            "instructembed_model_calls",
            "Model calls (length-homogeneous micro-batches of a batch)",
            registry=r,
        )
        self.padded_tokens = Counter(
            "instructembed_padded_tokens",
            "Tokens of the micro-batches, each padded to its longest row (prompt_tokens / padded_tokens: "
            "padding efficiency; the embedder may split a micro-batch further and pad less)",
            registry=r,
        )
        self.search_queries = Counter(
            "instructembed_search_queries", "Queries searched in the index", registry=r
        )
        self.search_seconds = Histogram(
            "instructembed_search_seconds",
            "Index search time per request (after embedding the queries)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.dropped_items = Counter(
            "instructembed_dropped_items", "Queued inputs dropped because their client went away", registry=r
        )


class MetricsMiddleware:
    """Count every HTTP request by route template and final status, and time it."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app raises before starting a response

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(route=label, status=str(status)).inc()
            self.metrics.latency.labels(route=label).observe(time.perf_counter() - start)
