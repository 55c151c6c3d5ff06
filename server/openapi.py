"""OpenAPI metadata shared by the routes: the error responses every endpoint can give."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from server.errors import ErrorResponse


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorResponse, description=description, generate_examples=False)


ERRORS: dict[int, ResponseSpec] = {
    400: _error("Invalid request (malformed JSON, wrong types, out-of-range values, context too long)"),
    404: _error("Unknown model or route"),
    413: _error("Request body too large"),
    503: _error("The model is not available"),
}
