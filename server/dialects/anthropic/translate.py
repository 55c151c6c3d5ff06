"""Translation for the Messages API: a request -> chat turns, a tool plan and one `GenerationRequest`
(`from_messages_request`, `from_count_tokens_request`); the generated blocks -> a `Message`
(`to_message`), with Anthropic's stop reasons (`to_stop_reason`).

The engine sees exactly what a chat completion with the same conversation would send it: turns go
through the same chat template, tools through the same tool plan and grammar
(server/inference/tool_calls.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from adapters.base import ChatMessage, Delta, GenerationRequest, OutputConstraint, SamplingParams
from adapters.tool_prompt import text_history
from server.dialects.anthropic import protocol as a
from server.http.errors import invalid_request
from server.inference import protocol as p
from server.inference.schemas import check_schema
from server.inference.tool_calls import ToolPlan, tool_plan
from server.settings import SamplingDefaults


def new_id(prefix: str) -> str:
    """An Anthropic-style id: `msg_...`, `toolu_...`."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _refuse_block(block: a.ContentBlockParam, param: str) -> None:
    if isinstance(block, a.ImageBlockParam | a.DocumentBlockParam):
        kind = "image" if isinstance(block, a.ImageBlockParam) else "document"
        raise invalid_request(
            f"This model reads text only; {kind} content blocks are not supported.", param=f"{param}.type"
        )


def _system_text(system: a.System | None) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    return "\n".join(block.text for block in system)


def _tool_result_text(block: a.ToolResultBlockParam, param: str) -> str:
    if block.content is None:
        text = ""
    elif isinstance(block.content, str):
        text = block.content
    else:
        texts: list[str] = []
        for j, part in enumerate(block.content):
            _refuse_block(part, f"{param}.content[{j}]")
            assert isinstance(part, a.TextBlockParam)
            texts.append(part.text)
        text = "\n".join(texts)
    # The model sees that a tool failed only if the text says so.
    return f"Error: {text}" if block.is_error else text


def _system_turn(message: a.MessageParam, param: str) -> ChatMessage:
    if isinstance(message.content, str):
        return ChatMessage("system", message.content)
    texts: list[str] = []
    for j, block in enumerate(message.content):
        if not isinstance(block, a.TextBlockParam):
            kind = type(block).__struct_config__.tag
            raise invalid_request(
                f"A system turn holds text only, not {kind} blocks.", param=f"{param}.content[{j}].type"
            )
        texts.append(block.text)
    return ChatMessage("system", "\n".join(texts))


def _user_turns(message: a.MessageParam, param: str) -> list[ChatMessage]:
    if isinstance(message.content, str):
        return [ChatMessage("user", message.content)]
    turns: list[ChatMessage] = []
    texts: list[str] = []
    for j, block in enumerate(message.content):
        where = f"{param}.content[{j}]"
        _refuse_block(block, where)
        if isinstance(block, a.ToolResultBlockParam):
            turns.append(ChatMessage("tool", _tool_result_text(block, where), tool_call_id=block.tool_use_id))
        elif isinstance(block, a.TextBlockParam):
            texts.append(block.text)
        else:
            kind = type(block).__struct_config__.tag
            raise invalid_request(f"A user turn cannot hold {kind} blocks.", param=f"{where}.type")
    if texts:
        turns.append(ChatMessage("user", "\n".join(texts)))
    return turns


def _assistant_turn(message: a.MessageParam, param: str) -> ChatMessage:
    if isinstance(message.content, str):
        return ChatMessage("assistant", message.content)
    texts: list[str] = []
    calls: list[dict[str, object]] = []
    for j, block in enumerate(message.content):
        where = f"{param}.content[{j}]"
        _refuse_block(block, where)
        if isinstance(block, a.TextBlockParam):
            texts.append(block.text)
        elif isinstance(block, a.ToolUseBlockParam):
            arguments = json.dumps(block.input)
            calls.append({"id": block.id, "type": "function", "function": {"name": block.name, "arguments": arguments}})
        elif isinstance(block, a.ToolResultBlockParam):
            raise invalid_request("tool_result blocks belong in a user turn.", param=f"{where}.type")
        # Earlier thinking is not shown to the model again, as Anthropic drops it from context.
    return ChatMessage("assistant", "".join(texts), tool_calls=tuple(calls))


def to_turns(system: a.System | None, messages: list[a.MessageParam]) -> tuple[ChatMessage, ...]:
    """The conversation as the chat turns a template renders: the system prompt first, tool results
    as `tool` turns (before the user's text of the same message), tool uses as assistant tool calls."""
    if not messages:
        raise invalid_request("messages must not be empty.", param="messages")
    text = _system_text(system)
    turns: list[ChatMessage] = [ChatMessage("system", text)] if text else []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if message.role == "system":
            turns.append(_system_turn(message, param))
        elif message.role == "user":
            turns += _user_turns(message, param)
        else:
            turns.append(_assistant_turn(message, param))
    return tuple(turns)


def tools_of(tools: list[a.ToolParam] | None, choice: a.ToolChoice | None) -> ToolPlan:
    """The chat machinery's tool plan for Anthropic's tools and tool_choice (auto -> auto, any ->
    required, tool -> a named function, none -> none; disable_parallel_tool_use -> one call)."""
    functions: list[p.Tool] = []
    for i, tool in enumerate(tools or []):
        if tool.type not in (None, "custom"):
            raise invalid_request(
                f"Server tools such as '{tool.type}' are not supported; define client tools with an input_schema.",
                param=f"tools[{i}].type",
            )
        if tool.input_schema is None:
            raise invalid_request("A tool needs an input_schema.", param=f"tools[{i}].input_schema")
        definition = p.FunctionDefinition(name=tool.name, description=tool.description, parameters=tool.input_schema)
        functions.append(p.Tool(type="function", function=definition))
    openai_choice: p.ToolChoice | None
    if choice is None:
        openai_choice, parallel = None, None
    elif isinstance(choice, a.ToolChoiceNone):
        openai_choice, parallel = "none", None
    elif isinstance(choice, a.ToolChoiceTool):
        openai_choice = p.NamedToolChoice(type="function", function=p.FunctionName(choice.name))
        parallel = not choice.disable_parallel_tool_use
    else:
        openai_choice = "required" if isinstance(choice, a.ToolChoiceAny) else "auto"
        parallel = not choice.disable_parallel_tool_use
    return tool_plan(functions or None, openai_choice, parallel)


def wants_thinking(thinking: a.Thinking | None) -> bool:
    """Whether thinking blocks are shown (a reasoning model thinks either way; `disabled` hides it)."""
    return isinstance(thinking, a.ThinkingEnabled | a.ThinkingAdaptive)


@dataclass(frozen=True)
class Translated:
    """A create request as the engine door takes it, and what its answer needs to know."""

    request: GenerationRequest
    tools: bool
    thinking: bool


def from_messages_request(body: a.MessagesRequest, defaults: SamplingDefaults) -> Translated:
    """The one engine request of a create call (its request id a placeholder the door stamps), or a
    400 for what is not supported. Sampling parameters left out take the service's defaults."""
    if isinstance(body.thinking, a.ThinkingEnabled) and body.thinking.budget_tokens >= body.max_tokens:
        raise invalid_request("thinking.budget_tokens must be less than max_tokens.", param="thinking.budget_tokens")
    plan = tools_of(body.tools, body.tool_choice)
    constraint = plan.constraint
    output_format = body.output_config.format if body.output_config is not None else None
    if output_format is not None:
        if plan.active:
            raise invalid_request(
                "output_config.format cannot be combined with tools here: set tool_choice to none, or leave out "
                "output_config.format.",
                param="output_config.format",
            )
        constraint = OutputConstraint(json_schema=check_schema(output_format.schema, "output_config.format.schema"))
    turns = to_turns(body.system, body.messages)
    params = SamplingParams(
        max_tokens=body.max_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        top_k=defaults.top_k if body.top_k is None else body.top_k,
        min_p=defaults.min_p,
        stop=tuple(s for s in body.stop_sequences or () if s),
    )
    request = GenerationRequest(request_id=0, params=params, messages=turns, tools=plan.tools, constraint=constraint)
    return Translated(request, tools=plan.active, thinking=wants_thinking(body.thinking))


def from_count_tokens_request(body: a.CountTokensRequest) -> tuple[ChatMessage, ...]:
    """The turns whose tokens count_tokens counts: the conversation, with the tools described in the
    system turn as Hearth shows them to a template that does not render tools itself."""
    plan = tools_of(body.tools, body.tool_choice)
    turns = to_turns(body.system, body.messages)
    if not plan.tools:
        return turns
    return tuple(ChatMessage(turn["role"], turn["content"]) for turn in text_history(turns, plan.tools))


def to_stop_reason(delta: Delta, tool_calls: bool) -> a.StopReason:
    """Anthropic's stop reason for the final delta of a generation."""
    if delta.finish_reason == "length":
        return "max_tokens"
    if tool_calls:
        return "tool_use"
    return "stop_sequence" if delta.stop_sequence is not None else "end_turn"


def to_message(
    message_id: str,
    model: str,
    content: list[a.ContentBlock],
    stop_reason: a.StopReason | None,
    stop_sequence: str | None,
    usage: p.Usage,
) -> a.Message:
    """The whole answer."""
    return a.Message(
        id=message_id,
        model=model,
        content=content,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=a.MessageUsage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens),
    )
