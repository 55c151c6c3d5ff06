"""POST /v1/chat/completions: streamed (SSE) and whole answers from the same delta stream."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router

from server.http import sse
from server.http.openapi import streaming_post
from server.inference.call import EngineDoor, event_stream
from server.inference.chat.output import ChoiceOutput, to_chat_completion, to_chunks
from server.inference.chat.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
)
from server.inference.chat.translate import from_chat_request
from server.inference.limits import check_chat_request
from server.settings import LimitSettings


@streaming_post(
    "/chat/completions",
    "Create a chat completion",
    ChatCompletion,
    "The completion; with `stream: true`, a text/event-stream of chat.completion.chunk events",
)
async def create_chat_completion(
    data: ChatCompletionRequest, request: Request[Any, Any, Any], door: EngineDoor, limits: LimitSettings
) -> ChatCompletion | sse.EventStream:
    """Generate the assistant's next message for a conversation."""
    check_chat_request(data, limits)
    defaults = door.defaults(data.model, request)
    requests = from_chat_request(data, defaults)
    call = await door.generate(
        data.model,
        requests,
        request=request,
        priority=data.priority,
        keep_alive=data.keep_alive,
        include_usage=data.include_usage,
    )
    constraint = requests[0].constraint
    tools = constraint is not None and bool(constraint.tags)
    max_calls = 1 if constraint is not None and constraint.single else defaults.max_tool_calls
    outputs = [
        ChoiceOutput(tools=tools, reasoning=call.info.reasoning, logprobs=bool(data.logprobs), max_tool_calls=max_calls)
        for _ in requests
    ]
    if data.stream:
        usage_chunk = lambda usage: ChatCompletionChunk(**call.fields(), choices=[], usage=usage)  # noqa: E731
        return sse.EventStream(event_stream(call, to_chunks(call, outputs), usage_chunk))
    return await call.whole(to_chat_completion(call, outputs))


router = Router(path="/v1", route_handlers=[create_chat_completion], tags=["chat"])
