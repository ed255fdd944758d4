"""Fixtures for scale/: a small local Ray runtime (one node, 2 CPUs, 200 MB object store, no dashboard).

The runtime is a `ray start --head` node of its own (ray_cluster.py) that this process joins: the
same as `ray.init(num_cpus=2)`, but started with retries and torn down by its own processes only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from ray_cluster import Cluster
from scale_helpers import need_ray

# Ray reads these at start-up: no usage reporting, and no token handshake between the test's nodes.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local Ray runtime with 2 CPUs for one test module; this process is its driver."""
    ray = need_ray()
    node = Cluster(tmp_path_factory.mktemp("local-ray"))
    try:
        node.start_head(num_cpus=2)
        ray.init(address=node.address, log_to_driver=False, configure_logging=False)
        yield ray
    finally:
        ray.shutdown()
        node.stop()
