"""Ollama's one error mapping: every failure under /api leaves as `{"error": "..."}` with its status.

The door, the scheduler and the translations raise the server's `APIError`; this router-level
mapping rewrites them (and framework errors: validation, wrong method, body too large) into
Ollama's shape. Ollama answers 404 for an unknown model and 400 for a bad request.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from server.dialects.ollama.protocol import ErrorResponse
from server.http.errors import APIError, param_from_validation

log = logging.getLogger(__name__)

_QUOTED = re.compile(r"`([^`]+)`")


class OllamaError(APIError):
    """An error raised by the Ollama wing itself, with Ollama's wording."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)


def model_not_found(model: str) -> OllamaError:
    """404 with Ollama's wording for an unknown model."""
    return OllamaError(404, f'model "{model}" not found, try pulling it first')


def bad_request(message: str) -> OllamaError:
    """400 for what the request asks that cannot be done."""
    return OllamaError(400, message)


def to_message(error: APIError) -> str:
    """The text of `error` as Ollama would word it; the offending field is named when known."""
    detail = error.detail
    if detail.code == "model_not_found":
        found = _QUOTED.search(detail.message)
        if found is not None:
            return f'model "{found.group(1)}" not found, try pulling it first'
    if detail.param and detail.param not in detail.message:
        return f"{detail.message} ({detail.param})"
    return detail.message


def refusal_body(status: int, message: str, code: str | None) -> bytes:
    """The body of a refusal by the security middleware (401, 403, 429) in Ollama's shape."""
    return msgspec.json.encode(ErrorResponse(message))


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response[ErrorResponse]:
    """The error body with its status."""
    return Response(ErrorResponse(message), status_code=status, headers=headers)


def handle_api_error(_: Request[Any, Any, Any], exc: APIError) -> Response[ErrorResponse]:
    """APIError -> its own status, Ollama's body."""
    return error_response(exc.status, to_message(exc), exc.headers)


def handle_validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorResponse]:
    """Malformed JSON, wrong types, out-of-range values -> 400."""
    message, _param = param_from_validation(exc)
    return error_response(400, message)


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorResponse]:
    """Wrong methods, oversize bodies and other framework errors."""
    if exc.status_code >= 500:
        return handle_unexpected(request, exc)
    message = str(exc.detail)
    if exc.status_code == 405:
        message = f"method {request.method} not allowed for {request.url.path}"
    elif exc.status_code == 413:
        message = "request body too large"
    return error_response(exc.status_code, message, dict(exc.headers or {}))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorResponse]:
    """A bug: logged with its traceback, answered 500 without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error")


EXCEPTION_HANDLERS = {
    APIError: handle_api_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}
