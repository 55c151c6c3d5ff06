"""Tool calling, structured output and log probabilities through the official OpenAI client.

The default model is tiny, so every test constrains what it may do (tool_choice required or
named, a JSON schema, temperature 0): the assertions check the protocol and the grammar, never
the model's judgement.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel

from tests.conftest import parse_sse
from tests.openai_schema import validate

WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 20}, "offset": {"type": "integer"}},
            "required": ["zone", "offset"],
        },
    },
}
TOOLS = [WEATHER, TIME]
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the weather in Paris?"}]
FIXED: dict[str, Any] = {"temperature": 0, "max_tokens": 60, "parallel_tool_calls": False}


def _parameters(name: str) -> dict[str, Any]:
    tool = next(t for t in TOOLS if t["function"]["name"] == name)
    parameters: dict[str, Any] = tool["function"]["parameters"]
    return parameters


def _check_call(call: Any) -> dict[str, Any]:
    """A tool call's arguments are JSON that matches its function's schema."""
    assert call.type == "function" and call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, _parameters(call.function.name))
    assert isinstance(arguments, dict)
    return arguments


def test_required_tool_call_then_result_round_trip(openai_client: openai.OpenAI, model_id: str) -> None:
    """tool_choice=required gives a valid call and finish_reason tool_calls; the call and its result
    fed back give an ordinary answer."""
    first = openai_client.chat.completions.create(
        model=model_id, messages=ASK, tools=TOOLS, tool_choice="required", **FIXED
    )
    validate("CreateChatCompletionResponse", first.model_dump(exclude_unset=True))
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.function.name in ("get_weather", "get_time")
    _check_call(call)
    history: list[ChatCompletionMessageParam] = [
        *ASK,
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 18, "sky": "clear"})},
    ]
    second = openai_client.chat.completions.create(
        model=model_id, messages=history, tools=TOOLS, temperature=0, max_tokens=30
    )
    validate("CreateChatCompletionResponse", second.model_dump(exclude_unset=True))
    assert second.choices[0].finish_reason in ("stop", "length", "tool_calls")
    without_result = openai_client.chat.completions.create(
        model=model_id, messages=history[:-1], tools=TOOLS, temperature=0, max_tokens=1
    )
    # The call and its result reached the prompt.
    assert second.usage is not None and first.usage is not None and without_result.usage is not None
    assert second.usage.prompt_tokens > without_result.usage.prompt_tokens + 10 > first.usage.prompt_tokens + 20


def test_named_function_is_the_one_called(openai_client: openai.OpenAI, model_id: str) -> None:
    """A named tool_choice forces exactly that function, with schema-valid arguments."""
    response = openai_client.chat.completions.create(
        model=model_id,
        messages=ASK,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        **FIXED,
    )
    (call,) = response.choices[0].message.tool_calls or []
    assert call.function.name == "get_time"
    arguments = _check_call(call)
    assert set(arguments) == {"zone", "offset"} and isinstance(arguments["offset"], int)


def test_streamed_tool_call_assembles_to_the_whole_answer(
    openai_client: openai.OpenAI, http: httpx.Client, model_id: str
) -> None:
    """Streamed tool calls: a call arrives whole, once its arguments are complete (as Ollama streams
    them), in one delta with its index, id, type, name and arguments; it equals the non-streamed call."""
    body = {"model": model_id, "messages": ASK, "tools": TOOLS, "tool_choice": "required", **FIXED}
    whole = openai_client.chat.completions.create(**body)
    response = http.post("/v1/chat/completions", json={**body, "stream": True})
    assert response.status_code == 200
    chunks = parse_sse(response.text)
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk)
    parts = [c["choices"][0] for c in chunks]
    assert parts[-1]["finish_reason"] == "tool_calls"
    assert all(p["finish_reason"] is None for p in parts[:-1])
    (delta,) = [d for p in parts for d in p["delta"].get("tool_calls", [])]
    (call,) = whole.choices[0].message.tool_calls or []
    assert delta["index"] == 0 and delta["type"] == "function" and delta["id"].startswith("call_")
    assert delta["function"] == {"name": call.function.name, "arguments": call.function.arguments}
    assert not any(p["delta"].get("content") for p in parts)


def test_auto_tool_choice_answers_with_text_or_a_valid_call(openai_client: openai.OpenAI, model_id: str) -> None:
    """tool_choice auto lets the model choose; whatever it chooses is well-formed."""
    response = openai_client.chat.completions.create(model=model_id, messages=ASK, tools=TOOLS, **FIXED)
    validate("CreateChatCompletionResponse", response.model_dump(exclude_unset=True))
    choice = response.choices[0]
    for call in choice.message.tool_calls or []:
        _check_call(call)
    assert (choice.finish_reason == "tool_calls") == bool(choice.message.tool_calls)


class City(BaseModel):
    name: str
    country: str
    population: int
    size: Literal["small", "medium", "large"]


def test_strict_json_schema_parses_into_a_pydantic_model(openai_client: openai.OpenAI, model_id: str) -> None:
    """client.chat.completions.parse with a pydantic model: the answer is that model."""
    raw = openai_client.chat.completions.with_raw_response.parse(
        model=model_id,
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        response_format=City,
        temperature=0,
        max_tokens=120,
    )
    validate("CreateChatCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    assert completion.choices[0].finish_reason == "stop"
    city = completion.choices[0].message.parsed
    assert isinstance(city, City)


def test_json_object_answer_is_a_json_object(openai_client: openai.OpenAI, model_id: str) -> None:
    """response_format json_object: the whole answer is one JSON object, streamed or not."""
    kwargs: dict[str, Any] = {
        "model": model_id,
        "messages": [{"role": "user", "content": "Give me a user record in JSON."}],
        "response_format": {"type": "json_object"},
        "temperature": 0,
        "max_tokens": 200,
    }
    whole = openai_client.chat.completions.create(**kwargs)
    assert whole.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(whole.choices[0].message.content or ""), dict)
    streamed = "".join(
        chunk.choices[0].delta.content or "" for chunk in openai_client.chat.completions.create(**kwargs, stream=True)
    )
    assert streamed == whole.choices[0].message.content


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "if": {"required": ["a"]}},
        {"type": "object", "properties": {"a": {"type": "string", "format": "credit-card"}}},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=x)"}}},
        {"type": "objekt"},
    ],
    ids=["if-then", "unknown-format", "dangling-ref", "lookahead", "invalid-type"],
)
def test_unsupported_schema_is_refused(openai_client: openai.OpenAI, model_id: str, schema: dict[str, Any]) -> None:
    """A schema the grammar cannot enforce is a 400 naming the schema, never a silent ignore."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model=model_id,
            messages=ASK,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}},
            max_tokens=4,
        )
    body = caught.value.response.json()
    validate("ErrorResponse", body)
    assert body["error"]["param"] == "response_format.json_schema.schema"


def test_unsupported_tool_parameters_are_refused(openai_client: openai.OpenAI, model_id: str) -> None:
    """A function whose parameters the grammar cannot enforce is a 400 naming that function."""
    bad: ChatCompletionToolParam = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "patternProperties": {"^x": {}}}},
    }
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_id, messages=ASK, tools=[WEATHER, bad], max_tokens=4)
    assert caught.value.response.json()["error"]["param"] == "tools[1].function.parameters"


def test_chat_logprobs_shape_streamed_and_whole(openai_client: openai.OpenAI, model_id: str) -> None:
    """logprobs: one entry per generated token, its text and bytes, a log probability <= 0; the
    streamed entries are the same as the whole answer's."""
    kwargs: dict[str, Any] = {"model": model_id, "messages": ASK, "logprobs": True, "temperature": 0, "max_tokens": 8}
    whole = openai_client.chat.completions.create(**kwargs)
    validate("CreateChatCompletionResponse", whole.model_dump(exclude_unset=True))
    assert whole.usage is not None
    entries = (whole.choices[0].logprobs and whole.choices[0].logprobs.content) or []
    assert len(entries) == whole.usage.completion_tokens
    assert "".join(e.token for e in entries) == whole.choices[0].message.content
    for entry in entries:
        assert entry.logprob <= 0 and math.isfinite(entry.logprob)
        assert bytes(entry.bytes or []) == entry.token.encode()
        assert entry.top_logprobs == []
    streamed = [
        e
        for chunk in openai_client.chat.completions.create(**kwargs, stream=True)
        for e in ((chunk.choices and chunk.choices[0].logprobs and chunk.choices[0].logprobs.content) or [])
    ]
    assert [(e.token, round(e.logprob, 3)) for e in streamed] == [(e.token, round(e.logprob, 3)) for e in entries]


def test_legacy_completion_logprobs_shape(openai_client: openai.OpenAI, model_id: str) -> None:
    """Legacy logprobs=0: parallel lists of tokens, log probabilities and text offsets."""
    response = openai_client.completions.create(
        model=model_id, prompt="The capital of France is", logprobs=0, temperature=0, max_tokens=6, echo=True
    )
    validate("CreateCompletionResponse", response.model_dump(exclude_unset=True))
    choice = response.choices[0]
    lp = choice.logprobs
    assert lp is not None and lp.tokens and lp.token_logprobs and lp.text_offset and lp.top_logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset) == 6
    echo = "The capital of France is"
    for token, offset in zip(lp.tokens, lp.text_offset, strict=True):
        assert choice.text[offset : offset + len(token)] == token
    assert lp.text_offset[0] == len(echo)
    assert [next(iter(top)) for top in lp.top_logprobs] == lp.tokens


# --- a turn of calls: cut calls, repeated calls, the call limit (issue 17) ----------------------

WEATHER_ONLY = [WEATHER]


def _single_call_tokens(openai_client: openai.OpenAI, model_id: str) -> int:
    one = openai_client.chat.completions.create(
        model=model_id, messages=ASK, tools=WEATHER_ONLY, tool_choice="required", **FIXED
    )
    assert one.usage is not None and one.choices[0].finish_reason == "tool_calls"
    tokens: int = one.usage.completion_tokens
    return tokens


def test_a_cut_call_never_leaks_markup_whole_or_streamed(
    openai_client: openai.OpenAI, http: httpx.Client, model_id: str
) -> None:
    """max_tokens cutting a turn of calls anywhere (inside the first call, between calls, inside the
    markup that opens the next): no `<tool_` or other markup reaches content, whole or streamed, and
    only whole calls with complete, schema-valid arguments are returned."""
    n = _single_call_tokens(openai_client, model_id)
    for max_tokens in range(n - 2, n + 10):
        body: dict[str, Any] = {
            "model": model_id,
            "messages": ASK,
            "tools": WEATHER_ONLY,
            "tool_choice": "required",
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        whole = openai_client.chat.completions.create(**body).choices[0]
        assert not whole.message.content, (max_tokens, whole.message.content)
        for call in whole.message.tool_calls or []:
            _check_call(call)
        assert whole.finish_reason == ("tool_calls" if whole.message.tool_calls else "length")
        parts = [
            c["choices"][0] for c in parse_sse(http.post("/v1/chat/completions", json={**body, "stream": True}).text)
        ]
        assert not "".join(p["delta"].get("content") or "" for p in parts), max_tokens
        streamed = [d for p in parts for d in p["delta"].get("tool_calls", [])]
        assert [d["function"]["arguments"] for d in streamed] == [
            c.function.arguments for c in whole.message.tool_calls or []
        ]
        assert parts[-1]["finish_reason"] == whole.finish_reason


def test_required_with_parallel_calls_ends_at_a_repeated_call(openai_client: openai.OpenAI, model_id: str) -> None:
    """tool_choice required with the default parallel_tool_calls: the tiny model repeats its call;
    the repeat ends the turn (dropped, finish_reason tool_calls) and generation stops there, far
    below max_tokens, instead of repeating the call to the limit."""
    n = _single_call_tokens(openai_client, model_id)
    response = openai_client.chat.completions.create(
        model=model_id, messages=ASK, tools=WEATHER_ONLY, tool_choice="required", temperature=0, max_tokens=400
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls: list[Any] = list(choice.message.tool_calls or [])
    assert 1 <= len(calls) <= 8
    keys = [(c.function.name, json.dumps(_check_call(c), sort_keys=True)) for c in calls]
    assert len(set(keys)) == len(keys), "no call repeats an earlier one"
    assert response.usage is not None
    # The repeat is the last call generated: the engine request was cancelled right after it.
    assert response.usage.completion_tokens <= (len(calls) + 1) * (n + 4)
    streamed = list(
        openai_client.chat.completions.create(
            model=model_id,
            messages=ASK,
            tools=WEATHER_ONLY,
            tool_choice="required",
            temperature=0,
            max_tokens=400,
            stream=True,
        )
    )
    assert streamed[-1].choices[0].finish_reason == "tool_calls"
    deltas: list[Any] = [d for c in streamed if c.choices for d in c.choices[0].delta.tool_calls or []]
    arguments = [d.function.arguments for d in deltas]
    assert arguments == [c.function.arguments for c in calls]


def test_tools_with_a_response_format_give_one_call_or_the_typed_answer(
    openai_client: openai.OpenAI, model_id: str
) -> None:
    """tools and response_format together (an agent's tools and its output type): one
    schema-valid call, or content that parses into the format's model; never both, never a 400."""
    completion = openai_client.chat.completions.parse(
        model=model_id,
        messages=[{"role": "user", "content": "Describe Paris."}],
        tools=[{"type": "function", "function": {**WEATHER["function"], "strict": True}}],
        response_format=City,
        temperature=0,
        max_tokens=120,
    )
    message = completion.choices[0].message
    if message.tool_calls:
        (call,) = message.tool_calls
        _check_call(call)
        assert completion.choices[0].finish_reason == "tool_calls" and not message.content
    else:
        assert isinstance(message.parsed, City)
