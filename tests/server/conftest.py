"""Fixtures for the server tests: a fast deterministic fake embedder, and servers on real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server_fakes import FakeEmbedder, start_server

from instructembed.server import ServerSettings


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[str, FakeEmbedder]]:
    """One server per module around a fast fake, with small limits that hostile tests can reach."""
    embedder = FakeEmbedder()
    settings = ServerSettings(max_body_bytes=64 * 1024, max_items_per_request=16, max_queue_items=64)
    server = start_server(embedder, settings)
    yield server.base_url, embedder
    server.stop()
