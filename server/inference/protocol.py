"""OpenAI's wire format as msgspec Structs, named as OpenAI names them.

Requests are validated once, here, by type and range (the constraints also appear in Hearth's
OpenAPI document). Unknown request fields are ignored, as OpenAI-compatible servers commonly do, so
that clients sending newer parameters keep working. Response Structs keep their `None` fields:
clients expect `"logprobs": null` and `"finish_reason": null`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from server.limits import ranges
from server.serving.services import Priority


def published(**constraints: object) -> Meta:
    """Constraints for the OpenAPI document that Litestar's schema generation loses: bounds equal to
    0 (it skips falsy values) and limits inside unions. msgspec still enforces the real `Meta`."""
    return Meta(extra_json_schema={"extra": constraints})


Temperature = Annotated[float, Meta(ge=0.0, le=2.0), published(minimum=0)]
TopP = Annotated[float, Meta(ge=0.0, le=1.0), published(minimum=0)]
Penalty = Annotated[float, Meta(ge=-2.0, le=2.0)]
PositiveInt = Annotated[ranges.TokenCount, published(maximum=ranges.INT32_MAX)]
NonNegativeInt = Annotated[ranges.Count, published(minimum=0, maximum=ranges.INT32_MAX)]
Choices = Annotated[int, Meta(ge=1, le=128)]
# More than OpenAI's four: clients such as Continue send their whole list to other hosts. The
# count and length limits are settings, checked in translate.py `stop_strings`.
Stop = str | list[str]
Seed = ranges.Seed
TopLogprobs = Annotated[int, Meta(ge=0, le=20), published(minimum=0)]
FinishReason = Literal["stop", "length", "tool_calls"]


# --- requests --------------------------------------------------------------------------------


class TextPart(msgspec.Struct, tag="text", tag_field="type"):
    """A text content part."""

    text: str


class ImageUrlPart(msgspec.Struct, tag="image_url", tag_field="type"):
    """An image content part (not supported by text-only models)."""

    image_url: dict[str, Any]


class InputAudioPart(msgspec.Struct, tag="input_audio", tag_field="type"):
    """An audio content part (not supported by text-only models)."""

    input_audio: dict[str, Any]


class FilePart(msgspec.Struct, tag="file", tag_field="type"):
    """A file content part (not supported by text-only models)."""

    file: dict[str, Any]


class RefusalPart(msgspec.Struct, tag="refusal", tag_field="type"):
    """An assistant refusal content part."""

    refusal: str


ContentPart = TextPart | ImageUrlPart | InputAudioPart | FilePart | RefusalPart
Content = str | list[ContentPart]


class SystemMessage(msgspec.Struct, tag="system", tag_field="role"):
    """Instructions from the application."""

    content: Content
    name: str | None = None


class DeveloperMessage(msgspec.Struct, tag="developer", tag_field="role"):
    """Instructions from the developer (OpenAI's newer name for system)."""

    content: Content
    name: str | None = None


class UserMessage(msgspec.Struct, tag="user", tag_field="role"):
    """A message from the user."""

    content: Content
    name: str | None = None


class FunctionCall(msgspec.Struct):
    """The function a tool call calls, and its arguments as a JSON text."""

    name: str
    arguments: str


class ToolCall(msgspec.Struct):
    """A call of a function tool by the model."""

    id: str
    function: FunctionCall
    type: Literal["function"] = "function"


class AssistantMessage(msgspec.Struct, tag="assistant", tag_field="role"):
    """An earlier answer of the model."""

    content: Content | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(msgspec.Struct, tag="tool", tag_field="role"):
    """The result of a tool call."""

    content: Content
    tool_call_id: str


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage


class StreamOptions(msgspec.Struct):
    """Options for streamed responses."""

    include_usage: bool | None = None


class JSONSchemaFormat(msgspec.Struct):
    """A named JSON schema the answer must match."""

    name: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    schema_: dict[str, Any] | None = msgspec.field(default=None, name="schema")
    strict: bool | None = None


class ResponseFormat(msgspec.Struct):
    """The requested output format."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class FunctionDefinition(msgspec.Struct):
    """A function the model may call."""

    name: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(msgspec.Struct):
    """A tool of a chat completion request (functions are the only kind)."""

    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(msgspec.Struct):
    """Names the function a named tool choice forces."""

    name: str


class NamedToolChoice(msgspec.Struct):
    """tool_choice that forces a call of one function."""

    type: Literal["function"]
    function: FunctionName


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class GenerationFields(msgspec.Struct, kw_only=True):
    """Sampling and streaming fields that chat and legacy completions share."""

    model: str
    temperature: Temperature | None = None
    top_p: TopP | None = None
    n: Choices | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: Stop | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    seed: Seed | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # Non-standard, as vLLM and llama.cpp accept them: keep generating past end-of-sequence;
    # top-k and min-p sampling (0 turns them off).
    ignore_eos: bool = False
    top_k: NonNegativeInt | None = None
    min_p: TopP | None = None
    # Hearth's scheduling extensions: admission priority (higher first; default: the service's)
    # and, as Ollama's, how long the model stays loaded afterwards ("5m", seconds; negative: forever).
    priority: Priority | None = None
    keep_alive: float | str | None = None

    @property
    def include_usage(self) -> bool:
        """Whether a stream should end with a usage chunk."""
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


# --- responses -------------------------------------------------------------------------------


class Usage(msgspec.Struct):
    """Token counts of a request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TopLogprob(msgspec.Struct):
    """A likely token at one position."""

    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(msgspec.Struct):
    """A generated token with its log probability (and the most likely alternatives)."""

    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(msgspec.Struct):
    """Log probabilities of a chat choice's content tokens."""

    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None = None


class CallObject(msgspec.Struct):
    """The fields every answer and chunk of one call repeats (`Call.fields()`)."""

    id: str
    created: int
    model: str
    system_fingerprint: str
