"""One error type for the server, and the one place that maps it to HTTP status codes.

Every refusal is a `ServerError(kind, message, param)`; the handlers installed by `install_handlers`
turn it (and FastAPI's own validation / routing errors) into an OpenAI-shaped JSON body:
`{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`.
"""

from __future__ import annotations

import json
import logging
from enum import Enum

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ErrorKind(str, Enum):
    """The closed set of reasons the server refuses a request."""

    VALIDATION = "invalid_request_error"  # malformed JSON, wrong types, unknown fields, limits
    EMPTY_INPUT = "empty_input"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNAUTHORIZED = "authentication_error"
    OVERLOADED = "overloaded"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNAVAILABLE = "unavailable"  # model still loading, or the server is shutting down
    CLIENT_GONE = "client_closed_request"  # nobody reads the answer; counted in metrics only
    INTERNAL = "internal_error"  # a bug: logged with its traceback


#: The one mapping from error kind to HTTP status.
STATUS: dict[ErrorKind, int] = {
    ErrorKind.VALIDATION: 422,
    ErrorKind.EMPTY_INPUT: 400,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.OVERLOADED: 429,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.CLIENT_GONE: 499,  # nginx's convention for "client closed the request"
    ErrorKind.INTERNAL: 500,
}


class ServerError(Exception):
    """A request the server refuses; `param` names the offending field (e.g. `input[3].text`)."""

    def __init__(self, kind: ErrorKind, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.param = param

    @property
    def status_code(self) -> int:
        return STATUS[self.kind]


def error_response(error: ServerError) -> Response:
    body = {
        "error": {
            "message": error.message,
            "type": error.kind.value,
            "param": error.param,
            "code": error.status_code,
        }
    }
    headers: dict[str, str] = {}
    if error.kind is ErrorKind.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    elif error.kind is ErrorKind.OVERLOADED:
        headers["Retry-After"] = "1"
    return Response(
        json.dumps(body), status_code=error.status_code, media_type="application/json", headers=headers
    )


def param_from_loc(loc: tuple[int | str, ...]) -> str:
    """('input', 3, 'text') -> 'input[3].text'; the leading 'body' FastAPI adds is dropped."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def from_validation_errors(errors: list[dict[str, object]]) -> ServerError:
    """Turn pydantic's error list into one 422 naming the first offending field."""
    if not errors:
        return ServerError(ErrorKind.VALIDATION, "the request body is invalid")
    first = errors[0]
    loc = first.get("loc", ())
    param = param_from_loc(tuple(loc) if isinstance(loc, (tuple, list)) else ()) or None
    message = str(first.get("msg", "invalid value"))
    if first.get("type") == "extra_forbidden":
        message = "unknown field; remove it (see GET /info and docs/server.md for the accepted fields)"
    where = f"`{param}`" if param else "the request body"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return ServerError(ErrorKind.VALIDATION, f"invalid {where}: {message}{more}", param=param)


_HTTP_KINDS = {404: ErrorKind.NOT_FOUND, 405: ErrorKind.METHOD_NOT_ALLOWED}


def install_handlers(app: FastAPI) -> None:
    """Route every refusal through `error_response`, so all errors share one shape."""

    async def on_server_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, ServerError):  # registered for ServerError only
            raise exc
        return error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError):
            raise exc
        return error_response(from_validation_errors(list(exc.errors())))

    async def on_http(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StarletteHTTPException):
            raise exc
        kind = _HTTP_KINDS.get(exc.status_code, ErrorKind.VALIDATION)
        message = str(exc.detail)
        if kind is ErrorKind.NOT_FOUND:
            message = f"no route {request.method} {request.url.path}; see GET /info for the routes"
        return error_response(ServerError(kind, message))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            ServerError(ErrorKind.INTERNAL, "internal server error; the server log has the details")
        )

    app.add_exception_handler(ServerError, on_server_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
