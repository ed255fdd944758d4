"""Run an app on a real socket in a background thread (tests, benchmarks, notebooks).

with serve_in_thread(create_app(embedder)) as base_url:
    openai.OpenAI(base_url=f"{base_url}/v1", api_key="-").embeddings.create(...)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


class ThreadedServer:
    """A uvicorn server on 127.0.0.1 and an ephemeral port, in a daemon thread."""

    def __init__(
        self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=60)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True, name="uvicorn"
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread exited during startup; see the log above")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {timeout:.0f} s")
            time.sleep(0.01)

    def request_stop(self) -> None:
        """Begin a graceful shutdown (in-flight requests finish, the queue drains)."""
        self.server.should_exit = True

    def stop(self, timeout: float = 60.0) -> None:
        self.request_stop()
        self._thread.join(timeout)
        self._socket.close()
        if self._thread.is_alive():
            raise TimeoutError(f"the server did not stop within {timeout:.0f} s")


@contextmanager
def serve_in_thread(app: FastAPI, **kwargs: object) -> Iterator[str]:
    """Serve `app` for the duration of the block; yields the base URL (`http://127.0.0.1:PORT`)."""
    server = ThreadedServer(app, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()
