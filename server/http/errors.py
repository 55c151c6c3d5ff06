"""One error mapping: every failure leaves the server in OpenAI's error shape.

`{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}` with the HTTP status OpenAI
uses. Handlers raise `APIError`; framework errors (validation, unknown route, wrong method, body
too large) and anything unexpected are translated here and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from adapters.base import EngineError
from server.limits.refusal import LimitExceeded

log = logging.getLogger(__name__)


class ErrorDetail(msgspec.Struct):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(msgspec.Struct):
    """The body of every error response."""

    error: ErrorDetail


class APIError(Exception):
    """An error with an HTTP status, in OpenAI's vocabulary."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = ErrorDetail(message=message, type=type, param=param, code=code)
        self.headers = headers or {}


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    """400 invalid_request_error."""
    return APIError(400, message, param=param, code=code)


def model_not_found(model: str) -> APIError:
    """404 for a model id that is not served here."""
    return APIError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def from_engine_error(error: EngineError, param: str = "messages") -> APIError:
    """Map an engine's failure to the status a client expects; `param` names the prompt's field."""
    if error.code == "context_length_exceeded":
        return APIError(400, error.message, param=param, code="context_length_exceeded")
    if error.code == "invalid_request":
        return APIError(400, error.message, param=param)
    if error.code == "internal_error":
        log.error("engine error: %s", error.message)
        return APIError(500, "The server had an error while processing your request.", type="server_error")
    return APIError(503, error.message, type="server_error", code=error.code)


_STATUS_TYPES = {
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def param_from_validation(exc: ValidationException) -> tuple[str, str | None]:
    """Pull the message and the offending field out of Litestar's validation error."""
    items = exc.extra if isinstance(exc.extra, list) else [exc.extra] if isinstance(exc.extra, dict) else []
    for item in items:
        if isinstance(item, dict) and item.get("message"):
            key = str(item["key"]) if item.get("key") else None
            if key is not None:
                key = key.removeprefix("data").removeprefix(".").removeprefix("$.") or None
            if (key is None and item.get("source") == "body") or "malformed" in str(item["message"]):
                return f"We could not parse the JSON body of your request: {item['message']}", None
            where = f" (at `{key}`)" if key else ""
            return f"Invalid request body: {item['message']}{where}", key
    return f"Invalid request body: {exc.detail}", None


def from_validation_error(exc: msgspec.ValidationError) -> APIError:
    """A body that msgspec refused, outside an HTTP route (batch lines), as the route says it."""
    message, _, where = str(exc).partition(" - at `")
    key = where.rstrip("`").removeprefix("$").removeprefix(".") or None
    suffix = f" (at `{key}`)" if key else ""
    return invalid_request(f"Invalid request body: {message}{suffix}", param=key)


def error_response(status: int, detail: ErrorDetail, headers: dict[str, str] | None = None) -> Response[ErrorResponse]:
    """Build the error response for a status and error object."""
    return Response(ErrorResponse(detail), status_code=status, headers=headers)


def handle_api_error(_: Request[Any, Any, Any], exc: APIError) -> Response[ErrorResponse]:
    """APIError -> its own status and body."""
    return error_response(exc.status, exc.detail, exc.headers)


def handle_validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorResponse]:
    """Malformed JSON, wrong types, out-of-range values -> 400 invalid_request_error."""
    message, param = param_from_validation(exc)
    return error_response(400, ErrorDetail(message=message, type="invalid_request_error", param=param))


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorResponse]:
    """Unknown routes, wrong methods, oversize bodies and other framework errors."""
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    kind, code = _STATUS_TYPES.get(status, ("invalid_request_error", None))
    message = exc.detail
    if status == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
    elif status == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}"
    elif status == 413:
        message = "The request body is too large."
    headers = {k: v for k, v in (exc.headers or {}).items()}
    return error_response(status, ErrorDetail(message=message, type=kind, code=code), headers)


def handle_limit_exceeded(_: Request[Any, Any, Any], exc: LimitExceeded) -> Response[ErrorResponse]:
    """A request past one of the limits -> 400 (413 for sizes), naming the limit's setting."""
    detail = ErrorDetail(message=exc.message, type="invalid_request_error", param=exc.param, code=exc.code)
    return error_response(exc.status, detail)


def handle_recursion_error(request: Request[Any, Any, Any], exc: RecursionError) -> Response[ErrorResponse]:
    """Nesting that got past the limits and exhausted the stack somewhere: the client's input,
    not a server fault (the limits should have caught it, hence the warning)."""
    log.warning("recursion limit reached on %s %s", request.method, request.url.path)
    message = "The request nests too deeply to be processed."
    return error_response(400, ErrorDetail(message=message, type="invalid_request_error", code="nesting_too_deep"))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorResponse]:
    """A bug: log it with its traceback and answer 500 without leaking internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    detail = ErrorDetail(message="The server had an error while processing your request.", type="server_error")
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, detail)


EXCEPTION_HANDLERS = {
    APIError: handle_api_error,
    ValidationException: handle_validation_error,
    LimitExceeded: handle_limit_exceeded,
    RecursionError: handle_recursion_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}
