"""Conversations with tools rendered for templates with and without tool support."""

from __future__ import annotations

import json

from adapters.base import ChatMessage
from adapters.tool_prompt import template_history, text_history

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
MESSAGES = (
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Use f."),
    ChatMessage("assistant", "", tool_calls=(CALL,)),
    ChatMessage("tool", "42", tool_call_id="call_1"),
)


def test_text_history_describes_tools_and_writes_calls_out() -> None:
    history = text_history(MESSAGES, (TOOL,))
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert history[0]["content"].startswith("Be brief.") and json.dumps(TOOL) in history[0]["content"]
    assert history[2]["content"] == '<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>'
    assert history[3]["content"] == "<tool_response>\n42\n</tool_response>"


def test_template_history_keeps_structure_with_parsed_arguments() -> None:
    history = template_history(MESSAGES)
    assert history[2]["tool_calls"][0]["function"] == {"name": "f", "arguments": {"x": 1}}
    assert history[3] == {"role": "tool", "content": "42", "tool_call_id": "call_1"}
