"""End-to-end tests of the Responses API (POST/GET/DELETE /v1/responses) through the official
`openai` client; every body and stream event is validated against OpenAI's schema."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import HearthServer
from tests.openai_schema import validate

GREEDY: dict[str, Any] = {"temperature": 0, "max_output_tokens": 16}
STREAM_ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
STREAM_END = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


def respond(client: openai.OpenAI, model: str, **kwargs: Any) -> dict[str, Any]:
    """A non-streamed response, schema-checked, as the wire dict."""
    response = client.responses.create(model=model, **{**GREEDY, **kwargs})
    body: dict[str, Any] = response.to_dict()
    validate("Response", body)
    assert body["object"] == "response"
    assert body["id"].startswith("resp_")
    assert body["model"] == model
    (item,) = body["output"]
    assert item["type"] == "message" and item["role"] == "assistant"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens"] > 0
    return body


def text_of(body: dict[str, Any]) -> str:
    """The output text of a response body."""
    return "".join(part["text"] for item in body["output"] for part in item["content"])


def test_text_input_and_instructions(openai_client: openai.OpenAI, model_id: str) -> None:
    """Plain text input gives a message; instructions are echoed back and reach the model as the
    system message: the prompts are the chat completion ones, token for token."""
    plain = respond(openai_client, model_id, input="Name a color.")
    assert plain["status"] in ("completed", "incomplete")
    assert text_of(plain)
    assert plain["instructions"] is None
    instructed = respond(openai_client, model_id, input="Name a color.", instructions="Answer in one word.")
    assert instructed["instructions"] == "Answer in one word."
    chat = openai_client.chat.completions.create(
        model=model_id,
        messages=[{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Name a color."}],
        max_tokens=1,
    )
    assert chat.usage is not None
    assert instructed["usage"]["input_tokens"] == chat.usage.prompt_tokens
    plain_chat = openai_client.chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": "Name a color."}], max_tokens=1
    )
    assert plain_chat.usage is not None
    assert plain["usage"]["input_tokens"] == plain_chat.usage.prompt_tokens
    short = respond(openai_client, model_id, input="Tell me a long story.", max_output_tokens=2)
    assert short["status"] == "incomplete"
    assert short["incomplete_details"] == {"reason": "max_output_tokens"}
    assert short["usage"]["output_tokens"] == 2


def test_ignore_eos_runs_to_max_output_tokens(openai_client: openai.OpenAI, model_id: str) -> None:
    """`ignore_eos` (extra_body, as in chat completions) keeps generating past end-of-sequence:
    a short answer runs on to max_output_tokens and is `incomplete`."""
    body = respond(openai_client, model_id, input="Say OK.", max_output_tokens=24, extra_body={"ignore_eos": True})
    assert body["usage"]["output_tokens"] == 24
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}


def test_message_input_matches_text_input(openai_client: openai.OpenAI, model_id: str) -> None:
    """A user message item is the same prompt as the same text given as a string."""
    as_text = respond(openai_client, model_id, input="What is 2 + 2?")
    as_message = respond(
        openai_client,
        model_id,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "What is 2 + 2?"}]}],
    )
    assert text_of(as_text) == text_of(as_message)
    assert as_text["usage"] == as_message["usage"]


def test_two_turn_conversation(openai_client: openai.OpenAI, model_id: str) -> None:
    """previous_response_id continues a stored conversation: the second turn sees the first turn's
    input and answer, exactly as if the whole history were sent as messages."""
    first = respond(openai_client, model_id, input="My name is Ada. Say hello.")
    second = respond(openai_client, model_id, input="What is my name?", previous_response_id=first["id"], store=False)
    assert second["previous_response_id"] == first["id"]
    replayed = respond(
        openai_client,
        model_id,
        input=[
            {"role": "user", "content": "My name is Ada. Say hello."},
            {"role": "assistant", "content": text_of(first)},
            {"role": "user", "content": "What is my name?"},
        ],
    )
    assert second["usage"]["input_tokens"] == replayed["usage"]["input_tokens"]
    assert text_of(second) == text_of(replayed)
    # store=False: the second response was not kept.
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(second["id"])


def test_retrieve_input_items_and_delete(openai_client: openai.OpenAI, model_id: str) -> None:
    """GET returns the stored response unchanged; input_items lists its input; DELETE forgets it."""
    created = respond(openai_client, model_id, input="Say yes.", metadata={"case": "retrieve"})
    fetched = openai_client.responses.retrieve(created["id"]).to_dict()
    validate("Response", fetched)
    assert fetched == created
    assert fetched["metadata"] == {"case": "retrieve"}
    items: list[dict[str, Any]] = [i.to_dict() for i in openai_client.responses.input_items.list(created["id"]).data]
    assert [(item["role"], item["content"][0]["text"]) for item in items] == [("user", "Say yes.")]
    raw = openai_client.responses.input_items.with_raw_response.list(created["id"]).http_response.json()
    validate("ResponseItemList", raw)
    assert raw["first_id"] == raw["last_id"] == raw["data"][0]["id"]
    openai_client.responses.delete(created["id"])
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.responses.retrieve(created["id"])
    assert created["id"] in caught.value.message


def test_streaming_event_order(openai_client: openai.OpenAI, model_id: str) -> None:
    """The typed events arrive in OpenAI's order with consecutive sequence numbers, each valid
    against ResponseStreamEvent; the deltas add up to the final text, which equals the non-streamed
    answer at temperature 0; the completed response is stored."""
    events: list[dict[str, Any]] = []
    with openai_client.responses.create(model=model_id, input="Count to five.", stream=True, **GREEDY) as stream:
        for event in stream:
            data: dict[str, Any] = event.to_dict()
            validate("ResponseStreamEvent", data)
            events.append(data)
    kinds = [e["type"] for e in events]
    assert kinds[:4] == STREAM_ORDER
    assert kinds[-4:-1] == STREAM_END
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert set(kinds[4:-4]) <= {"response.output_text.delta"} and len(kinds) > 8
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert events[-4]["text"] == deltas
    final = events[-1]["response"]
    validate("Response", final)
    assert text_of(final) == deltas
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    item_ids = {e.get("item_id") for e in events if "item_id" in e} | {events[2]["item"]["id"]}
    assert item_ids == {final["output"][0]["id"]}
    whole = respond(openai_client, model_id, input="Count to five.")
    assert text_of(whole) == deltas
    assert openai_client.responses.retrieve(final["id"]).to_dict() == final


def test_stream_wire_format(hearth_server: HearthServer, model_id: str) -> None:
    """Each event is `event: <type>` then `data: <json>` of the same type, as OpenAI frames them."""
    body = {"model": model_id, "input": "Hi", "stream": True, **GREEDY}
    with httpx.stream("POST", f"{hearth_server.api_url}/responses", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join(response.iter_text())
    blocks = [b for b in raw.split("\n\n") if b]
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ")
        assert json.loads(data_line.removeprefix("data: "))["type"] == event_line.removeprefix("event: ")


@pytest.mark.parametrize(
    ("body", "param", "phrase"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "function tools"),
        ({"tools": [{"type": "function", "name": "bad name!", "parameters": {}}]}, "tools[0]", "invalid"),
        ({"tool_choice": "required"}, "tool_choice", "requires tools"),
        ({"previous_response_id": "resp_missing"}, "previous_response_id", "not found"),
        ({"input": []}, "input", "empty"),
        ({"input": [{"type": "function_call_output", "output": "1"}]}, "input[0]", "call_id"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0]", "reasoning"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input[0].content[0].type",
            "text",
        ),
        ({"input": [{"role": "robot", "content": "hi"}]}, "input[0]", "robot"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema", "needs a schema"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type", "json_schema"),
        ({"background": True}, "background", "Background"),
        ({"temperature": 3}, "temperature", "temperature"),
    ],
)
def test_refusals(hearth_server: HearthServer, model_id: str, body: dict[str, Any], param: str, phrase: str) -> None:
    """What the server does not do is a clear 4xx in OpenAI's error shape, never a 500."""
    request = {"model": model_id, "input": "Hi", **body}
    response = httpx.post(f"{hearth_server.api_url}/responses", json=request, timeout=60)
    assert response.status_code in (400, 404), response.text[:300]
    error = response.json()["error"]
    assert error["param"] == param
    assert phrase.lower() in error["message"].lower()


def test_unknown_ids(hearth_server: HearthServer) -> None:
    """GET, DELETE and input_items of an unknown id are 404s in OpenAI's shape."""
    for method, path in [("GET", ""), ("DELETE", ""), ("GET", "/input_items")]:
        response = httpx.request(method, f"{hearth_server.api_url}/responses/resp_nope{path}", timeout=10)
        assert response.status_code == 404
        assert "resp_nope" in response.json()["error"]["message"]


WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
TOOL_CALL: dict[str, Any] = {
    "temperature": 0,
    "max_output_tokens": 40,
    "tools": [WEATHER_TOOL],
    "tool_choice": "required",
    "parallel_tool_calls": False,
}


def _without_ids(items: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k not in ("id", "call_id")} for item in items]


def test_function_call_round_trip(openai_client: openai.OpenAI, model_id: str) -> None:
    """With a required tool the output is a function_call item whose arguments are JSON matching
    the schema (the chat machinery's grammar); feeding its output back with previous_response_id
    gives a message, and the stored conversation holds the call and its result."""
    first = openai_client.responses.create(model=model_id, input="What is the weather in Paris?", **TOOL_CALL)
    body: dict[str, Any] = first.to_dict()
    validate("Response", body)
    assert body["tools"][0]["name"] == "get_weather" and body["tool_choice"] == "required"
    calls = [item for item in body["output"] if item["type"] == "function_call"]
    assert len(calls) == 1, body["output"]
    (call,) = calls
    assert call["name"] == "get_weather" and call["status"] == "completed"
    assert call["call_id"].startswith("call_") and call["id"].startswith("fc_")
    arguments = json.loads(call["arguments"])
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
    second = openai_client.responses.create(
        model=model_id,
        previous_response_id=body["id"],
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": '{"sky": "sunny"}'}],
        temperature=0,
        max_output_tokens=12,
    )
    follow: dict[str, Any] = second.to_dict()
    validate("Response", follow)
    assert [item["type"] for item in follow["output"]] == ["message"]
    replayed: dict[str, Any] = openai_client.responses.create(
        model=model_id,
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call["call_id"],
                "name": "get_weather",
                "arguments": call["arguments"],
            },
            {"type": "function_call_output", "call_id": call["call_id"], "output": '{"sky": "sunny"}'},
        ],
        temperature=0,
        max_output_tokens=12,
    ).to_dict()
    assert replayed["usage"] == follow["usage"]
    items = openai_client.responses.input_items.with_raw_response.list(follow["id"]).http_response.json()
    validate("ResponseItemList", items)
    assert [i["type"] for i in items["data"]] == ["function_call_output"]


def test_function_call_stream(openai_client: openai.OpenAI, model_id: str) -> None:
    """A streamed call: output_item.added (function_call), argument deltas that add up to the
    arguments of function_call_arguments.done, output_item.done, then response.completed, equal to
    the non-streamed answer."""
    events: list[dict[str, Any]] = []
    with openai_client.responses.create(
        model=model_id, input="What is the weather in Paris?", stream=True, **TOOL_CALL
    ) as stream:
        for event in stream:
            data: dict[str, Any] = event.to_dict()
            validate("ResponseStreamEvent", data)
            events.append(data)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = next(
        e for e in events if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call"
    )
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    pieces = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert pieces and "".join(pieces) == done["arguments"]
    assert done["item_id"] == added["item"]["id"] and done["name"] == "get_weather"
    assert kinds[-1] == "response.completed"
    final = events[-1]["response"]
    whole = openai_client.responses.create(model=model_id, input="What is the weather in Paris?", **TOOL_CALL)
    assert _without_ids(final["output"]) == _without_ids(whole.to_dict()["output"])


def test_cut_and_repeated_calls_leave_only_whole_calls(openai_client: openai.OpenAI, model_id: str) -> None:
    """tool_choice required with parallel calls (issue 17): cut by max_output_tokens anywhere, the
    output holds only whole function_call items and no message item of markup (`<tool_`), streamed
    or not; without a tight limit the repeated call ends the response, completed."""
    ask = "What is the weather in Paris?"
    tools: dict[str, Any] = {**TOOL_CALL, "parallel_tool_calls": True}
    one = openai_client.responses.create(model=model_id, input=ask, **TOOL_CALL)
    assert one.usage is not None
    n = one.usage.output_tokens
    for limit in range(n + 1, n + 6):
        body = openai_client.responses.create(model=model_id, input=ask, **{**tools, "max_output_tokens": limit})
        assert [item.type for item in body.output] == ["function_call"], (limit, body.output)
        with openai_client.responses.create(
            model=model_id, input=ask, stream=True, **{**tools, "max_output_tokens": limit}
        ) as stream:
            kinds = {event.item.type for event in stream if event.type == "response.output_item.added"}
        assert kinds == {"function_call"}
    free = openai_client.responses.create(model=model_id, input=ask, **{**tools, "max_output_tokens": 400})
    assert free.status == "completed" and free.usage is not None and free.usage.output_tokens < 200
    calls = [(item.name, item.arguments) for item in free.output if item.type == "function_call"]
    assert calls and len(set(calls)) == len(calls) == len(free.output)
