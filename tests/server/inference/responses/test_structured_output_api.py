"""Structured output in the Responses API (`text.format` json_schema / json_object), through the
official `openai` client's `responses.parse` and `responses.stream` helpers (issue 17).

The tiny default model cannot be trusted to write JSON on its own: every assertion here holds only
because the grammar enforces the format, the same one chat's `response_format` uses.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from tests.conftest import HearthServer
from tests.openai_schema import validate


class City(BaseModel):
    name: str
    country: str
    population: int
    size: Literal["small", "medium", "large"]


ASK = "Describe Paris as JSON."


def test_parse_with_a_pydantic_model(openai_client: openai.OpenAI, model_id: str) -> None:
    """responses.parse(text_format=City): output_text is JSON of that model, parsed by the client;
    the response echoes the format."""
    raw = openai_client.responses.with_raw_response.parse(
        model=model_id, input=ASK, text_format=City, temperature=0, max_output_tokens=120
    )
    validate("Response", raw.http_response.json())
    parsed = raw.parse()
    assert parsed.status == "completed"
    assert isinstance(parsed.output_parsed, City)
    assert City.model_validate_json(parsed.output_text) == parsed.output_parsed
    assert parsed.text is not None and parsed.text.format is not None
    assert parsed.text.format.type == "json_schema"


def test_streamed_parse_equals_the_whole_answer(openai_client: openai.OpenAI, model_id: str) -> None:
    """responses.stream(text_format=City): the deltas assemble into the same JSON as a whole
    response, and the final response is parsed."""
    kwargs: dict[str, Any] = {"model": model_id, "input": ASK, "temperature": 0, "max_output_tokens": 120}
    whole = openai_client.responses.parse(text_format=City, **kwargs)
    with openai_client.responses.stream(text_format=City, **kwargs) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == whole.output_text == final.output_text
    assert final.output_parsed == whole.output_parsed


def test_json_object_is_one_json_object(openai_client: openai.OpenAI, model_id: str) -> None:
    """text.format json_object: the output text is one JSON object."""
    response = openai_client.responses.create(
        model=model_id,
        input="Give me a user record in JSON.",
        text={"format": {"type": "json_object"}},
        temperature=0,
        max_output_tokens=200,
    )
    assert response.status == "completed"
    assert isinstance(json.loads(response.output_text), dict)


def test_a_plain_json_schema_is_enforced(openai_client: openai.OpenAI, model_id: str) -> None:
    """A json_schema format written by hand (not strict) is enforced all the same."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"colors": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3}},
        "required": ["colors"],
    }
    response = openai_client.responses.create(
        model=model_id,
        input="Name some colors.",
        text={"format": {"type": "json_schema", "name": "colors", "schema": schema}},
        temperature=0,
        max_output_tokens=80,
    )
    jsonschema.validate(json.loads(response.output_text), schema)


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ({"format": {"type": "json_schema", "name": "x", "schema": {"type": "objekt"}}}, "text.format.schema"),
        (
            {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object", "not": {"type": "null"}}}},
            "text.format.schema",
        ),
        ({"format": {"type": "json_schema", "name": "bad name!", "schema": {"type": "object"}}}, "text.format.name"),
    ],
    ids=["invalid-type", "unsupported-keyword", "bad-name"],
)
def test_a_format_that_cannot_be_enforced_is_refused(
    hearth_server: HearthServer, model_id: str, text: dict[str, Any], param: str
) -> None:
    """A schema the grammar cannot enforce is a 400 naming it, never a silent ignore or a 500."""
    body = {"model": model_id, "input": "Hi", "text": text, "max_output_tokens": 4}
    response = httpx.post(f"{hearth_server.api_url}/responses", json=body, timeout=60)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["param"] == param


def test_a_format_with_tools_gives_one_call_or_the_json_answer(openai_client: openai.OpenAI, model_id: str) -> None:
    """Tools and a JSON format together (the Agents SDK's tools with an `output_type`): the output
    is one well-formed function call or the answer as JSON of the format; with the tool's result
    and tool_choice none, the JSON answer."""
    tool = {
        "type": "function",
        "name": "get_population",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    kwargs: dict[str, Any] = {"model": model_id, "tools": [tool], "temperature": 0, "max_output_tokens": 120}
    first = openai_client.responses.parse(input="How many people live in Paris?", text_format=City, **kwargs)
    assert first.status == "completed"
    calls = [item for item in first.output if item.type == "function_call"]
    if calls:
        (call,) = calls
        assert call.name == "get_population" and isinstance(json.loads(call.arguments)["city"], str)
        assert not first.output_text
    else:
        assert isinstance(first.output_parsed, City)
    result: list[Any] = [
        {"type": "function_call", "call_id": "call_1", "name": "get_population", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"population": 2100000}'},
    ]
    final = openai_client.responses.parse(
        input=[{"role": "user", "content": "How many people live in Paris?"}, *result],
        text_format=City,
        tool_choice="none",
        **kwargs,
    )
    assert isinstance(final.output_parsed, City)
