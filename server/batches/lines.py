"""One batch line: checked when the batch is validated, run through the same handler as its HTTP
route when its turn comes, so that a line's body is exactly what the route would have answered.

The handlers are the routes' own functions (`handler.fn`), called with no HTTP request (no
disconnect to watch) and a door that admits every call at the batch priority.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from server.batches.protocol import ENDPOINTS, BatchError, InputLine, LineError, LineResponse, OutputLine
from server.http.errors import APIError, ErrorResponse, from_validation_error, invalid_request
from server.inference.call import EngineDoor
from server.inference.chat import route as chat
from server.inference.chat.protocol import ChatCompletionRequest
from server.inference.completions import route as completions
from server.inference.completions.protocol import CompletionRequest
from server.inference.embeddings import route as embeddings
from server.inference.embeddings.protocol import EmbeddingRequest
from server.inference.responses import protocol as responses_protocol
from server.inference.responses import route as responses
from server.inference.responses.history import ResponseStore
from server.limits.json_body import json_depth_exceeds
from server.limits.refusal import LimitExceeded
from server.settings import LimitSettings

Handler = Callable[..., Awaitable[Any]]


class LineInterrupted(Exception):
    """The server began shutting down while the line ran: it is not answered, and runs again after
    the restart."""


_ROUTES: dict[str, tuple[type[Any], Handler]] = {
    "/v1/chat/completions": (ChatCompletionRequest, chat.create_chat_completion.fn),
    "/v1/completions": (CompletionRequest, completions.create_completion.fn),
    "/v1/embeddings": (EmbeddingRequest, embeddings.create_embeddings.fn),
    "/v1/responses": (responses_protocol.CreateResponse, responses.create_response.fn),
}
assert set(_ROUTES) == set(ENDPOINTS)
# The routes that check their request against the limits (docs/security.md) take them as `limits`.
_BOUNDED = frozenset({"/v1/chat/completions", "/v1/responses"})


class _Line(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A line as decoded for checking: the body kept raw, decoded later by its endpoint's type."""

    custom_id: str
    method: str
    url: str
    body: msgspec.Raw


def check_line(
    number: int, raw: bytes, endpoint: str, seen: set[str], limits: LimitSettings
) -> tuple[str | None, bytes | None, BatchError | None]:
    """(custom_id, the line to run, None) for a good line; (custom_id or None, None, why) for a
    malformed one, whose problem goes to the error file and lets the rest run. A line nested past
    `limits.max_json_depth` is refused before it is decoded, as an HTTP body would be."""
    if json_depth_exceeds(raw, limits.max_json_depth):
        why = f"line {number}: nested deeper than {limits.max_json_depth} (setting `max_json_depth`)"
        return None, None, BatchError(code="max_json_depth_exceeded", message=why, line=number)
    try:
        line = msgspec.json.decode(raw, type=InputLine)
    except msgspec.DecodeError as exc:
        custom_id = _custom_id_of(raw)
        return custom_id, None, BatchError(code="invalid_request", message=f"line {number}: {exc}", line=number)
    if line.url != endpoint:
        why = f"line {number}: url {line.url} differs from the batch's endpoint {endpoint}"
        return line.custom_id, None, BatchError(code="mismatched_endpoint", message=why, param="url", line=number)
    if line.custom_id in seen:
        why = f"line {number}: custom_id {line.custom_id!r} is used by an earlier line"
        return line.custom_id, None, BatchError(code="duplicate_custom_id", message=why, param="custom_id", line=number)
    seen.add(line.custom_id)
    return line.custom_id, raw, None


def _custom_id_of(raw: bytes) -> str | None:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    custom_id = value.get("custom_id") if isinstance(value, dict) else None
    return custom_id if isinstance(custom_id, str) else None


def error_line(custom_id: str | None, code: str, message: str) -> bytes:
    """An error-file line for a request that did not run (malformed, expired, cancelled)."""
    line = OutputLine(
        id=f"batch_req_{uuid.uuid4().hex[:24]}",
        custom_id=custom_id,
        response=None,
        error=LineError(code=code, message=message),
    )
    return msgspec.json.encode(line)


async def run_line(raw: bytes, door: EngineDoor, store: ResponseStore, limits: LimitSettings) -> tuple[bytes, bool]:
    """Run one checked line; (its output-file line, whether it belongs in the error file)."""
    line = msgspec.json.decode(raw, type=_Line)
    request_type, handler = _ROUTES[line.url]
    try:
        data = msgspec.json.decode(line.body, type=request_type)
        if getattr(data, "stream", False):
            raise invalid_request("stream is not supported in a batch.", param="stream")
        extra: dict[str, Any] = {"response_store": store} if line.url == "/v1/responses" else {}
        if line.url in _BOUNDED:
            extra["limits"] = limits
        result = await handler(data=data, request=None, door=door, **extra)
        status, body = 200, msgspec.json.encode(result)
    except msgspec.ValidationError as exc:
        status, body = 400, _error_body(from_validation_error(exc))
    except LimitExceeded as exc:
        status, body = exc.status, _error_body(APIError(exc.status, exc.message, param=exc.param, code=exc.code))
    except APIError as exc:
        if exc.detail.code == "server_shutting_down":
            raise LineInterrupted from exc
        status, body = exc.status, _error_body(exc)
    response = LineResponse(status_code=status, request_id=f"req_{uuid.uuid4().hex[:24]}", body=msgspec.Raw(body))
    out = OutputLine(id=f"batch_req_{uuid.uuid4().hex[:24]}", custom_id=line.custom_id, response=response, error=None)
    return msgspec.json.encode(out), status >= 400


def _error_body(error: APIError) -> bytes:
    return msgspec.json.encode(ErrorResponse(error=error.detail))
