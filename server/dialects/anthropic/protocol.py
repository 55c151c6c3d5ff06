"""Anthropic's Messages API wire format as msgspec Structs, named as Anthropic's SDK names them.

Requests are validated once, here, by type and range (Anthropic's own bounds: `max_tokens` is
required, `temperature` and `top_p` in [0, 1]). Unknown request fields are ignored, so clients that
send newer parameters keep working. Content blocks are tagged by `type`; the blocks a text model
cannot take (images, documents) are decoded so that translation can refuse them by name. Names
that the OpenAI side also uses (`ErrorResponse`, `Usage`) get another here, so that each keeps its
own component name in the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from server.limits import ranges

# Bounded as every dialect's integers are (server/limits/ranges.py): none reaches an engine unbounded.
PositiveInt = ranges.TokenCount
UnitFloat = Annotated[float, Meta(ge=0.0, le=1.0)]
StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


# --- request content blocks ----------------------------------------------------------------------


class TextBlockParam(msgspec.Struct, tag="text", tag_field="type"):
    """A text block (`cache_control` and `citations` are accepted and ignored)."""

    text: str
    cache_control: dict[str, Any] | None = None
    citations: list[dict[str, Any]] | None = None


class ImageBlockParam(msgspec.Struct, tag="image", tag_field="type"):
    """An image block: refused, the served models read text only."""

    source: dict[str, Any]


class DocumentBlockParam(msgspec.Struct, tag="document", tag_field="type"):
    """A document (PDF or text source) block: refused."""

    source: dict[str, Any]


class ToolUseBlockParam(msgspec.Struct, tag="tool_use", tag_field="type"):
    """An earlier tool call of the assistant."""

    id: str
    name: str
    input: dict[str, Any]
    cache_control: dict[str, Any] | None = None


ToolResultContent = TextBlockParam | ImageBlockParam | DocumentBlockParam


class ToolResultBlockParam(msgspec.Struct, tag="tool_result", tag_field="type"):
    """What a tool call returned, sent back in a user turn."""

    tool_use_id: str
    content: str | list[ToolResultContent] | None = None
    is_error: bool = False
    cache_control: dict[str, Any] | None = None


class ThinkingBlockParam(msgspec.Struct, tag="thinking", tag_field="type"):
    """Earlier thinking of the assistant (accepted, not shown to the model again)."""

    thinking: str
    signature: str = ""


class RedactedThinkingBlockParam(msgspec.Struct, tag="redacted_thinking", tag_field="type"):
    """Earlier redacted thinking (accepted, not shown to the model again)."""

    data: str


ContentBlockParam = (
    TextBlockParam
    | ImageBlockParam
    | DocumentBlockParam
    | ToolUseBlockParam
    | ToolResultBlockParam
    | ThinkingBlockParam
    | RedactedThinkingBlockParam
)


class MessageParam(msgspec.Struct):
    """One turn of the conversation (a `system` turn holds text only, as newer SDKs send it)."""

    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlockParam]


# --- tools and thinking --------------------------------------------------------------------------


class ToolParam(msgspec.Struct, kw_only=True):
    """A client tool; a server tool (any other `type`, e.g. `web_search_20250305`) is refused."""

    name: Annotated[str, Meta(min_length=1, max_length=128)]
    input_schema: dict[str, Any] | None = None
    description: str | None = None
    type: str | None = None
    cache_control: dict[str, Any] | None = None
    strict: bool | None = None


class ToolChoiceAuto(msgspec.Struct, tag="auto", tag_field="type"):
    """The model decides whether to call tools."""

    disable_parallel_tool_use: bool = False


class ToolChoiceAny(msgspec.Struct, tag="any", tag_field="type"):
    """The model must call at least one tool."""

    disable_parallel_tool_use: bool = False


class ToolChoiceTool(msgspec.Struct, tag="tool", tag_field="type"):
    """The model must call the named tool."""

    name: str
    disable_parallel_tool_use: bool = False


class ToolChoiceNone(msgspec.Struct, tag="none", tag_field="type"):
    """The model must not call tools."""


ToolChoice = ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone


class ThinkingEnabled(msgspec.Struct, tag="enabled", tag_field="type"):
    """Show the model's thinking as thinking blocks (the budget is not enforced: see the docs)."""

    budget_tokens: Annotated[int, Meta(ge=1024, le=ranges.INT32_MAX)]
    display: Literal["summarized", "omitted"] | None = None


class ThinkingAdaptive(msgspec.Struct, tag="adaptive", tag_field="type"):
    """The model decides whether to think; shown like `enabled`."""

    display: Literal["summarized", "omitted"] | None = None


class ThinkingDisabled(msgspec.Struct, tag="disabled", tag_field="type"):
    """No thinking blocks in the answer."""


Thinking = ThinkingEnabled | ThinkingAdaptive | ThinkingDisabled


class JSONOutputFormat(msgspec.Struct, tag="json_schema", tag_field="type"):
    """Structured output: the answer's text is a JSON document matching `schema`."""

    schema: dict[str, Any]


class OutputConfig(msgspec.Struct, kw_only=True):
    """Output options: the format is enforced by grammar; `effort` is accepted and not used."""

    format: JSONOutputFormat | None = None
    effort: str | None = None


System = str | list[TextBlockParam]


class MessagesRequest(msgspec.Struct, kw_only=True):
    """POST /v1/messages."""

    model: str
    max_tokens: PositiveInt
    messages: list[MessageParam]
    system: System | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: UnitFloat | None = None
    top_p: UnitFloat | None = None
    top_k: ranges.Count | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None
    output_config: OutputConfig | None = None


class CountTokensRequest(msgspec.Struct, kw_only=True):
    """POST /v1/messages/count_tokens: what a create request would send, without generating."""

    model: str
    messages: list[MessageParam]
    system: System | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None


# --- answers -------------------------------------------------------------------------------------


class TextBlock(msgspec.Struct, tag="text", tag_field="type"):
    """Generated text."""

    text: str


class ThinkingBlock(msgspec.Struct, tag="thinking", tag_field="type"):
    """A reasoning model's thinking; `signature` is empty (nothing here is signed)."""

    thinking: str
    signature: str = ""


class ToolUseBlock(msgspec.Struct, tag="tool_use", tag_field="type"):
    """A tool call: `toolu_...` id, the tool's name and its input object."""

    id: str
    name: str
    input: dict[str, Any]


ContentBlock = TextBlock | ThinkingBlock | ToolUseBlock


class MessageUsage(msgspec.Struct):
    """Token counts (no prompt caching here: its counts are always 0)."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class Message(msgspec.Struct, tag="message", tag_field="type"):
    """The answer of POST /v1/messages (`id` is `msg_...`)."""

    id: str
    model: str
    content: list[ContentBlock]
    stop_reason: StopReason | None
    stop_sequence: str | None
    usage: MessageUsage
    role: Literal["assistant"] = "assistant"


class MessageTokensCount(msgspec.Struct):
    """The answer of POST /v1/messages/count_tokens."""

    input_tokens: int


# --- stream events -------------------------------------------------------------------------------


class TextDelta(msgspec.Struct, tag="text_delta", tag_field="type"):
    """More text of a text block."""

    text: str


class InputJSONDelta(msgspec.Struct, tag="input_json_delta", tag_field="type"):
    """More of a tool_use block's input, as partial JSON text."""

    partial_json: str


class ThinkingDelta(msgspec.Struct, tag="thinking_delta", tag_field="type"):
    """More thinking of a thinking block."""

    thinking: str


class SignatureDelta(msgspec.Struct, tag="signature_delta", tag_field="type"):
    """A thinking block's signature, sent just before the block stops."""

    signature: str


BlockDelta = TextDelta | InputJSONDelta | ThinkingDelta | SignatureDelta


class MessageStartEvent(msgspec.Struct, tag="message_start", tag_field="type"):
    """The message, empty, with the prompt's usage."""

    message: Message


class ContentBlockStartEvent(msgspec.Struct, tag="content_block_start", tag_field="type"):
    """A content block begins (empty text, empty thinking, or a tool_use with input `{}`)."""

    index: int
    content_block: ContentBlock


class ContentBlockDeltaEvent(msgspec.Struct, tag="content_block_delta", tag_field="type"):
    """A piece of the block at `index`."""

    index: int
    delta: BlockDelta


class ContentBlockStopEvent(msgspec.Struct, tag="content_block_stop", tag_field="type"):
    """The block at `index` is complete."""

    index: int


class MessageDeltaBody(msgspec.Struct):
    """Why the message stopped."""

    stop_reason: StopReason | None
    stop_sequence: str | None = None


class MessageDeltaUsage(msgspec.Struct):
    """Cumulative usage at the end of the message."""

    output_tokens: int
    input_tokens: int | None = None


class MessageDeltaEvent(msgspec.Struct, tag="message_delta", tag_field="type"):
    """The stop reason and final usage."""

    delta: MessageDeltaBody
    usage: MessageDeltaUsage


class MessageStopEvent(msgspec.Struct, tag="message_stop", tag_field="type"):
    """The stream's last event."""


class PingEvent(msgspec.Struct, tag="ping", tag_field="type"):
    """Keeps the connection alive; clients skip it."""


class AnthropicErrorBody(msgspec.Struct):
    """Anthropic's error object."""

    type: str
    message: str


class AnthropicErrorResponse(msgspec.Struct, tag="error", tag_field="type"):
    """The body of every error answer of this dialect, and the data of a stream's `error` event."""

    error: AnthropicErrorBody


StreamEvent = (
    MessageStartEvent
    | ContentBlockStartEvent
    | ContentBlockDeltaEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
    | PingEvent
    | AnthropicErrorResponse
)
