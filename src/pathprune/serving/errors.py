"""Every error the server answers, one line each in OpenAI's shape: 400 for an invalid request (bad JSON, a
field out of range, any :class:`~pathprune.errors.PathpruneError`), 429 with ``Retry-After`` for a full
queue, 504 past the request's timeout, 499 (never read) when the client left, 500 for anything else."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import PathpruneError
from .middleware import error_body
from .scheduler import QueueFull


class RequestTimeout(Exception):
    """The request ran past its timeout (its job was cancelled)."""


class ClientGone(Exception):
    """The client disconnected while waiting (its job was cancelled)."""


def error_response(status: int, message: str, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, " ".join(str(message).split()), param), status_code=status,
                        headers=headers)


def validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    """The first validation error as one line, and the field it concerns."""
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
    if first["type"] == "json_invalid":
        return f"invalid JSON: {first.get('ctx', {}).get('error', 'cannot parse the body')}", None
    if first["type"] == "missing" and not loc:
        return "a JSON body is required", None
    if first["type"] == "extra_forbidden":
        return f"unknown field {loc!r} (not supported by this server)", loc
    msg = first["msg"].removeprefix("Value error, ")
    return (f"{loc}: {msg}" if loc else msg), loc or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _bad_body(_request, err: RequestValidationError):
        message, param = validation_message(err)
        return error_response(400, message, param)

    @app.exception_handler(PathpruneError)
    async def _bad_value(_request, err: PathpruneError):
        return error_response(400, str(err), err.parameter)

    @app.exception_handler(QueueFull)
    async def _busy(_request, err: QueueFull):
        return error_response(429, str(err), headers={"Retry-After": "1"})

    @app.exception_handler(RequestTimeout)
    async def _late(_request, err: RequestTimeout):
        return error_response(504, str(err))

    @app.exception_handler(ClientGone)
    async def _gone(_request, _err):
        return Response(status_code=499)  # nobody reads it; nginx's code for "client closed request"

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, err: StarletteHTTPException):
        return error_response(err.status_code, str(err.detail))

    @app.exception_handler(Exception)
    async def _internal(_request, err: Exception):
        return error_response(500, f"internal error: {type(err).__name__}: {err}")
