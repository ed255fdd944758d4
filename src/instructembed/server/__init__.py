"""The embedding server: OpenAI-compatible HTTP API with per-item instructions and dynamic batching.

Needs the `[server]` extra (fastapi, uvicorn, prometheus-client). Start it with `instructembed serve`
or build the app yourself with `create_app(embedder, ServerSettings(...))`. Importing this package
(or `server.cli`) works without the extra; the first use of `create_app` says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from instructembed.server.settings import OverlongPolicy, ServerSettings

if TYPE_CHECKING:
    from instructembed.server.app import create_app
    from instructembed.server.errors import ErrorKind, ServerError

__all__ = ["ErrorKind", "OverlongPolicy", "ServerError", "ServerSettings", "create_app"]

_LAZY = {
    "create_app": "instructembed.server.app",
    "ErrorKind": "instructembed.server.errors",
    "ServerError": "instructembed.server.errors",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    from instructembed.errors import MissingExtraError

    try:
        module = importlib.import_module(_LAZY[name])
    except ImportError as error:
        if error.name in ("fastapi", "starlette", "uvicorn", "prometheus_client", "pydantic"):
            raise MissingExtraError("server", error.name) from error
        raise
    return getattr(module, name)
