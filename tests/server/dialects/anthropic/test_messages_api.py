"""POST /v1/messages with the official `anthropic` SDK against a real server on the default model:
whole and streamed messages, the exact event sequence, stop reasons and usage."""

from __future__ import annotations

import json
import re

import anthropic
import httpx
from anthropic.types import MessageParam

from tests.conftest import CLIENT_TIMEOUT_S, DEFAULT_MODEL, HearthServer
from tests.server.dialects.anthropic.conftest import parse_events

HELLO: list[MessageParam] = [{"role": "user", "content": "Write one sentence about the sea."}]
GREEDY = {"temperature": 0}


def test_create_answers_a_text_message(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=DEFAULT_MODEL,
        max_tokens=16,
        system=[{"type": "text", "text": "You are brief."}],
        messages=HELLO,
        metadata={"user_id": "tester"},
        # This SDK no longer lists the sampling fields (newer Claude models fix them); the API takes them.
        extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 20},
    )
    assert re.fullmatch(r"msg_[0-9a-f]{24}", message.id)
    assert message.type == "message" and message.role == "assistant" and message.model == DEFAULT_MODEL
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens") and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 16


def test_max_tokens_stops_with_max_tokens(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=DEFAULT_MODEL, max_tokens=3, system="Tell long stories.", messages=HELLO, extra_body=GREEDY
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


def test_stop_sequences_report_the_sequence(claude: anthropic.Anthropic) -> None:
    """At temperature 0 the answer is fixed: a word from its middle, as a stop sequence, cuts it
    there and is reported; text before it is kept."""
    free = claude.messages.create(model=DEFAULT_MODEL, max_tokens=24, messages=HELLO, extra_body=GREEDY)
    text = free.content[0].text if free.content and free.content[0].type == "text" else ""
    words = text.split()
    assert len(words) >= 4, text
    stop = f" {words[2]}"
    cut = claude.messages.create(
        model=DEFAULT_MODEL, max_tokens=24, messages=HELLO, extra_body=GREEDY, stop_sequences=["\u2603", stop]
    )
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
    assert cut.content[0].type == "text" and cut.content[0].text == text[: text.index(stop)]


def test_stream_helper_final_message_matches_its_text(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=DEFAULT_MODEL, max_tokens=16, messages=HELLO, extra_body=GREEDY) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed and final.content[0].type == "text" and final.content[0].text == streamed
    assert final.stop_reason in ("end_turn", "max_tokens") and final.usage.output_tokens > 0
    whole = claude.messages.create(model=DEFAULT_MODEL, max_tokens=16, messages=HELLO, extra_body=GREEDY)
    assert whole.content[0].type == "text" and whole.content[0].text == streamed
    assert whole.usage.input_tokens == final.usage.input_tokens


def test_raw_stream_sends_anthropics_events_in_order(hearth_server: HearthServer) -> None:
    body = {"model": DEFAULT_MODEL, "max_tokens": 8, "messages": HELLO, "stream": True, "temperature": 0}
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "unused"}
    with httpx.Client(base_url=hearth_server.base_url, timeout=CLIENT_TIMEOUT_S) as http:
        response = http.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(response.text)
    kinds = [event["type"] for event in events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[3:-3]) == {"content_block_delta"}
    start = events[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] > 0
    assert events[2] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert all(event["index"] == 0 and event["delta"]["type"] == "text_delta" for event in events[3:-3])
    final = events[-2]
    assert final["delta"]["stop_reason"] == "max_tokens" and final["usage"]["output_tokens"] == 8


def test_output_config_format_enforces_a_json_schema(claude: anthropic.Anthropic) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "sunny": {"type": "boolean"}},
        "required": ["city", "sunny"],
        "additionalProperties": False,
    }
    message = claude.messages.create(
        model=DEFAULT_MODEL,
        max_tokens=48,
        messages=[{"role": "user", "content": "Is it sunny in Paris? Answer in JSON."}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.stop_reason == "end_turn" and message.content[0].type == "text"
    answer = json.loads(message.content[0].text)
    assert set(answer) == {"city", "sunny"} and isinstance(answer["sunny"], bool)
