"""The legacy completions wire types (POST /v1/completions), on the shared OpenAI fields."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from server.inference.protocol import CallObject, FinishReason, GenerationFields, NonNegativeInt, Usage, published

LegacyLogprobs = Annotated[int, Meta(ge=0, le=5), published(minimum=0)]


class CompletionRequest(GenerationFields, kw_only=True):
    """POST /v1/completions (legacy)."""

    # A string, a list of strings, token ids, or lists of token ids (checked in translate).
    prompt: str | list[Any]
    max_tokens: NonNegativeInt | None = 16
    logprobs: LegacyLogprobs | None = None
    echo: bool | None = None
    best_of: Annotated[int, Meta(ge=1, le=20)] | None = None
    suffix: str | None = None


class CompletionLogprobs(msgspec.Struct):
    """Log probabilities of a legacy completion's tokens, in its parallel-list shape."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(msgspec.Struct):
    """One text of a legacy completion (also used for its stream chunks)."""

    index: int
    text: str
    finish_reason: FinishReason | None
    logprobs: CompletionLogprobs | None = None


class Completion(CallObject):
    """Response (or stream chunk) of a legacy completion."""

    choices: list[CompletionChoice]
    object: Literal["text_completion"] = "text_completion"
    usage: Usage | UnsetType | None = UNSET
