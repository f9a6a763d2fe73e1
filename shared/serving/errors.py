"""One-line JSON errors for every failure the app answers, FastAPI's own included.

/generate and the other routes answer `{"error": "..."}`; routes under /v1 answer in OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`, so OpenAI clients raise their usual exceptions.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.rewards import describe_error
from shared.serving.validation import RequestError

_log = logging.getLogger(__name__)

OPENAI_PREFIX = "/v1/"


class OpenAIError(RequestError):
    """A client error of an OpenAI route: a status, a one-line message, the parameter at fault and an error code."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(status, message)
        self.param = param
        self.code = code


def one_line(message: object) -> str:
    """Return str(message) with its whitespace runs (newlines included) folded into single spaces."""
    return " ".join(str(message).split())


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Return a JSON response `{"error": message}` with the message folded onto one line."""
    return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    """Return OpenAI's error object `{"error": {"message", "type", "param", "code"}}` for a status and message."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": one_line(message), "type": kind, "param": param, "code": code}}


def openai_error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                          headers: dict[str, str] | None = None) -> JSONResponse:
    """Return a JSON response with OpenAI's error object (see openai_error)."""
    return JSONResponse(openai_error(status, message, param, code), status_code=status, headers=headers)


def respond(request: Request, status: int, message: str, headers: dict[str, str] | None = None,
            param: str | None = None, code: str | None = None) -> JSONResponse:
    """Return the error response in the shape of the request's route: OpenAI's under /v1, else one-line JSON."""
    if request.url.path.startswith(OPENAI_PREFIX):
        return openai_error_response(status, message, param, code, headers)
    return error_response(status, message, headers)


def validation_message(exc: RequestValidationError) -> str:
    """Return FastAPI's validation errors as `field.path: message`, the first one plus a count of the rest."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def install_error_handlers(app: FastAPI) -> None:
    """Make the app answer client errors, FastAPI's 422s and 404s, and crashes with a one-line JSON error."""

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        return respond(request, exc.status, exc.message, None, getattr(exc, "param", None), getattr(exc, "code", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return respond(request, 400, f"body is not valid JSON: {validation_message(exc)}")
        return respond(request, 422, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"{exc.detail}: {request.method} {request.url.path}" if exc.status_code in (404, 405) else exc.detail
        return respond(request, exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        _log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return respond(request, 500, f"internal error: {describe_error(exc)}")
