"""Server configuration: one frozen dataclass built once at the edge (CLI or tests) and passed down.

The library reads no environment variables itself; `instructembed serve` maps each
`INSTRUCTEMBED_*` variable onto a field here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class OverlongPolicy(str, Enum):
    """What to do with an input longer than the model's `max_seq_length` (in tokens)."""

    TRUNCATE = "truncate"  # embed the first max_seq_length tokens (what `Embedder.embed` does)
    REJECT = "reject"  # answer 422 naming the item and its token count


#: `microbatch_overhead_tokens` so high that no split ever pays: one model call per batch.
ONE_CALL_PER_BATCH = 1_000_000_000


def parse_microbatch_overhead(value: str | int | None) -> int | None:
    """`--microbatch-overhead-tokens` as given: "off" (one call per batch), "auto" (learnt), or N >= 0."""
    if value is None or isinstance(value, int):
        return value
    text = value.strip().lower()
    if text == "off":
        return ONE_CALL_PER_BATCH
    if text == "auto":
        return None
    if text.isdigit():
        return int(text)
    raise ValueError(
        f"microbatch overhead must be 'off' (one call per batch), 'auto' (learnt from the model's call "
        f"times) or a number of padded tokens >= 0, got {value!r}"
    )


@dataclass(frozen=True)
class ServerSettings:
    """Limits and networking for one server. Defaults are safe for a laptop on loopback."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: Bearer token required on the embedding, rerank, tokenize and model routes; None = no authentication.
    #: /health, /info and /metrics stay open for probes and scrapers (they reveal no secret).
    api_key: str | None = None
    #: Largest request body accepted, in bytes (413 above it, checked while reading).
    max_body_bytes: int = 4 * 1024 * 1024
    #: Most inputs in one request (422 above it). OpenAI's own limit is 2048.
    max_items_per_request: int = 2048
    #: Most inputs waiting in the queue across all requests; a request that does not fit gets 429 at once.
    max_queue_items: int = 16384
    #: Token budget of one batch formed across requests (sum of per-item tokens after truncation).
    batch_tokens: int = 16384
    #: How long the worker waits for more requests to fill a batch that is not yet full. Costs up to
    #: this much latency at low load; on CPU, where a batch takes 100s of ms, 20-50 ms merges the
    #: requests of many clients into fuller (more efficient) batches (see docs/server.md).
    max_wait_ms: float = 10.0
    #: What one more model call costs, in padded tokens. A batch taken from the queue is run as
    #: length-homogeneous micro-batches wherever that saves more padding than the extra calls cost
    #: (`batching.split_by_padding`): a batch of mixed lengths padded to its longest row wastes up to
    #: half its tokens (docs/server.md). None: learnt from the model's own call times
    #: (`server/call_cost.py`), since it ranges from tens of tokens (quiet CPU) to thousands (GPU,
    #: oversubscribed CPU). Default: learnt. Measured at 16 clients on a quiet 2-core CPU
    #: (docs/server.md): 95-100 % of in-process throughput learnt vs 58-66 % with one call per batch
    #: (`ONE_CALL_PER_BATCH`, what "off" gives).
    microbatch_overhead_tokens: int | None = None
    overlong: OverlongPolicy = OverlongPolicy.TRUNCATE
    #: Name reported in responses and /info; None = the embedder's own `name`.
    served_model_name: str | None = None
    #: Seconds the shutdown waits for queued work to finish before dropping it.
    drain_timeout_s: float = 30.0
    #: Largest `k` one POST /v1/search may ask for (422 above it); only with an index (`--index`).
    max_search_k: int = 1000
    #: Serve the playground page at /playground/ (static files shipped in the package).
    playground: bool = True
    #: Instructions /rerank and /v1/rerank embed the query and the texts with ("" for none); a request's
    #: `query_instruction` / `document_instruction` override them.
    rerank_query_instruction: str = "Represent the question for retrieving supporting documents: "
    rerank_document_instruction: str = "Represent the document for retrieval: "

    def __post_init__(self) -> None:
        positive = {
            "max_body_bytes": self.max_body_bytes,
            "max_items_per_request": self.max_items_per_request,
            "max_queue_items": self.max_queue_items,
            "batch_tokens": self.batch_tokens,
            "max_search_k": self.max_search_k,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ServerSettings.{name} must be a positive integer, got {value!r}")
        if self.max_items_per_request > self.max_queue_items:
            raise ValueError(
                f"ServerSettings.max_items_per_request ({self.max_items_per_request}) is larger than "
                f"max_queue_items ({self.max_queue_items}); such a request could never be queued. "
                "Raise max_queue_items or lower max_items_per_request."
            )
        overhead = self.microbatch_overhead_tokens
        if overhead is not None and (
            not isinstance(overhead, int) or isinstance(overhead, bool) or overhead < 0
        ):
            raise ValueError(
                f"ServerSettings.microbatch_overhead_tokens must be an integer >= 0 or None (learnt), got {overhead!r}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"ServerSettings.port must be in 0..65535, got {self.port}")
        if not self.max_wait_ms >= 0 or self.max_wait_ms > 60_000:
            raise ValueError(f"ServerSettings.max_wait_ms must be in [0, 60000], got {self.max_wait_ms!r}")
        if not self.drain_timeout_s >= 0:
            raise ValueError(f"ServerSettings.drain_timeout_s must be >= 0, got {self.drain_timeout_s!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("ServerSettings.api_key is empty; pass None to turn authentication off")
        if not isinstance(self.overlong, OverlongPolicy):
            raise ValueError(
                f"ServerSettings.overlong must be one of {[p.value for p in OverlongPolicy]}, "
                f"got {self.overlong!r}"
            )
