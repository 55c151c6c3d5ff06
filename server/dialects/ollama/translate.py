"""Ollama requests -> the engine's `GenerationRequest`: messages to chat turns, `options` to sampling
with the service's defaults, `format` and `tools` to the same grammars OpenAI's endpoints use.

Pure functions, no I/O; a request that cannot be served is a 400 here, before any queue. The
answers' side (deltas -> Ollama's lines) is `output.py`.
"""

from __future__ import annotations

import json
import uuid

from adapters.base import ChatMessage, GenerationRequest, OutputConstraint, SamplingParams
from server.dialects.ollama import protocol as o
from server.dialects.ollama.errors import bad_request
from server.inference import protocol as p
from server.inference.schemas import check_schema
from server.inference.tool_calls import ToolPlan, tool_plan
from server.settings import SamplingDefaults

# Ollama's `model` defaults to the tag `latest`; Hearth's names have no tags.
_DEFAULT_TAG = ":latest"


def model_name(name: str) -> str:
    """The Hearth model id an Ollama name stands for (`name:latest` is `name`)."""
    return name.removesuffix(_DEFAULT_TAG)


def sampling_params(options: o.Options | None, defaults: SamplingDefaults) -> SamplingParams:
    """Decoding settings from `options`, and the service's defaults for what it leaves out.

    `num_predict` -1 (Ollama's "until done") and -2 ("fill the context") both leave the length to the
    server's default cap; the llama.cpp runtime knobs are accepted and have no effect."""
    opts = options or o.Options()
    max_tokens = opts.num_predict if opts.num_predict is not None and opts.num_predict > 0 else None
    return SamplingParams(
        max_tokens=defaults.max_tokens if max_tokens is None else max_tokens,
        temperature=defaults.temperature if opts.temperature is None else opts.temperature,
        top_p=defaults.top_p if opts.top_p is None else opts.top_p,
        top_k=defaults.top_k if opts.top_k is None else opts.top_k,
        min_p=defaults.min_p if opts.min_p is None else opts.min_p,
        seed=opts.seed,
        stop=tuple(opts.stop or ()),
        presence_penalty=opts.presence_penalty or 0.0,
        frequency_penalty=opts.frequency_penalty or 0.0,
    )


def format_constraint(format: o.Format | None) -> OutputConstraint | None:
    """The grammar for `format`: any JSON object for "json", a document matching a JSON schema,
    or none; enforced as OpenAI's `response_format` is."""
    if format is None or format == "":
        return None
    if format == "json":
        return OutputConstraint(json_schema='{"type": "object"}')
    return OutputConstraint(json_schema=check_schema(format, "format"))


def _tools(tools: list[o.Tool] | None, tool_choice: p.ToolChoice | None) -> ToolPlan:
    if not tools:
        return tool_plan(None, tool_choice, None)
    listed = [
        p.Tool(
            type="function",
            function=p.FunctionDefinition(
                name=t.function.name, description=t.function.description, parameters=t.function.parameters
            ),
        )
        for t in tools
    ]
    return tool_plan(listed, tool_choice or "auto", None)


def _call(call: o.ToolCall) -> dict[str, object]:
    # Ollama's calls carry no ids; the template wants one to pair a call with its result.
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": call.function.name, "arguments": json.dumps(call.function.arguments)},
    }


def chat_messages(messages: list[o.Message], field: str = "messages") -> tuple[ChatMessage, ...]:
    """Ollama's turns as the plain role/text turns a chat template renders; images are refused
    (the models served here read text only)."""
    turns: list[ChatMessage] = []
    for i, message in enumerate(messages):
        if message.images:
            raise bad_request(f"{field}[{i}].images: this model reads text only; images are not supported")
        if message.role == "assistant" and message.tool_calls:
            turns.append(
                ChatMessage("assistant", message.content, tool_calls=tuple(_call(c) for c in message.tool_calls))
            )
        else:
            turns.append(ChatMessage(message.role, message.content))
    return tuple(turns)


def _constraint(format: o.Format | None, plan: ToolPlan) -> OutputConstraint | None:
    constraint = format_constraint(format)
    if constraint is not None and plan.active:
        raise bad_request("format cannot be combined with tools: leave out one of them")
    return constraint or plan.constraint


def from_chat_request(body: o.ChatRequest, defaults: SamplingDefaults) -> GenerationRequest:
    """The one engine request of an /api/chat call (request ids are placeholders)."""
    plan = _tools(body.tools, body.tool_choice)
    return GenerationRequest(
        request_id=0,
        params=sampling_params(body.options, defaults),
        messages=chat_messages(body.messages),
        tools=plan.tools,
        constraint=_constraint(body.format, plan),
    )


def from_generate_request(body: o.GenerateRequest, defaults: SamplingDefaults) -> GenerationRequest:
    """The one engine request of an /api/generate call: the prompt (and `system`) through the
    model's chat template, or the prompt as it is with `raw`."""
    if body.images:
        raise bad_request("images: this model reads text only; images are not supported")
    if body.template:
        raise bad_request("template: this server always uses the model's own chat template; use raw to send a prompt")
    if body.suffix:
        raise bad_request("suffix: fill-in-the-middle is served by /v1/completions (its suffix field)")
    if body.context:
        raise bad_request("context is deprecated and not supported: send the conversation to /api/chat")
    params = sampling_params(body.options, defaults)
    constraint = format_constraint(body.format)
    if body.raw:
        return GenerationRequest(request_id=0, params=params, prompt=body.prompt, constraint=constraint)
    turns: tuple[ChatMessage, ...] = (ChatMessage("system", body.system),) if body.system else ()
    turns += (ChatMessage("user", body.prompt),)
    return GenerationRequest(request_id=0, params=params, messages=turns, constraint=constraint)


def wants_thinking(think: o.Think | None) -> bool:
    """Whether a reasoning model's thinking is returned (`think` false drops it)."""
    return think is not False
