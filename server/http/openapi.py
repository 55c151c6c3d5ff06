"""OpenAPI metadata shared by the routes: error responses, and the SSE form of streamed answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema

from server.http.errors import ErrorResponse
from server.http.sse import MEDIA_TYPE


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorResponse, description=description, generate_examples=False)


NOT_FOUND: dict[int, ResponseSpec] = {400: _error("Invalid request"), 404: _error("Unknown model")}

ERRORS: dict[int, ResponseSpec] = {
    400: _error("Invalid request (malformed JSON, wrong types, out-of-range values, context too long)"),
    404: _error("Unknown model"),
    413: _error("Request body too large"),
    503: _error("The model is not available"),
}


@dataclass
class StreamingOperation(Operation):
    """An operation whose 200 answer is JSON, or server-sent events when the request asks for a stream."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content[MEDIA_TYPE] = OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING, description="`data: <chunk JSON>` events, then `data: [DONE]`")
            )


def streaming_post(path: str, summary: str, answer: type[Any], description: str) -> HTTPRouteHandler:
    """`@post` for an endpoint answering `answer` as JSON, or with `stream: true` server-sent events
    (`description` says which)."""
    ok = ResponseSpec(data_container=answer, description=description)
    return post(
        path, summary=summary, status_code=200, operation_class=StreamingOperation, responses={**ERRORS, 200: ok}
    )
