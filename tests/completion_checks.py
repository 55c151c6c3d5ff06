"""The checks every chat or text completion passes, whichever endpoint made it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import parse_sse
from tests.openai_schema import validate


def checked_body(response: Any, schema: str, object_type: str, model: str, id_prefix: str) -> dict[str, Any]:
    """`response` (an OpenAI client result) as the wire dict, schema-checked, with consistent usage."""
    body: dict[str, Any] = response.to_dict()
    validate(schema, body)
    assert body["object"] == object_type
    assert body["model"] == model
    assert body["id"].startswith(id_prefix)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    return body


def post_sse(http: httpx.Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST a streamed request and return its events, checking it was served as SSE with status 200."""
    with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        content_type = response.headers.get("content-type", "")
        raw = response.read().decode()
    assert content_type.startswith("text/event-stream"), f"SSE served as {content_type!r}"
    return parse_sse(raw)
