"""Translation for the Responses API: request -> chat turns and a `GenerationRequest`; the
generated text -> `Response` objects and the typed stream events that build one up.

The generation underneath is the chat completions one (server/inference/call.py `Call`, server/inference/fanin.py),
so the engine sees exactly what a chat completion with the same messages would send it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
from msgspec import UNSET

from adapters.base import ChatMessage, GenerationRequest, OutputConstraint, SamplingParams
from server.http.errors import invalid_request
from server.inference import protocol as p
from server.inference.responses import protocol as r
from server.inference.responses.history import ResponseStore
from server.inference.tool_calls import ToolPlan, tool_plan, with_answer_format
from server.inference.translate import json_constraint
from server.settings import SamplingDefaults

_ROLE_FOR_TEMPLATE = {"developer": "system"}


def new_id(prefix: str) -> str:
    """An OpenAI-style object id: `resp_...`, `msg_...`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def refuse_unsupported(body: r.CreateResponse) -> None:
    """A clear 400 for every request feature this server does not implement."""
    if body.background:
        raise invalid_request("Background responses are not supported by this server.", param="background")
    if body.conversation is not None:
        raise invalid_request(
            "Conversations are not supported by this server; use previous_response_id.", param="conversation"
        )
    if body.truncation == "auto":
        raise invalid_request("truncation 'auto' is not supported; the input must fit the context.", param="truncation")


def tools_of(body: r.CreateResponse) -> ToolPlan:
    """The chat machinery's tool plan for the Responses API's flat function tools and tool_choice."""
    tools: list[p.Tool] = []
    for i, tool in enumerate(body.tools or []):
        if tool.get("type") != "function":
            raise invalid_request(
                f"Only function tools are supported; built-in tools such as '{tool.get('type')}' are not.",
                param=f"tools[{i}].type",
            )
        function = {k: v for k, v in tool.items() if k in ("name", "description", "parameters", "strict")}
        try:
            tools.append(msgspec.convert({"type": "function", "function": function}, p.Tool))
        except msgspec.ValidationError as exc:
            raise invalid_request(f"Invalid function tool: {exc}", param=f"tools[{i}]") from exc
    choice: p.ToolChoice | None
    if isinstance(body.tool_choice, dict):
        if body.tool_choice.get("type") != "function" or not isinstance(body.tool_choice.get("name"), str):
            raise invalid_request(
                'tool_choice must be "none", "auto", "required" or {"type": "function", "name": ...}.',
                param="tool_choice",
            )
        choice = p.NamedToolChoice(type="function", function=p.FunctionName(body.tool_choice["name"]))
    elif body.tool_choice in (None, "none", "auto", "required"):
        choice = body.tool_choice  # type: ignore[assignment]
    else:
        raise invalid_request(f"Unknown tool_choice '{body.tool_choice}'.", param="tool_choice")
    return tool_plan(tools or None, choice, body.parallel_tool_calls)


def _message_text(message: r.InputMessage, param: str) -> str:
    if isinstance(message.content, str):
        return message.content
    texts: list[str] = []
    for part in message.content:
        texts.append(part.refusal if isinstance(part, r.Refusal) else part.text)
    return "\n".join(texts)


def _input_message(item: dict[str, Any], param: str) -> r.InputMessage | r.FunctionToolCall | r.FunctionCallOutput:
    kind = item.get("type", "message")
    if kind in ("function_call", "function_call_output"):
        try:
            if kind == "function_call":
                return msgspec.convert({"id": new_id("fc"), **item}, r.FunctionToolCall)
            return msgspec.convert({"id": new_id("fco"), **item}, r.FunctionCallOutput)
        except msgspec.ValidationError as exc:
            raise invalid_request(f"Invalid {kind} item: {exc}", param=param) from exc
    if kind != "message":
        raise invalid_request(f"Input items of type '{kind}' are not supported; send messages.", param=param)
    content = item.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            part_type = part.get("type") if isinstance(part, dict) else None
            if part_type not in ("input_text", "output_text", "refusal"):
                raise invalid_request(
                    f"This model accepts text only; content parts of type '{part_type}' are not supported.",
                    param=f"{param}.content[{j}].type",
                )
    try:
        return msgspec.convert(item, r.InputMessage)
    except msgspec.ValidationError as exc:
        raise invalid_request(f"Invalid input item: {exc}", param=param) from exc


def input_turns(body: r.CreateResponse) -> tuple[list[ChatMessage], list[r.InputItem]]:
    """The request's own input as chat turns, and as the input items GET .../input_items lists."""
    if isinstance(body.input, str):
        messages: list[r.InputMessage | r.FunctionToolCall | r.FunctionCallOutput] = [
            r.InputMessage(role="user", content=body.input)
        ]
    else:
        if not body.input:
            raise invalid_request("input must not be an empty list.", param="input")
        messages = [_input_message(item, f"input[{i}]") for i, item in enumerate(body.input)]
    turns: list[ChatMessage] = []
    items: list[r.InputItem] = []
    for i, message in enumerate(messages):
        if isinstance(message, r.FunctionToolCall):
            call = {
                "id": message.call_id,
                "type": "function",
                "function": {"name": message.name, "arguments": message.arguments},
            }
            # Consecutive calls are one assistant turn with several tool calls, as chat sends them.
            last = turns[-1] if turns else None
            if last is not None and last.role == "assistant" and last.tool_calls:
                turns[-1] = msgspec.structs.replace(last, tool_calls=(*last.tool_calls, call))
            else:
                turns.append(ChatMessage("assistant", "", tool_calls=(call,)))
            items.append(message)
            continue
        if isinstance(message, r.FunctionCallOutput):
            turns.append(ChatMessage("tool", message.output, tool_call_id=message.call_id))
            items.append(message)
            continue
        text = _message_text(message, f"input[{i}]")
        turns.append(ChatMessage(_ROLE_FOR_TEMPLATE.get(message.role, message.role), text))
        part: r.InputText | r.OutputText = r.OutputText(text) if message.role == "assistant" else r.InputText(text)
        items.append(r.InputItemMessage(id=message.id or new_id("msg"), role=message.role, content=[part]))
    return turns, items


def conversation(
    body: r.CreateResponse, store: ResponseStore
) -> tuple[tuple[ChatMessage, ...], tuple[ChatMessage, ...], list[r.InputItem]]:
    """(the turns to remember for a follow-up, the turns to send the model, this request's input items).

    The history of `previous_response_id` comes first; this request's `instructions` lead the
    model's turns but are not remembered (OpenAI does not carry instructions over)."""
    history: tuple[ChatMessage, ...] = ()
    if body.previous_response_id is not None:
        history = store.get(body.previous_response_id, param="previous_response_id").conversation
    turns, items = input_turns(body)
    remembered = (*history, *turns)
    system = (ChatMessage("system", body.instructions),) if body.instructions else ()
    return remembered, (*system, *remembered), items


def text_constraint(text: r.TextConfig | None) -> OutputConstraint | None:
    """The grammar for `text.format`, as chat's `response_format`: any JSON object (`json_object`),
    or a document matching `schema` (`json_schema`); None for plain text."""
    if text is None or text.format.type == "text":
        return None
    if text.format.type == "json_object":
        return json_constraint(None, "text.format")
    if text.format.type != "json_schema":
        raise invalid_request(
            f"Unknown text.format type '{text.format.type}': use text, json_object or json_schema.",
            param="text.format.type",
        )
    if text.format.schema_ is UNSET:
        raise invalid_request("text.format of type json_schema needs a schema.", param="text.format.schema")
    return json_constraint(text.format.schema_, "text.format.schema")


def from_create_response(
    body: r.CreateResponse, messages: tuple[ChatMessage, ...], plan: ToolPlan, defaults: SamplingDefaults
) -> GenerationRequest:
    """The one engine request of a response (its request id a placeholder the engine door stamps),
    or a 400 for a `text.format` that cannot be enforced."""
    constraint = with_answer_format(plan, text_constraint(body.text))
    params = SamplingParams(
        max_tokens=body.max_output_tokens,
        default_max_tokens=defaults.max_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        top_k=defaults.top_k if body.top_k is None else body.top_k,
        min_p=defaults.min_p if body.min_p is None else body.min_p,
        seed=body.seed,
        ignore_eos=body.ignore_eos,
    )
    return GenerationRequest(request_id=0, params=params, messages=messages, tools=plan.tools, constraint=constraint)


def new_response(body: r.CreateResponse, defaults: SamplingDefaults) -> r.Response:
    """The response object as it stands before any output: `in_progress`, echoing the request."""
    return r.Response(
        id=new_id("resp"),
        created_at=int(time.time()),
        status="in_progress",
        model=body.model,
        output=[],
        instructions=body.instructions,
        previous_response_id=body.previous_response_id,
        max_output_tokens=body.max_output_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        store=body.store is not False,
        metadata=body.metadata or {},
        tool_choice=body.tool_choice if body.tool_choice is not None else "auto",
        tools=body.tools or [],
        parallel_tool_calls=body.parallel_tool_calls is not False,
        text=body.text or r.TextConfig(),
    )


def finished(response: r.Response, output: list[r.OutputItem], truncated: bool, usage: r.ResponseUsage) -> r.Response:
    """`response` with its output items, usage and final status."""
    return msgspec.structs.replace(
        response,
        status="incomplete" if truncated else "completed",
        output=output,
        usage=usage,
        completed_at=None if truncated else int(time.time()),
        incomplete_details=r.IncompleteDetails("max_output_tokens") if truncated else None,
    )
