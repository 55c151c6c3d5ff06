"""/api/chat and /api/generate with the official client: NDJSON streams and whole answers, options,
format (JSON and a schema), tools, keep_alive (load and unload) and think."""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama

from tests.conftest import DEFAULT_MODEL

ASK = [{"role": "user", "content": "Name three colors."}]
FIXED: dict[str, Any] = {"temperature": 0, "num_predict": 12}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_chat_whole_and_streamed_agree(client: ollama.Client) -> None:
    whole = client.chat(model=DEFAULT_MODEL, messages=ASK, options=FIXED)
    assert whole.done and whole.done_reason in ("stop", "length")
    assert whole.message.role == "assistant" and whole.message.content
    assert whole.eval_count is not None and 0 < whole.eval_count <= 12
    assert whole.prompt_eval_count is not None and whole.prompt_eval_count > 0
    assert whole.total_duration is not None and whole.eval_duration is not None
    assert whole.total_duration >= whole.eval_duration > 0
    parts = list(client.chat(model=DEFAULT_MODEL, messages=ASK, options=FIXED, stream=True))
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert len(parts) > 2, "a streamed answer comes in pieces"
    assert "".join(p.message.content or "" for p in parts) == whole.message.content
    assert parts[-1].eval_count == whole.eval_count and parts[-1].done_reason == whole.done_reason


def test_num_predict_and_stop_are_applied(client: ollama.Client) -> None:
    short = client.generate(model=DEFAULT_MODEL, prompt="Count from 1 to 50.", options={"num_predict": 3})
    assert short.done_reason == "length" and short.eval_count == 3
    stopped = client.generate(
        model=DEFAULT_MODEL, prompt="Count from 1 to 50, one per line.", options={"temperature": 0, "stop": ["\n"]}
    )
    assert "\n" not in (stopped.response or "") and stopped.done_reason == "stop"


def test_seed_makes_sampling_reproducible(client: ollama.Client) -> None:
    options = {"temperature": 1.0, "seed": 7, "num_predict": 10}
    first = client.generate(model=DEFAULT_MODEL, prompt="Tell me a story.", options=options)
    again = client.generate(model=DEFAULT_MODEL, prompt="Tell me a story.", options=options)
    assert first.response == again.response


def test_generate_format_json_and_schema(client: ollama.Client) -> None:
    answer = client.generate(
        model=DEFAULT_MODEL, prompt="Describe a cat as JSON.", format="json", options={"num_predict": 60}
    )
    if answer.done_reason == "stop":
        assert isinstance(json.loads(answer.response or ""), dict)
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    parts = list(
        client.generate(
            model=DEFAULT_MODEL,
            prompt="A person as JSON.",
            format=schema,
            options={"temperature": 0, "num_predict": 200},
            stream=True,
        )
    )
    assert parts[-1].done and parts[-1].done_reason == "stop"
    document = json.loads("".join(p.response or "" for p in parts))
    assert set(document) == {"name", "age"} and isinstance(document["age"], int)


def test_generate_raw_and_system(client: ollama.Client) -> None:
    raw = client.generate(model=DEFAULT_MODEL, prompt="The capital of France is", raw=True, options=FIXED)
    assert raw.response and raw.done
    templated = client.generate(model=DEFAULT_MODEL, prompt="Who are you?", system="You are a pirate.", options=FIXED)
    assert templated.response
    assert (templated.prompt_eval_count or 0) > (raw.prompt_eval_count or 0), "the template and system add tokens"


def test_chat_with_tools_answers_text_or_well_formed_calls(client: ollama.Client) -> None:
    answer = client.chat(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],
        options={"temperature": 0, "num_predict": 60},
    )
    for call in answer.message.tool_calls or []:
        assert call.function.name == "get_weather" and isinstance(call.function.arguments, dict)
    assert answer.message.content or answer.message.tool_calls


def test_a_required_call_comes_whole_streamed_or_not(api: httpx.Client) -> None:
    """tool_choice is Hearth's extension; the answers parse as the official client's types."""
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "options": {"temperature": 0, "num_predict": 40},
    }
    whole = ollama.ChatResponse(**api.post("/chat", json={**body, "stream": False}).json())
    calls = whole.message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert isinstance(calls[0].function.arguments.get("city"), str)
    assert not whole.message.content
    with api.stream("POST", "/chat", json=body) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [ollama.ChatResponse(**json.loads(line)) for line in response.iter_lines() if line]
    streamed = [c for line in lines for c in line.message.tool_calls or []]
    assert [(c.function.name, dict(c.function.arguments)) for c in streamed] == [
        (c.function.name, dict(c.function.arguments)) for c in calls
    ]


PARIS = {"city": "Paris"}


def test_a_tool_result_round_trip(client: ollama.Client) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": '{"temperature_c": 21, "sky": "clear"}', "tool_name": "get_weather"},
    ]
    answer = client.chat(model=DEFAULT_MODEL, messages=messages, tools=[WEATHER], options=FIXED)
    assert answer.done and (answer.message.content or answer.message.tool_calls)
    assert (answer.prompt_eval_count or 0) > 30, "the call and its result are in the prompt"


def test_think_is_accepted_on_a_model_that_does_not_think(client: ollama.Client) -> None:
    answer = client.chat(model=DEFAULT_MODEL, messages=ASK, think=True, options=FIXED)
    assert answer.message.content and not answer.message.thinking


def test_keep_alive_zero_unloads_and_an_empty_request_loads(client: ollama.Client) -> None:
    loaded = client.generate(model=DEFAULT_MODEL, keep_alive="5m")
    assert loaded.done and loaded.done_reason == "load"
    assert DEFAULT_MODEL in [m.model for m in client.ps().models]
    unloaded = client.chat(model=DEFAULT_MODEL, messages=[], keep_alive=0)
    assert unloaded.done and unloaded.done_reason == "unload"
    assert DEFAULT_MODEL not in [m.model for m in client.ps().models]
    again = client.chat(model=DEFAULT_MODEL, messages=ASK, options=FIXED, keep_alive=-1)
    assert again.message.content
    assert DEFAULT_MODEL in [m.model for m in client.ps().models]
