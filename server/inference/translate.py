"""The one translation layer: OpenAI requests -> `GenerationRequest`s, `Delta`s -> OpenAI objects.

Pure functions and small accumulators, no I/O: the routes feed them and send what they return.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from adapters.base import ChatMessage, Delta, GenerationRequest, OutputConstraint, SamplingParams
from server.http.errors import from_engine_error, invalid_request
from server.inference import protocol as p
from server.inference.schemas import check_schema
from server.inference.tool_calls import tool_plan

_ROLE_FOR_TEMPLATE = {"developer": "system"}


class SamplingDefaults(msgspec.Struct, frozen=True):
    """Sampling settings used for the parameters a request leaves out."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    # A service's default for max_tokens (None: until the context is full).
    max_tokens: int | None = None


# OpenAI's documented defaults: pure sampling at temperature 1.
OPENAI_DEFAULTS = SamplingDefaults()
# Prompts x n of one legacy completion; more would hold the engine for one caller indefinitely.
MAX_SEQUENCES = 256


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


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def _sampling(body: p.GenerationFields, max_tokens: int | None, defaults: SamplingDefaults) -> SamplingParams:
    """Decoding settings: what the client sent, and the server's defaults for what it left out."""
    return SamplingParams(
        max_tokens=defaults.max_tokens if max_tokens is None else max_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        top_k=defaults.top_k if body.top_k is None else body.top_k,
        min_p=defaults.min_p if body.min_p is None else body.min_p,
        seed=body.seed,
        stop=_stops(body.stop),
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
        ignore_eos=body.ignore_eos,
    )


def _refuse_unsupported(logit_bias: dict[str, float] | None, n: int, best_of: int | None = None) -> None:
    if logit_bias:
        raise invalid_request("logit_bias is not supported by this server.", param="logit_bias")
    if best_of is not None and best_of != n:
        raise invalid_request("best_of other than n is not supported.", param="best_of")


def response_constraint(response_format: p.ResponseFormat | None) -> OutputConstraint | None:
    """The grammar for `response_format`: any JSON object, or a document matching a schema."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return OutputConstraint(json_schema='{"type": "object"}')
    if response_format.json_schema is None or response_format.json_schema.schema_ is None:
        raise invalid_request(
            "response_format of type json_schema needs json_schema.schema.", param="response_format.json_schema"
        )
    schema = check_schema(response_format.json_schema.schema_, "response_format.json_schema.schema")
    return OutputConstraint(json_schema=schema)


def _check_logprobs(logprobs: bool, top_logprobs: int, constrained: bool, top_param: str) -> None:
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


def from_chat_request(
    body: p.ChatCompletionRequest, defaults: SamplingDefaults = OPENAI_DEFAULTS
) -> list[GenerationRequest]:
    """One `GenerationRequest` per requested choice (`n`), or a 400 for what is not supported.

    Request ids are placeholders: the engine door stamps real ones when it submits them."""
    plan = tool_plan(body.tools, body.tool_choice, body.parallel_tool_calls)
    constraint = response_constraint(body.response_format)
    if plan.active and constraint is not None:
        raise invalid_request(
            "response_format cannot be combined with tools here: set tool_choice to none, or leave out "
            "response_format.",
            param="response_format",
        )
    constraint = constraint or plan.constraint
    _check_logprobs(bool(body.logprobs), body.top_logprobs or 0, constraint is not None, "top_logprobs")
    n = body.n or 1
    _refuse_unsupported(body.logit_bias, n)
    messages = chat_messages(body.messages)
    params = msgspec.structs.replace(
        _sampling(body, body.max_completion_tokens or body.max_tokens, defaults), logprobs=bool(body.logprobs)
    )
    base = GenerationRequest(request_id=0, params=params, messages=messages, tools=plan.tools, constraint=constraint)
    return [_with_seed(base, i) for i in range(n)]


def _with_seed(request: GenerationRequest, choice: int) -> GenerationRequest:
    """Give each choice its own seed so that `n` sampled answers differ but stay reproducible."""
    seed = request.params.seed
    if choice == 0 or seed is None:
        return request
    return msgspec.structs.replace(request, params=msgspec.structs.replace(request.params, seed=seed + choice))


@dataclass(frozen=True)
class PromptChoice:
    """One choice of a legacy completion: which prompt it continues and the text to echo."""

    prompt_index: int
    echo: str


def _is_token_ids(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)
    )


def completion_prompts(body: p.CompletionRequest) -> list[str | tuple[int, ...]]:
    """The prompts of a legacy completion: texts, or token-id sequences."""
    prompt = body.prompt
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise invalid_request("prompt must not be an empty list.", param="prompt")
    if all(isinstance(x, str) for x in prompt):
        return [x for x in prompt if isinstance(x, str)]
    if _is_token_ids(prompt):
        return [tuple(prompt)]
    if all(_is_token_ids(x) for x in prompt):
        return [tuple(x) for x in prompt]
    raise invalid_request(
        "prompt must be a string, a list of strings, a list of token ids, or a list of lists of token ids.",
        param="prompt",
    )


def _fim_applies(suffix: str | None, tokens: tuple[str, str, str] | None) -> bool:
    # An empty suffix is what some clients send with every request: plain completion then, unless
    # the model can fill in the middle.
    return suffix is not None and (bool(suffix) or tokens is not None)


def to_fim_requests(
    requests: list[GenerationRequest], body: p.CompletionRequest, tokens: tuple[str, str, str] | None
) -> list[GenerationRequest]:
    """`requests` as fill-in-the-middle prompts (prefix-suffix-middle order) when `body` has a
    suffix; `tokens` are the model's FIM tokens, the one part of a completion's translation that
    needs the model itself."""
    suffix = body.suffix
    if suffix is None or not _fim_applies(suffix, tokens):
        return requests
    if body.echo:
        raise invalid_request("echo cannot be combined with suffix.", param="echo")
    if tokens is None:
        raise invalid_request(
            "suffix (fill-in-the-middle) needs a model with FIM tokens (such as StarCoder2, "
            "Qwen2.5-Coder or DeepSeek-Coder); this model has none.",
            param="suffix",
        )
    if any(r.prompt is None for r in requests):
        raise invalid_request("suffix needs text prompts, not token ids.", param="suffix")
    before, after, middle = tokens
    return [msgspec.structs.replace(r, prompt=f"{before}{r.prompt}{after}{suffix}{middle}") for r in requests]


def from_completion_request(
    body: p.CompletionRequest, defaults: SamplingDefaults = OPENAI_DEFAULTS
) -> tuple[list[GenerationRequest], list[PromptChoice]]:
    """One `GenerationRequest` per prompt and choice, in OpenAI's choice order (placeholder request
    ids, as `from_chat_request`'s); a suffix is applied later by `to_fim_requests`."""
    if body.logprobs is not None:
        _check_logprobs(True, body.logprobs, False, "logprobs")
    n = body.n or 1
    _refuse_unsupported(body.logit_bias, n, body.best_of)
    prompts = completion_prompts(body)
    if body.suffix and body.echo:
        raise invalid_request("echo cannot be combined with suffix.", param="echo")
    if body.suffix and not all(isinstance(x, str) for x in prompts):
        raise invalid_request("suffix needs text prompts, not token ids.", param="suffix")
    if len(prompts) * n > MAX_SEQUENCES:
        raise invalid_request(
            f"At most {MAX_SEQUENCES} sequences per request: {len(prompts)} prompts x n={n} is too many.",
            param="prompt",
        )
    params = msgspec.structs.replace(_sampling(body, body.max_tokens, defaults), logprobs=body.logprobs is not None)
    requests: list[GenerationRequest] = []
    choices: list[PromptChoice] = []
    if body.echo and not all(isinstance(x, str) for x in prompts):
        raise invalid_request("echo is supported for text prompts only.", param="echo")
    for k, prompt in enumerate(prompts):
        for j in range(n):
            if isinstance(prompt, str):
                base = GenerationRequest(request_id=0, params=params, prompt=prompt)
            else:
                base = GenerationRequest(request_id=0, params=params, prompt_ids=prompt)
            requests.append(_with_seed(base, j))
            choices.append(PromptChoice(prompt_index=k, echo=prompt if body.echo and isinstance(prompt, str) else ""))
    return requests, choices


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


def completion_logprobs(deltas: list[Delta], offset: int) -> p.CompletionLogprobs:
    """Legacy completions' parallel lists for the tokens of `deltas`; text offsets start at `offset`
    (after any echoed prompt)."""
    tokens = [t for delta in deltas for t in delta.logprobs]
    offsets: list[int] = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token.token)
    return p.CompletionLogprobs(
        tokens=[t.token for t in tokens],
        token_logprobs=[t.logprob for t in tokens],
        # The sampled token only (as vLLM reports it): the engine gives no alternatives.
        top_logprobs=[{t.token: t.logprob} for t in tokens],
        text_offset=offsets,
    )


def finish_reason(delta: Delta) -> p.FinishReason | None:
    """OpenAI's finish_reason for an engine delta (a cancelled request never reaches a client)."""
    return "length" if delta.finish_reason == "length" else "stop" if delta.finish_reason else None


def require_no_error(delta: Delta, param: str = "messages") -> None:
    """Raise the API error an engine error stands for; `param` names the prompt's field."""
    if delta.error is not None:
        raise from_engine_error(delta.error, param)
