"""Which JSON schemas structured output accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.http.errors import APIError
from server.inference.schemas import check_schema


def test_supported_schema_is_serialized() -> None:
    schema = {
        "type": "object",
        "$defs": {"p": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}},
        "properties": {"a": {"$ref": "#/$defs/p"}, "b": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "required": ["a"],
        "additionalProperties": False,
        "title": "T",
    }
    assert json.loads(check_schema(schema, "s")) == schema


@pytest.mark.parametrize(
    "schema",
    [
        [],
        {"type": 5},
        {"allOf": [{"type": "object"}]},
        {"properties": {"a": {"uniqueItems": True}}},
        {"items": {"multipleOf": 2}},
        {"$ref": "http://example.com/s.json"},
        {"anyOf": [{"$ref": "#/definitions/x"}]},
        {"type": "string", "pattern": "(a)\\1"},
    ],
)
def test_unsupported_schemas_are_400(schema: Any) -> None:
    with pytest.raises(APIError) as info:
        check_schema(schema, "param")
    assert info.value.status == 400 and info.value.detail.param == "param"
