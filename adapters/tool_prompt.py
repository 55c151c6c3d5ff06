"""How a conversation with tools reaches a chat template, in the Hermes tool-call format.

Hermes' format (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`, results in
`<tool_response>`) is what Qwen2.5, Hermes and SmolLM3 templates use. A template that renders
`tools` itself gets structured messages; for one that does not, the tools are described in a system
turn and earlier calls and results are written out as text, so that any template can render them.
Pure functions: no OpenVINO here, so the server can share the format's constants.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.base import ChatMessage

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"


def call_begin(name: str) -> str:
    """The text that starts a call of `name`, up to where its arguments object begins."""
    return f'{TOOL_CALL_OPEN}\n{{"name": {json.dumps(name)}, "arguments": '


def call_end() -> str:
    """The text that closes a call after its arguments object."""
    return f"}}\n{TOOL_CALL_CLOSE}"


def _arguments(call: dict[str, Any]) -> Any:
    raw = call.get("function", {}).get("arguments", "{}")
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return raw


def _call_text(call: dict[str, Any]) -> str:
    name = str(call.get("function", {}).get("name", ""))
    return call_begin(name) + json.dumps(_arguments(call)) + call_end()


def _system_prompt(tools: tuple[dict[str, Any], ...]) -> str:
    listed = "\n".join(json.dumps(tool) for tool in tools)
    return (
        "You may call one or more functions to assist with the user query. The functions are listed "
        f"in <tools></tools>:\n<tools>\n{listed}\n</tools>\n"
        "To call a function, reply with a JSON object of its name and arguments inside "
        f'{TOOL_CALL_OPEN}{TOOL_CALL_CLOSE} tags:\n{TOOL_CALL_OPEN}\n{{"name": <function-name>, '
        f'"arguments": <args-json-object>}}\n{TOOL_CALL_CLOSE}'
    )


def template_history(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """Messages as a tool-aware chat template (Hugging Face convention) expects them."""
    history: list[dict[str, Any]] = []
    for m in messages:
        turn: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            turn["tool_calls"] = [
                {**call, "function": {**call.get("function", {}), "arguments": _arguments(call)}}
                for call in m.tool_calls
            ]
        if m.tool_call_id is not None:
            turn["tool_call_id"] = m.tool_call_id
        history.append(turn)
    return history


def text_history(messages: tuple[ChatMessage, ...], tools: tuple[dict[str, Any], ...]) -> list[dict[str, str]]:
    """Messages for a template that knows nothing of tools: the tools described in the system turn,
    calls and results written out as text (results as user turns, since many templates reject
    unknown roles)."""
    history: list[dict[str, str]] = []
    for m in messages:
        if m.role == "tool":
            history.append({"role": "user", "content": f"<tool_response>\n{m.content}\n</tool_response>"})
        elif m.tool_calls:
            calls = "\n".join(_call_text(call) for call in m.tool_calls)
            history.append({"role": m.role, "content": f"{m.content}\n{calls}" if m.content else calls})
        else:
            history.append({"role": m.role, "content": m.content})
    if tools:
        prompt = _system_prompt(tools)
        if history and history[0]["role"] == "system":
            history[0] = {"role": "system", "content": f"{history[0]['content']}\n\n{prompt}"}
        else:
            history.insert(0, {"role": "system", "content": prompt})
    return history
