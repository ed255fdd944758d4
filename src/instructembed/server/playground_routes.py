"""`GET /playground/`: a one-page playground served from files inside the package.

No build step and nothing from a CDN: the page (`server/playground/`) is plain HTML, CSS and
JavaScript that call this server's own routes (`/info`, `/v1/embeddings`, and `/v1/search` when
the server has an index), so what a person sees is what an API client gets. The instruction
suggestions come from the packaged instructor-large table, reshaped here (`suggestions`).

Every answer carries a Content-Security-Policy that allows only this origin, so a page that tried
to load anything from elsewhere would fail loudly in the browser tests instead of silently online.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from instructembed.package_data import read_playground, read_text
from instructembed.server.errors import ErrorKind, ServerError

#: The page's files (in `server/playground/`) and their media types. A file not listed here is
#: never served; `tests/server/test_playground.py` checks this list against the directory.
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "examples.json": "application/json",
}

#: The instruction table the suggestions come from (package data, INSTRUCTOR's verbatim).
SUGGESTION_TABLE = "instructor-large.json"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

playground_router = APIRouter(tags=["playground"], include_in_schema=False)


@cache
def _asset(name: str) -> bytes:
    return read_playground(name)


def suggestions(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Reshape an instruction table (`{task type: {task: instruction | {"query", "corpus"}}}`) into
    suggestions per task type: each distinct (role, instruction) once, with the tasks that use it.

    `role` is "query" or "corpus" for tasks with two sides (retrieval, reranking), None otherwise.
    Instructions are kept verbatim (trailing spaces and odd capitals included): they are what the
    model was trained with.
    """
    task_types = []
    for task_type, tasks in table.items():
        seen: dict[tuple[str | None, str], list[str]] = {}
        for task, entry in tasks.items():
            sides = entry.items() if isinstance(entry, dict) else [(None, entry)]
            for role, instruction in sides:
                if isinstance(instruction, str):
                    seen.setdefault((role, instruction), []).append(task)
        task_types.append(
            {
                "name": task_type,
                "suggestions": [
                    {"instruction": instruction, "role": role, "tasks": names}
                    for (role, instruction), names in seen.items()
                ],
            }
        )
    return {"source": SUGGESTION_TABLE.removesuffix(".json"), "task_types": task_types}


@cache
def _suggestions_json() -> bytes:
    text = read_text(SUGGESTION_TABLE)
    return json.dumps(suggestions(json.loads(text)), separators=(",", ":")).encode()


def _answer(body: bytes, media_type: str) -> Response:
    return Response(body, media_type=media_type, headers=SECURITY_HEADERS)


@playground_router.get("/playground")
async def playground_redirect() -> Response:
    """The page's assets are relative URLs, so it lives at `/playground/` (relative redirect: it
    survives a reverse proxy that mounts the server under a prefix)."""
    return Response(status_code=307, headers={"Location": "playground/"})


@playground_router.get("/playground/")
async def playground_page() -> Response:
    return _answer(_asset("index.html"), ASSETS["index.html"])


@playground_router.get("/playground/instructions.json")
async def playground_instructions() -> Response:
    """Instruction suggestions per task type, from the packaged instructor-large table."""
    return _answer(_suggestions_json(), "application/json")


@playground_router.get("/playground/{name}")
async def playground_asset(name: str) -> Response:
    if name not in ASSETS:
        raise ServerError(
            ErrorKind.NOT_FOUND, f"the playground has no file {name!r}; open /playground/ for the page"
        )
    return _answer(_asset(name), ASSETS[name])
