"""`embed --engine ray` against a real two-node cluster on 127.0.0.1: a node killed mid-job, a driver
killed mid-job and the command run again, and an address where no cluster is."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_cluster import Cluster, free_port, kill_session, ray_env
from scale_helpers import need_ray, write_jsonl

from instructembed.scale.shards import SHARDS, iter_shard_tables

FILES, ROWS = 10, 120
JOB_TIMEOUT_S = 600  # a hang guard for a loaded 2-core machine, not a speed claim
REPORT = re.compile(
    r"embedded (\d+) shard\(s\) \((\d+) rows, \d+ vectors\), skipped (\d+) complete shard\(s\)"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    need_ray()
    nodes = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        nodes.start_head(num_cpus=2)
        yield nodes
    finally:
        nodes.stop()


def job(address: str, inputs: Path, output: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "instructembed",
        "embed",
        "--engine",
        "ray",
        "--address",
        address,
        "--input",
        str(inputs),
        "--output",
        str(output),
        "--actors",
        "2",
        "--instruction",
        "Represent the passage for retrieval: ",
        "--no-progress",
    ]


def finished(output: Path) -> list[Path]:
    directory = output / SHARDS
    return (
        sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))
        if directory.exists()
        else []
    )


def wait_for_shards(output: Path, proc: subprocess.Popen[bytes], count: int) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while len(finished(output)) < count:
        if proc.poll() is not None:
            raise AssertionError(f"the job ended (rc {proc.returncode}) before {count} shard(s) were written")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count} shard(s) within {JOB_TIMEOUT_S} s")
        time.sleep(0.2)


def ids_once(output: Path, expected: list[str]) -> None:
    ids = [i for _, table in iter_shard_tables(output) for i in table.column("id").to_pylist()]
    counts = collections.Counter(ids)
    assert not [i for i, n in counts.items() if n > 1], "an id was written twice"
    assert ids == expected  # every id, once, shards in input order, rows in file order


@pytest.mark.slow
def test_a_node_killed_then_a_driver_killed(cluster: Cluster, tmp_path: Path) -> None:
    expected = write_jsonl(tmp_path / "in", files=FILES, rows=ROWS, words=60)
    worker = cluster.add_node(num_cpus=1)

    # 1. SIGKILL a worker node once the job has written a shard: Ray restarts its actor and retries.
    out = tmp_path / "out-node"
    log = (tmp_path / "node.log").open("w+b")
    proc = subprocess.Popen(
        job(cluster.address, tmp_path / "in", out), stdout=log, stderr=subprocess.STDOUT, env=ray_env()
    )
    try:
        wait_for_shards(out, proc, 1)
        assert len(finished(out)) < FILES, "the job finished before the node could be killed"
        cluster.kill_node(worker)
        rc = proc.wait(timeout=JOB_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    text = log.read().decode(errors="replace")
    assert rc == 0, text[-4000:]
    report = REPORT.search(text)
    assert report is not None and report.groups() == (str(FILES), str(FILES * ROWS), "0"), text[-2000:]
    ids_once(out, expected)

    # 2. SIGKILL the driver mid-job, run the same command again: finished shards are not redone.
    out = tmp_path / "out-driver"
    first = subprocess.Popen(
        job(cluster.address, tmp_path / "in", out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ray_env(),
        start_new_session=True,
    )
    try:
        wait_for_shards(out, first, 2)
    finally:
        kill_session(first.pid)
        first.wait(timeout=30)
    before = {p.name: p.stat().st_mtime_ns for p in finished(out)}
    assert 2 <= len(before) < FILES, "the job finished before the driver could be killed"
    again = subprocess.run(
        job(cluster.address, tmp_path / "in", out),
        capture_output=True,
        text=True,
        env=ray_env(),
        timeout=JOB_TIMEOUT_S,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    report = REPORT.search(again.stderr)
    assert report is not None, again.stderr[-2000:]
    embedded, rows, skipped = (int(g) for g in report.groups())
    assert skipped >= len(before) and embedded + skipped == FILES and rows == embedded * ROWS
    assert {name: (out / SHARDS / name).stat().st_mtime_ns for name in before} == before  # untouched
    ids_once(out, expected)


def test_an_unreachable_address_is_a_clear_error_within_seconds(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in", files=1, rows=2)
    out = subprocess.run(
        job(f"127.0.0.1:{free_port()}", tmp_path / "in", tmp_path / "out"),
        capture_output=True,
        text=True,
        env=ray_env(),
        timeout=600,  # the hang guard (Ray alone retries for many minutes); the check itself takes <= 5 s
    )
    assert out.returncode == 1
    assert "cannot reach a Ray cluster at 127.0.0.1:" in out.stderr and "ray start --head" in out.stderr
