"""POST /v1/chat/completions: streamed (SSE) and whole answers from the same delta stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Router

from server.http import sse
from server.http.openapi import streaming_post
from server.inference import protocol as p
from server.inference.call import Call, EngineDoor, event_stream
from server.inference.chat.output import ChoiceOutput, is_empty
from server.inference.chat.protocol import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceDelta,
    ChunkChoice,
)
from server.inference.chat.translate import from_chat_request


def to_chunk(
    call: Call,
    index: int,
    delta: ChoiceDelta,
    finish: p.FinishReason | None = None,
    logprobs: p.ChoiceLogprobs | None = None,
) -> ChatCompletionChunk:
    choice = ChunkChoice(index=index, delta=delta, finish_reason=finish, logprobs=logprobs)
    """One choice's piece of a streamed answer."""
    return ChatCompletionChunk(**call.chunk_fields(), choices=[choice])


async def _chunks(call: Call, outputs: list[ChoiceOutput]) -> AsyncIterator[ChatCompletionChunk]:
    started: set[int] = set()
    async for index, delta in call.deltas():
        if index not in started:
            started.add(index)
            yield to_chunk(call, index, ChoiceDelta(role="assistant", content=""))
        out, logprobs = outputs[index].feed(delta)
        if not is_empty(out) or logprobs is not None:
            yield to_chunk(call, index, out, logprobs=logprobs)
        if delta.final:
            yield to_chunk(call, index, ChoiceDelta(), outputs[index].finish)


async def to_chat_completion(call: Call, outputs: list[ChoiceOutput]) -> ChatCompletion:
    """The whole answer, once every choice has finished."""
    async for index, delta in call.deltas():
        outputs[index].feed(delta)
    choices = [
        ChatChoice(index=i, message=out.message(), finish_reason=out.finish, logprobs=out.choice_logprobs())
        for i, out in enumerate(outputs)
    ]
    return ChatCompletion(**call.fields(), choices=choices, usage=call.usage.usage())


@streaming_post(
    "/chat/completions",
    "Create a chat completion",
    ChatCompletion,
    "The completion; with `stream: true`, a text/event-stream of chat.completion.chunk events",
)
async def create_chat_completion(
    data: ChatCompletionRequest, request: Request[Any, Any, Any], door: EngineDoor
) -> ChatCompletion | sse.EventStream:
    """Generate the assistant's next message for a conversation."""
    requests = from_chat_request(data, door.defaults(data.model, request))
    call = await door.generate(
        data.model,
        requests,
        request=request,
        priority=data.priority,
        keep_alive=data.keep_alive,
        include_usage=data.include_usage,
    )
    tools = any(r.constraint is not None and r.constraint.tags for r in requests)
    outputs = [ChoiceOutput(tools=tools, reasoning=call.info.reasoning, logprobs=bool(data.logprobs)) for _ in requests]
    if data.stream:
        usage_chunk = lambda usage: ChatCompletionChunk(**call.fields(), choices=[], usage=usage)  # noqa: E731
        return sse.EventStream(event_stream(call, _chunks(call, outputs), usage_chunk))
    return await call.whole(to_chat_completion(call, outputs))


router = Router(path="/v1", route_handlers=[create_chat_completion], tags=["chat"])
