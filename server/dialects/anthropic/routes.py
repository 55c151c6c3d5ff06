"""POST /v1/messages (whole or streamed as Anthropic's events) and POST /v1/messages/count_tokens.

Routes are parse -> translate -> door -> answer; every error of this router is answered in
Anthropic's shape (errors.py). The `anthropic-version` and `anthropic-beta` headers are accepted and
not needed: there is one version of this dialect.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, post
from litestar.openapi.datastructures import ResponseSpec

from server.dialects.anthropic import protocol as a
from server.dialects.anthropic.errors import EXCEPTION_HANDLERS
from server.dialects.anthropic.limits import check_messages_request
from server.dialects.anthropic.stream import ContentBuilder, event_stream, to_whole
from server.dialects.anthropic.translate import (
    from_count_tokens_request,
    from_messages_request,
    new_id,
)
from server.http import sse
from server.http.openapi import StreamingOperation
from server.inference.call import EngineDoor
from server.settings import LimitSettings


def _errors() -> dict[int, ResponseSpec]:
    def spec(description: str) -> ResponseSpec:
        return ResponseSpec(data_container=a.AnthropicErrorResponse, description=description, generate_examples=False)

    return {
        400: spec("invalid_request_error (malformed body, missing max_tokens, context too long, refused blocks)"),
        401: spec("authentication_error"),
        404: spec("not_found_error (unknown model)"),
        529: spec("overloaded_error (the model is not available)"),
    }


@post(
    "/messages",
    summary="Create a message (Anthropic Messages API)",
    status_code=200,
    operation_class=StreamingOperation,
    responses={
        **_errors(),
        200: ResponseSpec(data_container=a.Message, description="The message; with `stream: true`, Anthropic's events"),
    },
)
async def create_message(
    data: a.MessagesRequest, request: Request[Any, Any, Any], door: EngineDoor, limits: LimitSettings
) -> a.Message | sse.EventStream:
    """Generate the assistant's next message: text, thinking (reasoning models) or tool_use blocks."""
    check_messages_request(data, limits)
    translated = from_messages_request(data, door.defaults(data.model, request))
    call = await door.generate(data.model, [translated.request], request=request, prefix="msg")
    builder = ContentBuilder(tools=translated.tools, reasoning=call.info.reasoning, thinking=translated.thinking)
    message_id = new_id("msg")
    if data.stream:
        return event_stream(call, builder, message_id, data.model)
    return await call.whole(to_whole(call, builder, message_id, data.model))


@post(
    "/messages/count_tokens",
    summary="Count the tokens of a message request",
    status_code=200,
    responses=_errors(),
)
async def count_tokens(
    data: a.CountTokensRequest, request: Request[Any, Any, Any], door: EngineDoor, limits: LimitSettings
) -> a.MessageTokensCount:
    """The prompt tokens a create request with these messages, system prompt and tools would use."""
    check_messages_request(data, limits)
    door.defaults(data.model, request)  # 404 for an unknown model before the queue
    turns = from_count_tokens_request(data)
    tokens = await door.tokenize(data.model, request=request, messages=turns, param="messages")
    return a.MessageTokensCount(input_tokens=len(tokens.ids))


router = Router(
    path="/v1",
    route_handlers=[create_message, count_tokens],
    tags=["anthropic"],
    exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
)
