"""OpenAI's Responses API (POST/GET/DELETE /v1/responses) as msgspec Structs, named as OpenAI names them.

Input items are decoded loosely (`dict`) and checked one by one in server/inference/responses/translate.py, because
OpenAI lets a message item leave out its `type` and mixes message, tool and reasoning items in one
list: a precise 400 per item beats a union error about the whole list.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from server.limits import ranges

Temperature = Annotated[float, Meta(ge=0.0, le=2.0)]
# OpenAI's bounds on `metadata`: 16 pairs, keys of at most 64 characters, values of at most 512.
Metadata = Annotated[
    dict[Annotated[str, Meta(max_length=64)], Annotated[str, Meta(max_length=512)]], Meta(max_length=16)
]
TopP = Annotated[float, Meta(ge=0.0, le=1.0)]
ResponseStatus = Literal["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"]
ItemStatus = Literal["in_progress", "completed", "incomplete"]


# --- request ---------------------------------------------------------------------------------


class TextFormat(msgspec.Struct):
    """`text.format` of a request and a response: plain text, any JSON object, or a JSON document
    matching `schema` (named, as OpenAI requires; the schema is always enforced, `strict` or not)."""

    type: str = "text"
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[a-zA-Z0-9_-]+$")] | UnsetType = UNSET
    schema_: dict[str, Any] | UnsetType = msgspec.field(default=UNSET, name="schema")
    description: str | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class TextConfig(msgspec.Struct):
    """`text` of a request and a response."""

    format: TextFormat = msgspec.field(default_factory=TextFormat)


class CreateResponse(msgspec.Struct, kw_only=True):
    """POST /v1/responses."""

    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    stream: bool | None = None
    max_output_tokens: ranges.TokenCount | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    # Non-standard, as in chat completions: keep generating past end-of-sequence, top-k and
    # min-p sampling, and a seed.
    ignore_eos: bool = False
    top_k: ranges.Count | None = None
    min_p: TopP | None = None
    seed: ranges.Seed | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    metadata: Metadata | None = None
    reasoning: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    background: bool | None = None
    conversation: str | dict[str, Any] | None = None
    user: str | None = None


class InputText(msgspec.Struct, tag="input_text", tag_field="type"):
    """A text part of an input message."""

    text: str


class OutputText(msgspec.Struct, tag="output_text", tag_field="type"):
    """Text the model wrote (in a response's output, or replayed as input)."""

    text: str
    annotations: list[dict[str, Any]] = msgspec.field(default_factory=list)
    logprobs: list[dict[str, Any]] = msgspec.field(default_factory=list)


class Refusal(msgspec.Struct, tag="refusal", tag_field="type"):
    """A refusal the model wrote, replayed as input."""

    refusal: str


class InputMessage(msgspec.Struct, kw_only=True):
    """A message input item (`EasyInputMessage`, or an earlier output message replayed)."""

    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputText | OutputText | Refusal]
    type: Literal["message"] = "message"
    id: str | None = None
    status: ItemStatus | None = None


# --- response --------------------------------------------------------------------------------


class OutputMessage(msgspec.Struct, kw_only=True, tag="message", tag_field="type"):
    """The assistant's message in a response's `output`."""

    id: str
    status: ItemStatus
    content: list[OutputText]
    role: Literal["assistant"] = "assistant"


class FunctionToolCall(msgspec.Struct, kw_only=True, tag="function_call", tag_field="type"):
    """A function call the model made (in `output`), or one replayed as input."""

    id: str
    call_id: str
    name: str
    arguments: str
    status: ItemStatus = "completed"


class FunctionCallOutput(msgspec.Struct, kw_only=True, tag="function_call_output", tag_field="type"):
    """A function's result, as GET .../input_items lists it."""

    id: str
    call_id: str
    output: str
    status: ItemStatus = "completed"


OutputItem = OutputMessage | FunctionToolCall


class InputTokensDetails(msgspec.Struct):
    """Cached input tokens (none are reported)."""

    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(msgspec.Struct):
    """Reasoning tokens (none for the models served here)."""

    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct, kw_only=True):
    """Token counts of a response."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: InputTokensDetails = msgspec.field(default_factory=InputTokensDetails)
    output_tokens_details: OutputTokensDetails = msgspec.field(default_factory=OutputTokensDetails)


class ResponseError(msgspec.Struct):
    """Why a response failed."""

    code: str
    message: str


class IncompleteDetails(msgspec.Struct):
    """Why a response stopped early."""

    reason: Literal["max_output_tokens", "content_filter"]


class Response(msgspec.Struct, kw_only=True):
    """A model response (POST and GET /v1/responses, and the `response` of stream events)."""

    id: str
    created_at: int
    status: ResponseStatus
    model: str
    output: list[OutputItem]
    instructions: str | None
    previous_response_id: str | None
    max_output_tokens: int | None
    temperature: float
    top_p: float
    store: bool
    metadata: dict[str, str]
    # Absent until the response is done: OpenAI's schema does not allow `usage: null`.
    usage: ResponseUsage | UnsetType = UNSET
    completed_at: int | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    tools: list[dict[str, Any]] = msgspec.field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = True
    text: TextConfig = msgspec.field(default_factory=TextConfig)
    truncation: Literal["auto", "disabled"] = "disabled"
    reasoning: None = None
    object: Literal["response"] = "response"


class DeletedResponse(msgspec.Struct):
    """DELETE /v1/responses/{id}."""

    id: str
    deleted: bool = True
    object: Literal["response"] = "response"


class InputItemMessage(msgspec.Struct, kw_only=True, tag="message", tag_field="type"):
    """An input message as GET /v1/responses/{id}/input_items lists it."""

    id: str
    role: Literal["user", "assistant", "system", "developer"]
    content: list[InputText | OutputText]
    status: ItemStatus = "completed"


InputItem = InputItemMessage | FunctionToolCall | FunctionCallOutput


class InputItemList(msgspec.Struct, kw_only=True):
    """GET /v1/responses/{id}/input_items."""

    data: list[InputItem]
    first_id: str
    last_id: str
    has_more: bool = False
    object: Literal["list"] = "list"


# --- stream events ---------------------------------------------------------------------------


class _Event(msgspec.Struct, kw_only=True, tag_field="type"):
    sequence_number: int


class ResponseCreatedEvent(_Event, tag="response.created"):
    response: Response


class ResponseInProgressEvent(_Event, tag="response.in_progress"):
    response: Response


class ResponseCompletedEvent(_Event, tag="response.completed"):
    response: Response


class ResponseIncompleteEvent(_Event, tag="response.incomplete"):
    response: Response


class ResponseOutputItemAddedEvent(_Event, tag="response.output_item.added"):
    output_index: int
    item: OutputItem


class ResponseOutputItemDoneEvent(_Event, tag="response.output_item.done"):
    output_index: int
    item: OutputItem


class _ItemEvent(_Event):
    """An event about one output item."""

    item_id: str
    output_index: int


class _PartEvent(_ItemEvent):
    """An event about one content part of an output item."""

    content_index: int


class ResponseFunctionCallArgumentsDeltaEvent(_ItemEvent, tag="response.function_call_arguments.delta"):
    delta: str


class ResponseFunctionCallArgumentsDoneEvent(_ItemEvent, tag="response.function_call_arguments.done"):
    name: str
    arguments: str


class ResponseContentPartAddedEvent(_PartEvent, tag="response.content_part.added"):
    part: OutputText


class ResponseContentPartDoneEvent(_PartEvent, tag="response.content_part.done"):
    part: OutputText


class ResponseTextDeltaEvent(_PartEvent, tag="response.output_text.delta"):
    delta: str
    logprobs: list[dict[str, Any]] = msgspec.field(default_factory=list)


class ResponseTextDoneEvent(_PartEvent, tag="response.output_text.done"):
    text: str
    logprobs: list[dict[str, Any]] = msgspec.field(default_factory=list)


class ResponseErrorEvent(_Event, tag="error"):
    message: str
    code: str | None = None
    param: str | None = None


ResponseStreamEvent = (
    ResponseCreatedEvent
    | ResponseInProgressEvent
    | ResponseCompletedEvent
    | ResponseIncompleteEvent
    | ResponseOutputItemAddedEvent
    | ResponseOutputItemDoneEvent
    | ResponseContentPartAddedEvent
    | ResponseContentPartDoneEvent
    | ResponseTextDeltaEvent
    | ResponseTextDoneEvent
    | ResponseFunctionCallArgumentsDeltaEvent
    | ResponseFunctionCallArgumentsDoneEvent
    | ResponseErrorEvent
)
