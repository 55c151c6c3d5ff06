"""Checks every whole answer of the chat and legacy completions API tests makes."""

from __future__ import annotations

from typing import Any

from tests.openai_schema import validate


def check_answer(body: dict[str, Any], schema: str, kind: str, model: str, prefix: str) -> dict[str, Any]:
    """Validate `body` against OpenAI's `schema`, check its object, model, id and usage sums, and
    return its usage."""
    validate(schema, body)
    assert body["object"] == kind
    assert body["model"] == model
    assert body["id"].startswith(prefix)
    usage: dict[str, Any] = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    return usage
