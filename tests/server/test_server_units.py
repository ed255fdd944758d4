"""Unit tests without sockets: settings, vector helpers against naive loops, the batcher's queue."""

from __future__ import annotations

import asyncio
import math
import threading

import numpy as np
import pytest
from server_fakes import FakeEmbedder, FakeRow

from instructembed.server.batcher import Batcher, ModelRunner
from instructembed.server.errors import ErrorKind, ServerError, param_from_loc
from instructembed.server.metrics import ServerMetrics
from instructembed.server.schemas import ServedItem, parse_items
from instructembed.server.settings import ONE_CALL_PER_BATCH, ServerSettings, parse_microbatch_overhead
from instructembed.server.vectors import from_base64, l2_normalize, to_base64
from instructembed.vectors_out import truncate


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"max_items_per_request": -1}, "max_items_per_request"),
        ({"batch_tokens": 1.5}, "batch_tokens"),
        ({"max_items_per_request": 10, "max_queue_items": 5}, "never be queued"),
        ({"port": 70000}, "port"),
        ({"max_wait_ms": float("nan")}, "max_wait_ms"),
        ({"api_key": "  "}, "api_key"),
        ({"overlong": "cut"}, "overlong"),
        ({"microbatch_overhead_tokens": -1}, "microbatch_overhead_tokens"),
    ],
)
def test_settings_refuse_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerSettings(**kwargs)  # type: ignore[arg-type]


def test_micro_batches_are_learnt_by_default() -> None:
    # measured (docs/server.md): learnt 95-100 % of in-process at 16 clients, one call per batch 58-66 %
    assert ServerSettings().microbatch_overhead_tokens is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("off", ONE_CALL_PER_BATCH),
        ("OFF", ONE_CALL_PER_BATCH),
        ("auto", None),
        (" 128 ", 128),
        ("0", 0),
        (7, 7),
    ],
)
def test_parse_microbatch_overhead(given: str | int, expected: int | None) -> None:
    assert parse_microbatch_overhead(given) == expected


@pytest.mark.parametrize("given", ["-1", "1.5", "learnt", ""])
def test_parse_microbatch_overhead_refuses_with_what_to_write(given: str) -> None:
    with pytest.raises(ValueError, match=r"'off'.*'auto'"):
        parse_microbatch_overhead(given)


def test_vector_helpers_match_naive_loops() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 7)).astype(np.float32)
    vectors[2] = 0.0
    before = vectors.copy()
    normalized = l2_normalize(vectors)
    for row, out in zip(vectors, normalized, strict=True):
        norm = math.sqrt(sum(float(x) ** 2 for x in row))
        expected = [float(x) / norm for x in row] if norm else [0.0] * len(row)
        np.testing.assert_allclose(out, expected, rtol=1e-6)
    cut = truncate(vectors, 3, renormalize=True)
    assert cut.shape == (5, 3) and cut.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(cut[0], vectors[0, :3] / np.linalg.norm(vectors[0, :3]), rtol=1e-6)
    np.testing.assert_array_equal(truncate(vectors, 3, renormalize=False), vectors[:, :3])
    np.testing.assert_array_equal(vectors, before)  # inputs untouched
    np.testing.assert_array_equal(from_base64(to_base64(vectors[1])), vectors[1])


def test_param_from_loc() -> None:
    assert param_from_loc(("body", "input", 3, "text")) == "input[3].text"
    assert param_from_loc(("dimensions",)) == "dimensions"
    assert param_from_loc(()) == ""


def test_parse_items_forms() -> None:
    items = parse_items(
        ["a", {"instruction": "i", "text": "b"}],
        field="input",
        instruction=None,
        max_items=4,
        allow_pair_lists=False,
    )
    assert items == [ServedItem(None, "a"), ServedItem("i", "b")]
    assert parse_items("x", field="input", instruction="I", max_items=1, allow_pair_lists=False) == [
        ServedItem("I", "x")
    ]
    assert parse_items(
        [["i", "t"]], field="inputs", instruction=None, max_items=1, allow_pair_lists=True
    ) == [ServedItem("i", "t")]
    assert ServedItem(None, "a").to_embed_input() == "a" and ServedItem("i", "b").to_embed_input() == (
        "i",
        "b",
    )


class GatedEmbedder(FakeEmbedder):
    """Blocks inside `embed_tokenized` until released, so tests control what is queued while the model runs."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed_tokenized(self, encoded):  # type: ignore[no-untyped-def,override]
        self.entered.set()
        self.release.wait(10)
        return super().embed_tokenized(encoded)


def _items(*texts: str) -> list[FakeRow]:
    return FakeEmbedder().tokenize(list(texts))


def test_batcher_batches_across_jobs_by_token_budget_and_drops_abandoned_jobs() -> None:
    async def scenario() -> None:
        fake = GatedEmbedder()
        runner = ModelRunner(fake)
        metrics = ServerMetrics()
        batcher = Batcher(
            runner,
            ServerSettings(batch_tokens=10, max_queue_items=6, max_items_per_request=6, max_wait_ms=0),
            metrics,
        )
        batcher.start()
        first = batcher.submit(_items("a"), [3])
        await asyncio.to_thread(fake.entered.wait, 10)  # "a" is in the model now
        second = batcher.submit(_items("b", "c", "d"), [3, 3, 3])
        third = batcher.submit(_items("e", "f"), [3, 3])
        abandoned = batcher.submit(_items("gone"), [3])
        with pytest.raises(ServerError) as full:
            batcher.submit(_items("x", "y"), [3, 3])
        assert full.value.kind is ErrorKind.OVERLOADED and full.value.status_code == 429
        assert batcher.pending_items == 6
        batcher.drop(abandoned)
        assert batcher.pending_items == 5
        fake.release.set()
        rows = await asyncio.gather(first.future, second.future, third.future)
        await batcher.close()
        runner.close()
        # budget 10 tokens = 3 items of 3: b c d | e f, across the two jobs' boundary
        assert fake.calls == [["a"], ["b", "c", "d"], ["e", "f"]]
        np.testing.assert_array_equal(rows[1], FakeEmbedder().embed(["b", "c", "d"]))
        assert abandoned.future.cancelled()
        assert metrics.dropped_items._value.get() == 1

    asyncio.run(scenario())


def test_batcher_splits_a_big_job_and_keeps_at_least_one_item_per_batch() -> None:
    async def scenario() -> None:
        fake = FakeEmbedder()
        runner = ModelRunner(fake)
        batcher = Batcher(runner, ServerSettings(batch_tokens=5, max_wait_ms=0), ServerMetrics())
        batcher.start()
        job = batcher.submit(_items("a", "b", "c"), [3, 9, 2])  # 9 > budget still runs, alone
        rows = await job.future
        await batcher.close()
        runner.close()
        assert fake.calls == [["a"], ["b", "c"]] or fake.calls == [["a"], ["b"], ["c"]]
        np.testing.assert_array_equal(rows, FakeEmbedder().embed(["a", "b", "c"]))

    asyncio.run(scenario())


def test_batcher_runs_a_batch_as_length_homogeneous_micro_batches() -> None:
    async def scenario(overhead: int) -> tuple[list[list[object]], list[np.ndarray], ServerMetrics]:
        fake = GatedEmbedder()
        runner = ModelRunner(fake)
        metrics = ServerMetrics()
        settings = ServerSettings(max_wait_ms=0, microbatch_overhead_tokens=overhead)
        batcher = Batcher(runner, settings, metrics)
        batcher.start()
        first = batcher.submit(_items("warm"), [3])
        await asyncio.to_thread(fake.entered.wait, 10)  # the next two jobs queue up behind "warm"
        mixed = batcher.submit(_items("l1", "s1", "l2", "m1"), [40, 2, 40, 9])
        other = batcher.submit(_items("s2", "m2"), [2, 9])
        fake.release.set()
        rows = await asyncio.gather(first.future, mixed.future, other.future)
        await batcher.close()
        runner.close()
        return fake.calls, list(rows), metrics

    calls, rows, metrics = asyncio.run(scenario(overhead=0))
    # one batch of six rows across two jobs, run as one call per length, longest first
    assert calls == [["warm"], ["l1", "l2"], ["m1", "m2"], ["s1", "s2"]]
    np.testing.assert_array_equal(rows[1], FakeEmbedder().embed(["l1", "s1", "l2", "m1"]))
    np.testing.assert_array_equal(rows[2], FakeEmbedder().embed(["s2", "m2"]))
    assert metrics.model_calls._value.get() == 4
    assert metrics.padded_tokens._value.get() == 3 + 2 * 40 + 2 * 9 + 2 * 2
    calls, rows, metrics = asyncio.run(scenario(overhead=10_000))  # a call costs more than padding
    assert calls == [["warm"], ["l1", "s1", "l2", "m1", "s2", "m2"]]
    np.testing.assert_array_equal(rows[1], FakeEmbedder().embed(["l1", "s1", "l2", "m1"]))
    assert metrics.padded_tokens._value.get() == 3 + 6 * 40


def test_closed_batcher_refuses_new_work() -> None:
    async def scenario() -> None:
        runner = ModelRunner(FakeEmbedder())
        batcher = Batcher(runner, ServerSettings(), ServerMetrics())
        batcher.start()
        await batcher.close()
        runner.close()
        with pytest.raises(ServerError) as closed:
            batcher.submit(_items("late"), [3])
        assert closed.value.status_code == 503

    asyncio.run(scenario())
