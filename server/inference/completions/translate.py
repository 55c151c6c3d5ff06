"""Legacy completions: a request -> `GenerationRequest`s (one per prompt and choice), fill-in-the-middle
prompts, and the parallel-list log probabilities of the answer."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from adapters.base import GenerationRequest
from server.http.errors import invalid_request
from server.inference.completions.protocol import CompletionRequest
from server.inference.translate import (
    OPENAI_DEFAULTS,
    check_logprobs,
    refuse_unsupported,
    sampling_params,
    with_seed,
)
from server.limits.ranges import is_token_id
from server.settings import SamplingDefaults

# Prompts x n of one legacy completion; more would hold the engine for one caller indefinitely.
MAX_SEQUENCES = 256


@dataclass(frozen=True)
class PromptChoice:
    """One choice of a legacy completion: which prompt it continues and the text to echo."""

    prompt_index: int
    echo: str


def _is_token_ids(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(is_token_id(t) for t in value)


def completion_prompts(body: CompletionRequest) -> list[str | tuple[int, ...]]:
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
    requests: list[GenerationRequest], body: CompletionRequest, tokens: tuple[str, str, str] | None
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
    body: CompletionRequest, defaults: SamplingDefaults = OPENAI_DEFAULTS
) -> tuple[list[GenerationRequest], list[PromptChoice]]:
    """One `GenerationRequest` per prompt and choice, in OpenAI's choice order (placeholder request
    ids, as `from_chat_request`'s); a suffix is applied later by `to_fim_requests`."""
    if body.logprobs is not None:
        check_logprobs(True, body.logprobs, False, "logprobs")
    n = body.n or 1
    refuse_unsupported(body.logit_bias, n, body.best_of)
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
    params = msgspec.structs.replace(
        sampling_params(body, body.max_tokens, defaults), logprobs=body.logprobs is not None
    )
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
            requests.append(with_seed(base, j))
            choices.append(PromptChoice(prompt_index=k, echo=prompt if body.echo and isinstance(prompt, str) else ""))
    return requests, choices
