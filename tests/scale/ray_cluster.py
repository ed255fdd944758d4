"""A real Ray cluster of separate node processes on 127.0.0.1, for the fault-tolerance tests.

Each node is one `ray start --block` process in a session of its own; everything Ray starts for that
node (GCS, raylet, workers) stays in that session, so killing a node means SIGKILL to every process
of its session, and teardown does that for every node it started: only processes of this cluster
are touched, never other Ray instances on the machine (`ray stop --force` would end those too).
Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
#: Dead nodes are noticed within seconds instead of Ray's default half minute.
SYSTEM_CONFIG = {"health_check_period_ms": 1000, "health_check_failure_threshold": 10}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_env() -> dict[str, str]:
    """What every process of the test sees: our sources first, no usage stats, no auth token."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
        "RAY_raylet_start_wait_time_s": "180",  # a loaded machine registers a raylet slowly
        "HF_HUB_OFFLINE": "1",
    }


def _ray_bin() -> str:
    local = Path(sys.executable).with_name("ray")
    found = str(local) if local.exists() else shutil.which("ray")
    if found is None:
        raise RuntimeError("the `ray` command is not installed beside this Python")
    return found


def session_pids(sid: int) -> list[int]:
    """Every live process of session `sid` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state ppid pgrp session ...
            pids.append(int(entry.name))
    return pids


def kill_session(sid: int) -> None:
    for pid in session_pids(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Cluster:
    """`ray start --head` plus worker nodes, each started with `ray start --address`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen[bytes]] = []
        root.mkdir(parents=True, exist_ok=True)

    def _start(self, args: list[str], name: str, timeout_s: float, tries: int = 3) -> subprocess.Popen[bytes]:
        """`ray start ARGS --block`, retried: Ray gives a raylet 30 s to register, which a loaded
        machine can miss (the node then exits, and is started again)."""
        log = self.root / f"{name}.log"
        for _ in range(tries):
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [_ray_bin(), "start", *args, "--block"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=ray_env(),
                    start_new_session=True,
                )
            self.nodes.append(proc)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and proc.poll() is None:
                if "Ray runtime started" in log.read_text(errors="replace"):
                    return proc
                time.sleep(0.5)
            kill_session(proc.pid)
            proc.wait(timeout=30)
        raise RuntimeError(f"ray start {name} did not come up:\n{log.read_text(errors='replace')[-3000:]}")

    def start_head(self, num_cpus: int, timeout_s: float = 180) -> None:
        self._start(
            [
                "--head",
                f"--port={self.port}",
                f"--num-cpus={num_cpus}",
                "--node-ip-address=127.0.0.1",
                "--include-dashboard=false",
                f"--ray-client-server-port={free_port()}",
                "--object-store-memory=200000000",
                f"--temp-dir={self.root / 'ray'}",
                f"--system-config={json.dumps(SYSTEM_CONFIG)}",
            ],
            "head",
            timeout_s,
        )

    def add_node(self, num_cpus: int, timeout_s: float = 180) -> subprocess.Popen[bytes]:
        return self._start(
            [
                f"--address={self.address}",
                f"--num-cpus={num_cpus}",
                "--node-ip-address=127.0.0.1",
                "--object-store-memory=200000000",
            ],
            f"node{len(self.nodes)}",
            timeout_s,
        )

    def kill_node(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL to the node's raylet, object store and workers: the node is gone, as in a crash."""
        kill_session(proc.pid)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in reversed(self.nodes):
            kill_session(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
