"""Dynamic batching across requests: one bounded queue, one worker, the model off the event loop.

A request becomes a `Job` (its tokenized items and their token costs). The worker takes items from the front
of the queue (across jobs) until the batch's token budget is spent, runs `embed` once on them in
the model thread, and copies each row back into its job; a job's future resolves when all its rows
are in. Tokenizing (which also counts tokens, for limits and the budget) runs in a thread of its own,
beside the model, once per item: the model thread embeds the tokenized rows.

A batch is run as length-homogeneous micro-batches (`batching.split_by_padding`, cut where the padding
saved is worth more than one more call costs, `microbatch_overhead_tokens` or, by default, what the
runner has learnt from its own call times): a few clients' requests make batches of mixed lengths,
and padding them all to the longest row wasted ~45 % of the model's work at 16 clients (docs/server.md).

Limits: `submit` refuses at once (429) when the queue cannot take the whole request; a job whose
client went away is dropped (its unscheduled items never run); `close` drains what is queued.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from instructembed.batching import padded_tokens, split_by_padding
from instructembed.server.call_cost import CallCost
from instructembed.server.errors import ErrorKind, ServerError
from instructembed.server.metrics import ServerMetrics
from instructembed.server.settings import ServerSettings

logger = logging.getLogger(__name__)

EmbedInput = str | tuple[str, str]
T = TypeVar("T")


class TokenizedRow(Protocol):
    """One input after `EmbedderLike.tokenize`; the server reads only its length."""

    @property
    def n_tokens(self) -> int:
        """Tokens before truncation, special tokens included."""
        ...


class EmbedderLike(Protocol):
    """What the server needs from `instructembed.Embedder` (a fake stands in for tests)."""

    dimension: int
    max_seq_length: int
    name: str
    normalized: bool

    def tokenize(
        self, inputs: Sequence[EmbedInput], *, instruction: str | None = None
    ) -> Sequence[TokenizedRow]: ...

    def embed_tokenized(self, encoded: Sequence[Any]) -> np.ndarray: ...


class ModelRunner:
    """Runs embedder calls off the event loop: `embed_tokenized` in one model thread, `tokenize` in
    another.

    One thread each, so neither method ever runs concurrently with itself; tokenizing runs while the
    model works, so new requests are counted and queued (or refused) without waiting for a batch.
    This needs `tokenize` to be safe alongside `embed_tokenized`, which `Embedder` guarantees:
    `embed_tokenized` does not touch the tokenizer.
    """

    def __init__(self, embedder: EmbedderLike) -> None:
        self.embedder = embedder
        #: seconds per call vs padded tokens, fitted to this runner's calls (what a call costs)
        self.call_cost = CallCost()
        self._model = ThreadPoolExecutor(max_workers=1, thread_name_prefix="instructembed-model")
        self._counter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="instructembed-tokens")

    async def embed(
        self,
        rows: list[Any],
        groups: Sequence[Sequence[int]] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Embed tokenized rows -> (N, D) in their order: one `embed_tokenized` call, or one per group
        of row indices (micro-batches, from `split_by_padding`). With `lengths` (tokens per row), each
        call's time is fed to `call_cost`."""
        cost = self.call_cost if lengths is not None else None

        def run() -> np.ndarray:
            try:
                return _embed_groups(self.embedder, rows, groups or [range(len(rows))], lengths, cost)
            finally:
                release_free_memory()

        return await _in(self._model, run)

    async def tokenize(self, inputs: list[EmbedInput]) -> list[TokenizedRow]:
        return await _in(self._counter, lambda: list(self.embedder.tokenize(inputs)))

    async def token_details(self, inputs: list[EmbedInput], **options: bool) -> list[Any]:
        """`Embedder.token_details` in the tokenizer thread (for POST /tokenize)."""
        details = getattr(self.embedder, "token_details", None)
        if details is None:
            raise ServerError(ErrorKind.NOT_FOUND, "this model cannot show its tokens (no token_details)")
        return await _in(self._counter, lambda: list(details(inputs, **options)))

    def close(self) -> None:
        self._counter.shutdown(wait=True)
        self._model.shutdown(wait=True)


def _embed_groups(
    embedder: EmbedderLike,
    rows: list[Any],
    groups: Sequence[Sequence[int]],
    lengths: Sequence[int] | None,
    cost: CallCost | None,
) -> np.ndarray:
    """One `embed_tokenized` call per group (the groups hold every row once) -> (N, D) in `rows`
    order; each call's padded tokens and seconds go to `cost`."""
    if len(groups) <= 1:
        groups = [range(len(rows))]  # one call on every row, in their order: nothing to reorder
    out: np.ndarray | None = None
    for group in groups:
        chosen = rows if isinstance(group, range) else [rows[i] for i in group]
        started = time.perf_counter()
        vectors = embedder.embed_tokenized(chosen)  # (len(group), D)
        if cost is not None and lengths is not None and len(group):
            cost.observe(len(group) * max(lengths[i] for i in group), time.perf_counter() - started)
        if len(groups) == 1:
            return vectors
        if vectors.shape[0] != len(group):
            raise RuntimeError(f"embed returned {vectors.shape[0]} rows for {len(group)} inputs")
        if out is None:
            out = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
        out[np.asarray(group, dtype=np.int64)] = vectors
    if out is None:
        raise RuntimeError("unreachable: several groups were given")
    return out


def _find_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to trim
        return None


_MALLOC_TRIM = _find_malloc_trim()


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS after a batch (glibc only).

    Batches of ever-changing shapes leave glibc's heap fragmented; without this a server's RSS
    grew by ~130 MB a minute under load (docs/server.md, soak), with it RSS stays flat. A few ms
    per batch.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


async def _in(executor: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(executor, fn)


@dataclass(eq=False)
class Job:
    """One request's items on their way through the queue."""

    items: list[Any]  # tokenized rows, as `EmbedderLike.tokenize` made them
    costs: list[int]  # tokens per item after truncation: what the batch budget counts
    future: asyncio.Future[np.ndarray]
    next_item: int = 0  # first item not yet handed to a batch
    rows_done: int = 0
    out: np.ndarray | None = None  # (len(items), D), allocated when the first rows arrive
    dropped: bool = False

    @property
    def unscheduled(self) -> int:
        return len(self.items) - self.next_item


@dataclass
class _Slice:
    job: Job
    start: int
    stop: int


@dataclass
class _Batch:
    slices: list[_Slice] = field(default_factory=list)
    tokens: int = 0

    @property
    def items(self) -> int:
        return sum(s.stop - s.start for s in self.slices)


class Batcher:
    """The queue and its worker. Create inside a running event loop; `start`, then `close`."""

    def __init__(self, runner: ModelRunner, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.runner = runner
        self.settings = settings
        self.metrics = metrics
        self._jobs: deque[Job] = deque()
        self._pending_items = 0
        self._pending_tokens = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pending_items(self) -> int:
        return self._pending_items

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._work(), name="instructembed-batcher")

    def check_room(self, count: int) -> None:
        """Refuse at once (429, or 503 when closing) if `count` more inputs cannot be queued now."""
        if self._closing:
            raise ServerError(ErrorKind.UNAVAILABLE, "the server is shutting down; retry on another instance")
        if self._pending_items + count > self.settings.max_queue_items:
            raise ServerError(
                ErrorKind.OVERLOADED,
                f"the server is overloaded ({self._pending_items} inputs queued, limit "
                f"{self.settings.max_queue_items}); retry after a short pause",
            )

    def submit(self, items: list[Any], costs: list[int]) -> Job:
        """Queue a request's items, or refuse at once when the queue cannot take them all."""
        self.check_room(len(items))
        job = Job(items, costs, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._pending_items += len(items)
        self._pending_tokens += sum(costs)
        self.metrics.queue_items.inc(len(items))  # by deltas: several models' queues add up
        self._wakeup.set()
        return job

    def drop(self, job: Job) -> None:
        """Forget a job whose client has gone: its unscheduled items will never run."""
        if job.dropped or job.future.done():
            return
        job.dropped = True
        if job.unscheduled:
            self.metrics.dropped_items.inc(job.unscheduled)
            self._unqueue(job, job.unscheduled)
        job.future.cancel()

    def _unqueue(self, job: Job, count: int) -> None:
        self._pending_items -= count
        self._pending_tokens -= sum(job.costs[job.next_item : job.next_item + count])
        job.next_item += count
        self.metrics.queue_items.dec(count)

    async def close(self) -> None:
        """Stop taking work and finish what is queued (up to `drain_timeout_s`)."""
        self._closing = True
        self._wakeup.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=self.settings.drain_timeout_s)
        except asyncio.TimeoutError:
            logger.warning(
                "shutdown: %d queued inputs not embedded after %.0f s; dropping them",
                self._pending_items,
                self.settings.drain_timeout_s,
            )
            self._task.cancel()
            for job in self._jobs:
                self._fail(
                    job, ServerError(ErrorKind.UNAVAILABLE, "the server shut down before this request ran")
                )

    # ---- the worker ----------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            while not self._prune():
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            if (
                self._pending_tokens < self.settings.batch_tokens
                and self.settings.max_wait_ms > 0
                and not self._closing
            ):
                await asyncio.sleep(self.settings.max_wait_ms / 1000)  # let a few more requests join
                if not self._prune():
                    continue
            batch = self._take()
            try:
                await self._run(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the worker die: fail this batch's jobs, keep serving
                logger.exception("batch of %d inputs failed", batch.items)
                for piece in batch.slices:
                    self._fail(
                        piece.job, ServerError(ErrorKind.INTERNAL, "embedding failed; see the server log")
                    )

    def _prune(self) -> bool:
        """Drop finished or abandoned jobs from the front; True if work remains."""
        while self._jobs and (self._jobs[0].dropped or self._jobs[0].unscheduled == 0):
            self._jobs.popleft()
        return bool(self._jobs)

    def _take(self) -> _Batch:
        """Items from the front of the queue until the token budget is spent (at least one item)."""
        batch = _Batch()
        budget = self.settings.batch_tokens
        while self._jobs and batch.tokens < budget:
            job = self._jobs[0]
            if job.dropped or job.unscheduled == 0:
                self._jobs.popleft()
                continue
            start = stop = job.next_item
            while stop < len(job.items) and (
                batch.tokens + job.costs[stop] <= budget or (not batch.slices and stop == start)
            ):
                batch.tokens += job.costs[stop]
                stop += 1
            if stop == start:
                break  # the next item does not fit; it opens the next batch
            batch.slices.append(_Slice(job, start, stop))
            self._unqueue(job, stop - start)
            if job.unscheduled == 0:
                self._jobs.popleft()
        return batch

    async def _run(self, batch: _Batch) -> None:
        inputs = [item for s in batch.slices for item in s.job.items[s.start : s.stop]]
        lengths = [cost for s in batch.slices for cost in s.job.costs[s.start : s.stop]]
        overhead = self.settings.microbatch_overhead_tokens
        groups = split_by_padding(
            lengths, self.runner.call_cost.overhead_tokens() if overhead is None else overhead
        )
        started = time.perf_counter()
        try:
            vectors = await self.runner.embed(inputs, groups, lengths)  # (N, D)
        except (TypeError, ValueError) as error:
            if len(batch.slices) > 1:
                await self._run_each(batch)  # find which request the embedder refused
                return
            self._fail(
                batch.slices[0].job,
                ServerError(ErrorKind.VALIDATION, f"the model refused this input: {error}"),
            )
            return
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_items.observe(len(inputs))
        self.metrics.batch_tokens.observe(batch.tokens)
        self.metrics.embedded_items.inc(len(inputs))
        self.metrics.prompt_tokens.inc(batch.tokens)
        self.metrics.model_calls.inc(len(groups))
        self.metrics.padded_tokens.inc(padded_tokens(lengths, groups))
        if vectors.shape[0] != len(inputs):
            raise RuntimeError(f"embed returned {vectors.shape[0]} rows for {len(inputs)} inputs")
        offset = 0
        for piece in batch.slices:
            count = piece.stop - piece.start
            self._deliver(piece, vectors[offset : offset + count])
            offset += count

    async def _run_each(self, batch: _Batch) -> None:
        for piece in batch.slices:
            one = _Batch([piece], sum(piece.job.costs[piece.start : piece.stop]))
            await self._run(one)

    def _deliver(self, piece: _Slice, rows: np.ndarray) -> None:
        job = piece.job
        if job.dropped or job.future.done():
            return
        if job.out is None:
            job.out = np.empty((len(job.items), rows.shape[1]), dtype=np.float32)
        job.out[piece.start : piece.stop] = rows
        job.rows_done += piece.stop - piece.start
        if job.rows_done == len(job.items):
            job.future.set_result(job.out)

    def _fail(self, job: Job, error: ServerError) -> None:
        if job.unscheduled:
            self._unqueue(job, job.unscheduled)
        job.dropped = True
        if not job.future.done():
            job.future.set_exception(error)
