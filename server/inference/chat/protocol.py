"""The chat completions wire types (POST /v1/chat/completions), on the shared OpenAI fields."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from server.inference.protocol import (
    CallObject,
    ChoiceLogprobs,
    FinishReason,
    GenerationFields,
    Message,
    PositiveInt,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
    TopLogprobs,
    Usage,
)


class ChatCompletionRequest(GenerationFields, kw_only=True):
    """POST /v1/chat/completions."""

    messages: Annotated[list[Message], Meta(min_length=1)]
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None


class ChatMessageOut(msgspec.Struct):
    """The assistant's answer in a non-streamed chat completion; `reasoning_content` (a reasoning
    model's thinking, as DeepSeek and vLLM return it) and `tool_calls` only when there are any."""

    content: str | None
    role: Literal["assistant"] = "assistant"
    refusal: str | None = None
    tool_calls: list[ToolCall] | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET


class ChatChoice(msgspec.Struct):
    """One answer of a chat completion."""

    index: int
    message: ChatMessageOut
    finish_reason: FinishReason | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(CallObject):
    """Response of a non-streamed chat completion."""

    choices: list[ChatChoice]
    usage: Usage
    object: Literal["chat.completion"] = "chat.completion"


class FunctionCallDelta(msgspec.Struct):
    """Part of a streamed tool call's function: its name once, then pieces of its arguments."""

    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ToolCallDelta(msgspec.Struct):
    """Part of a streamed tool call; `index` (and `id` in the first part) says which call."""

    index: int
    function: FunctionCallDelta
    id: str | UnsetType = UNSET
    type: Literal["function"] | UnsetType = UNSET


class ChoiceDelta(msgspec.Struct):
    """What one stream chunk adds to a choice; absent fields are left out, as OpenAI does."""

    role: Literal["assistant"] | UnsetType = UNSET
    content: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType = UNSET


class ChunkChoice(msgspec.Struct):
    """One choice's part of a stream chunk."""

    index: int
    delta: ChoiceDelta
    finish_reason: FinishReason | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(CallObject):
    """One server-sent event of a streamed chat completion."""

    choices: list[ChunkChoice]
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    # Present (null, then the counts in the last chunk) only with stream_options.include_usage.
    usage: Usage | UnsetType | None = UNSET
