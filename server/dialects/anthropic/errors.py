"""The Anthropic dialect's one error mapping: `{"type": "error", "error": {"type", "message"}}`.

The server's own handlers (server/http/errors.py) decide the status and the message of every
failure; this module only reshapes their answers into Anthropic's shape and vocabulary, for the
routes of this dialect (installed as their router's exception handlers), for a stream's `error`
event, and for the security middleware's refusals of this dialect's paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response

from server.dialects.anthropic.protocol import AnthropicErrorBody, AnthropicErrorResponse
from server.http import errors as http_errors
from server.http.errors import APIError, ErrorDetail

# Anthropic's error types by status; 503 (a model that cannot be reached, a queue that timed out)
# is answered as Anthropic's 529 overloaded_error, which its clients retry.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_STATUS = {503: 529}

Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def to_status(status: int) -> int:
    """The status Anthropic uses where Hearth answers `status`."""
    return _STATUS.get(status, status)


def to_error(status: int, detail: ErrorDetail) -> AnthropicErrorResponse:
    """Anthropic's error body for an OpenAI-shaped error of `status`; the field at fault, when
    known and not already named, leads the message as Anthropic writes it (`max_tokens: ...`)."""
    status = to_status(status)
    kind = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    message = detail.message
    if detail.param and detail.param not in message:
        message = f"{detail.param}: {message}"
    return AnthropicErrorResponse(AnthropicErrorBody(type=kind, message=message))


def refusal_body(status: int, message: str, code: str | None) -> bytes:
    """The body of a refusal by the security middleware (401, 403, 429), in this dialect's shape."""
    return msgspec.json.encode(to_error(status, ErrorDetail(message=message, type="", code=code)))


def stream_error(error: APIError) -> AnthropicErrorResponse:
    """The data of the `error` event that ends a stream which fails after it started."""
    return to_error(error.status, error.detail)


def _reshaped(handler: Handler) -> Handler:
    def handle(request: Request[Any, Any, Any], exc: Any) -> Response[Any]:
        answer = handler(request, exc)
        detail = answer.content.error if isinstance(answer.content, http_errors.ErrorResponse) else None
        if detail is None:
            return answer
        status = answer.status_code or 500
        return Response(to_error(status, detail), status_code=to_status(status), headers=answer.headers)

    return handle


# The router's exception handlers: the server's own, each answer reshaped.
EXCEPTION_HANDLERS: dict[type[Exception], Handler] = {
    kind: _reshaped(handler)  # type: ignore[arg-type]
    for kind, handler in http_errors.EXCEPTION_HANDLERS.items()
}
