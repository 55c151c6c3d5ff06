"""What every OpenAI family's translation shares: messages to chat turns, sampling with the service's
defaults, response formats as grammars, usage and finish reasons, engine errors as API errors.

Pure functions and small accumulators, no I/O. Each family's own pair lives in its folder
(`chat/translate.py` `from_chat_request`, `completions/translate.py` `from_completion_request`, ...).
"""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.base import ChatMessage, Delta, GenerationRequest, OutputConstraint, SamplingParams
from server.http.errors import from_engine_error, invalid_request
from server.inference import protocol as p
from server.inference.schemas import check_schema
from server.settings import SamplingDefaults

_ROLE_FOR_TEMPLATE = {"developer": "system"}


# OpenAI's documented defaults: pure sampling at temperature 1.
OPENAI_DEFAULTS = SamplingDefaults()


def _text_of(content: p.Content | None, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for j, part in enumerate(content):
        if isinstance(part, p.TextPart):
            texts.append(part.text)
        elif isinstance(part, p.RefusalPart):
            texts.append(part.refusal)
        else:
            kind = type(part).__struct_config__.tag
            raise invalid_request(
                f"This model accepts text only; content parts of type '{kind}' are not supported.",
                param=f"{param}[{j}].type",
            )
    return "\n".join(texts)


def chat_messages(messages: list[p.Message]) -> tuple[ChatMessage, ...]:
    """Reduce OpenAI messages to the plain role/text turns a chat template renders."""
    turns: list[ChatMessage] = []
    for i, message in enumerate(messages):
        role = type(message).__struct_config__.tag
        assert isinstance(role, str)
        text = _text_of(message.content, f"messages[{i}].content")
        if isinstance(message, p.ToolMessage):
            turns.append(ChatMessage("tool", text, tool_call_id=message.tool_call_id))
        elif isinstance(message, p.AssistantMessage) and message.tool_calls:
            calls = tuple(msgspec.to_builtins(call) for call in message.tool_calls)
            turns.append(ChatMessage("assistant", text, tool_calls=calls))
        else:
            turns.append(ChatMessage(_ROLE_FOR_TEMPLATE.get(role, role), text))
    return tuple(turns)


def stop_strings(stop: str | list[str] | None, defaults: SamplingDefaults) -> tuple[str, ...]:
    """The request's stop strings, or a 400 naming the limit (settings `max_stop_sequences`,
    `max_stop_length`) that they go beyond: each is matched against every piece of generated text."""
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    if len(stops) > defaults.max_stops:
        raise invalid_request(
            f"stop has {len(stops)} strings; this server accepts at most {defaults.max_stops} "
            "(setting max_stop_sequences).",
            param="stop",
        )
    for i, text in enumerate(stops):
        if len(text) > defaults.max_stop_length:
            raise invalid_request(
                f"A stop string may be at most {defaults.max_stop_length} characters long "
                f"(setting max_stop_length); this one has {len(text)}.",
                param="stop" if isinstance(stop, str) else f"stop[{i}]",
            )
    return stops


def sampling_params(body: p.GenerationFields, max_tokens: int | None, defaults: SamplingDefaults) -> SamplingParams:
    """Decoding settings: what the client sent, and the server's defaults for what it left out
    (max_tokens: a cap that the engine cuts to the context left, never a reason to refuse)."""
    return SamplingParams(
        max_tokens=max_tokens,
        default_max_tokens=defaults.max_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        top_k=defaults.top_k if body.top_k is None else body.top_k,
        min_p=defaults.min_p if body.min_p is None else body.min_p,
        seed=body.seed,
        stop=stop_strings(body.stop, defaults),
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
        ignore_eos=body.ignore_eos,
    )


def refuse_unsupported(logit_bias: dict[str, float] | None, n: int, best_of: int | None = None) -> None:
    if logit_bias:
        raise invalid_request("logit_bias is not supported by this server.", param="logit_bias")
    if best_of is not None and best_of != n:
        raise invalid_request("best_of other than n is not supported.", param="best_of")


def json_constraint(schema: dict[str, Any] | None, param: str) -> OutputConstraint:
    """The grammar of an answer that is one JSON object (`schema` None) or one document matching
    `schema` (checked first; a 400 naming `param` for what the grammar cannot enforce). Chat's
    `response_format` and the Responses API's `text.format` share it."""
    if schema is None:
        return OutputConstraint(json_schema='{"type": "object"}')
    return OutputConstraint(json_schema=check_schema(schema, param))


def response_constraint(response_format: p.ResponseFormat | None) -> OutputConstraint | None:
    """The grammar for `response_format`: any JSON object, or a document matching a schema."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return json_constraint(None, "response_format")
    if response_format.json_schema is None or response_format.json_schema.schema_ is None:
        raise invalid_request(
            "response_format of type json_schema needs json_schema.schema.", param="response_format.json_schema"
        )
    return json_constraint(response_format.json_schema.schema_, "response_format.json_schema.schema")


def check_logprobs(logprobs: bool, top_logprobs: int, constrained: bool, top_param: str) -> None:
    if top_logprobs:
        raise invalid_request(
            "This engine reports the log probability of each sampled token only, not the most likely "
            f"alternatives: {top_param} must be 0.",
            param=top_param,
        )
    if logprobs and constrained:
        raise invalid_request(
            "logprobs cannot be combined with tools or response_format: the engine does not report "
            "log probabilities under a grammar.",
            param="logprobs",
        )


def with_seed(request: GenerationRequest, choice: int) -> GenerationRequest:
    """Give each choice its own seed so that `n` sampled answers differ but stay reproducible."""
    seed = request.params.seed
    if choice == 0 or seed is None:
        return request
    return msgspec.structs.replace(request, params=msgspec.structs.replace(request.params, seed=seed + choice))


class UsageCounter:
    """Adds up token counts the way OpenAI reports them: a prompt counted once per distinct prompt."""

    def __init__(self, prompt_of_choice: list[int]) -> None:
        self._prompt_of_choice = prompt_of_choice
        self._prompt_tokens: dict[int, int] = {}
        self._completion_tokens = 0

    def add(self, choice: int, delta: Delta) -> None:
        """Count a delta of `choice`."""
        self._completion_tokens += delta.tokens
        if delta.prompt_tokens is not None:
            self._prompt_tokens[self._prompt_of_choice[choice]] = delta.prompt_tokens

    def usage(self) -> p.Usage:
        """The totals so far."""
        prompt = sum(self._prompt_tokens.values())
        return p.Usage(
            prompt_tokens=prompt,
            completion_tokens=self._completion_tokens,
            total_tokens=prompt + self._completion_tokens,
        )


def finish_reason(delta: Delta) -> p.FinishReason | None:
    """OpenAI's finish_reason for an engine delta (a cancelled request never reaches a client)."""
    return "length" if delta.finish_reason == "length" else "stop" if delta.finish_reason else None


def require_no_error(delta: Delta, param: str = "messages") -> None:
    """Raise the API error an engine error stands for; `param` names the prompt's field."""
    if delta.error is not None:
        raise from_engine_error(delta.error, param)
