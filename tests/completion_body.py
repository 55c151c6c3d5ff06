"""The checks every non-streamed chat or text completion passes, whichever endpoint made it."""

from __future__ import annotations

from typing import Any

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
