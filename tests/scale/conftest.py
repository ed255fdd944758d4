"""Fixtures for scale/: a local Ray runtime kept small (2 CPUs, 250 MB object store, no dashboard)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from scale_helpers import need_ray

# Ray reads these at start-up: no usage reporting, and no token handshake between the test's nodes.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray runtime for one test module."""
    ray = need_ray()
    ray.init(
        num_cpus=2,
        object_store_memory=250 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
