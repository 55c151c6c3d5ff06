"""How many messages, input items and tools one request may send (`max_messages`, `max_tools`):
past them, a 400 naming the setting, before anything is rendered, checked or queued."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DEFAULT_MODEL, HearthServer
from tests.server.limits.conftest import HealthProbe, assert_refused, normal_chat

MESSAGES_LIMIT = 2048
TOOLS_LIMIT = 128


def _tool(i: int) -> Any:
    return {"type": "function", "function": {"name": f"f{i}", "parameters": {"type": "object", "properties": {}}}}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(["chat", "responses", "tokenize", "chat-tools", "responses-tools"]),
    over=st.integers(1, 3_000),
)
def test_too_many_items_are_refused_by_their_limit(
    raw: httpx.Client, health: HealthProbe, route: str, over: int
) -> None:
    user = {"role": "user", "content": "Hi"}
    body: dict[str, Any]
    if route == "chat":
        path, body, setting = "/v1/chat/completions", {"messages": [user] * (MESSAGES_LIMIT + over)}, "max_messages"
    elif route == "responses":
        path, body, setting = "/v1/responses", {"input": [user] * (MESSAGES_LIMIT + over)}, "max_messages"
    elif route == "tokenize":
        path, body, setting = "/tokenize", {"messages": [user] * (MESSAGES_LIMIT + over)}, "max_messages"
    elif route == "chat-tools":
        tools = [_tool(i) for i in range(TOOLS_LIMIT + over % 500 + 1)]
        path, body, setting = "/v1/chat/completions", {"messages": [user], "tools": tools}, "max_tools"
    else:
        flat = [{"type": "function", "name": f"f{i}", "parameters": {}} for i in range(TOOLS_LIMIT + over % 500 + 1)]
        path, body, setting = "/v1/responses", {"input": "Hi", "tools": flat}, "max_tools"
    started = time.perf_counter()
    error = assert_refused(raw.post(path, json={"model": DEFAULT_MODEL, **body}, timeout=30))
    assert time.perf_counter() - started < 1.0
    assert error["code"] == f"{setting}_exceeded" and setting in error["message"], error


def test_at_the_limit_the_sdk_request_is_served(limited: HearthServer, raw: httpx.Client) -> None:
    """Exactly `max_tools` tools is fine (the official client, tool_choice none keeps it short)."""
    with limited.openai_client() as client:
        tools = [_tool(i) for i in range(TOOLS_LIMIT)]
        answer = client.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=[{"role": "user", "content": "Hi"}],
            tools=tools,
            tool_choice="none",
            max_tokens=2,
        )
        assert answer.choices[0].finish_reason in ("stop", "length")
        try:
            client.chat.completions.create(
                model=DEFAULT_MODEL,
                messages=[{"role": "user", "content": "Hi"}],
                tools=[*tools, _tool(TOOLS_LIMIT)],
                max_tokens=2,
            )
        except openai.BadRequestError as exc:
            assert exc.code == "max_tools_exceeded"
        else:
            raise AssertionError("129 tools were accepted")
    normal_chat(raw)
