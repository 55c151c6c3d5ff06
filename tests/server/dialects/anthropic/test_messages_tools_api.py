"""Tools over the Anthropic dialect with the official SDK: tool_choice any / tool / none, a tool_use
-> tool_result round trip, streamed tool_use blocks, and count_tokens."""

from __future__ import annotations

import re
from typing import Any

import anthropic
from anthropic.types import MessageParam, ToolParam

from tests.conftest import DEFAULT_MODEL

WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "The current weather of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME: ToolParam = {
    "name": "get_time",
    "description": "The local time of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK: list[MessageParam] = [{"role": "user", "content": "What is the weather in Paris?"}]
GREEDY = {"temperature": 0}


def _tool_uses(message: anthropic.types.Message) -> list[anthropic.types.ToolUseBlock]:
    return [block for block in message.content if block.type == "tool_use"]


def test_tool_choice_any_without_parallel_calls_one_tool(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=DEFAULT_MODEL,
        max_tokens=64,
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        extra_body=GREEDY,
    )
    calls = _tool_uses(message)
    assert len(calls) == 1 and message.stop_reason == "tool_use"
    assert re.fullmatch(r"toolu_[0-9a-f]{24}", calls[0].id)
    assert calls[0].name in ("get_weather", "get_time")
    assert isinstance(calls[0].input, dict) and isinstance(calls[0].input["city"], str)


def test_tool_choice_any_calls_tools_only(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=DEFAULT_MODEL, max_tokens=96, messages=ASK, tools=[WEATHER], tool_choice={"type": "any"}
    )
    assert _tool_uses(message) and all(block.type == "tool_use" for block in message.content)
    # A call the token limit cut off is never returned (its stop reason says why).
    assert message.stop_reason in ("tool_use", "max_tokens")


def test_tool_round_trip(claude: anthropic.Anthropic) -> None:
    """tool_use, then its tool_result in the next user turn: the model answers, and the result is in
    its prompt (the count grows by at least the result's text)."""
    first = claude.messages.create(
        model=DEFAULT_MODEL,
        max_tokens=64,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        extra_body=GREEDY,
    )
    (call,) = _tool_uses(first)
    assert call.name == "get_weather" and first.stop_reason == "tool_use"
    result = "Sunny and 21 degrees Celsius, light wind from the west, no rain expected today."
    turns: list[Any] = [
        *ASK,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result}]},
    ]
    second = claude.messages.create(
        model=DEFAULT_MODEL, max_tokens=24, messages=turns, tools=[WEATHER], tool_choice={"type": "none"}
    )
    assert not _tool_uses(second) and second.content and second.content[0].type == "text"
    assert second.stop_reason in ("end_turn", "max_tokens")
    without_result = claude.messages.count_tokens(
        model=DEFAULT_MODEL, messages=turns[:2], tools=[WEATHER], tool_choice={"type": "none"}
    )
    assert second.usage.input_tokens >= without_result.input_tokens + 15


def test_streamed_tool_use_block(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=DEFAULT_MODEL,
        max_tokens=64,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        extra_body=GREEDY,
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [event.type for event in events]
    assert "input_json" in kinds and kinds[-1] == "message_stop"
    starts = [event for event in events if event.type == "content_block_start"]
    assert [event.content_block.type for event in starts] == ["tool_use"]
    (call,) = _tool_uses(final)
    assert call.name == "get_weather" and isinstance(call.input["city"], str)
    assert final.stop_reason == "tool_use"


def test_count_tokens_matches_the_prompt_of_create(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model=DEFAULT_MODEL, system="Be brief.", messages=ASK)
    created = claude.messages.create(model=DEFAULT_MODEL, max_tokens=1, system="Be brief.", messages=ASK)
    assert counted.input_tokens == created.usage.input_tokens > 0
    with_tools = claude.messages.count_tokens(model=DEFAULT_MODEL, system="Be brief.", messages=ASK, tools=[WEATHER])
    assert with_tools.input_tokens > counted.input_tokens + 20
