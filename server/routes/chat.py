"""POST /v1/chat/completions: streamed (SSE) and whole answers from the same delta stream."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Router, post
from litestar.openapi.datastructures import ResponseSpec

from server import protocol as p
from server import sse
from server.disconnect import unless_disconnected
from server.engines import EngineRegistry
from server.errors import APIError
from server.fanin import FanIn
from server.openapi import ERRORS, StreamingOperation
from server.translate import UsageCounter, chat_requests, finish_reason, require_no_error


class ChatContext:
    """The fixed fields every chunk of one completion repeats."""

    def __init__(self, model: str, fingerprint: str, n: int, include_usage: bool) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.fingerprint = fingerprint
        self.include_usage = include_usage
        self.usage = UsageCounter([0] * n)

    def chunk(self, index: int, delta: p.ChoiceDelta, finish: p.FinishReason | None = None) -> p.ChatCompletionChunk:
        chunk = p.ChatCompletionChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            system_fingerprint=self.fingerprint,
            choices=[p.ChunkChoice(index=index, delta=delta, finish_reason=finish)],
        )
        if self.include_usage:
            chunk.usage = None
        return chunk


async def _events(fan: FanIn, ctx: ChatContext) -> AsyncIterator[bytes]:
    encoder = sse.EventEncoder()
    started: set[int] = set()
    try:
        async for index, delta in fan:
            require_no_error(delta)
            ctx.usage.add(index, delta)
            if index not in started:
                started.add(index)
                yield encoder.event(ctx.chunk(index, p.ChoiceDelta(role="assistant", content="")))
            if delta.text:
                yield encoder.event(ctx.chunk(index, p.ChoiceDelta(content=delta.text)))
            if delta.final:
                yield encoder.event(ctx.chunk(index, p.ChoiceDelta(), finish_reason(delta)))
        if ctx.include_usage:
            yield encoder.event(
                p.ChatCompletionChunk(
                    id=ctx.id,
                    created=ctx.created,
                    model=ctx.model,
                    system_fingerprint=ctx.fingerprint,
                    choices=[],
                    usage=ctx.usage.usage(),
                )
            )
    except APIError as error:
        yield encoder.error(error)
    finally:
        await fan.close()
    yield sse.DONE


async def _collect(fan: FanIn, ctx: ChatContext, n: int) -> p.ChatCompletion:
    texts: list[list[str]] = [[] for _ in range(n)]
    finishes: list[p.FinishReason | None] = [None] * n
    try:
        async for index, delta in fan:
            require_no_error(delta)
            ctx.usage.add(index, delta)
            texts[index].append(delta.text)
            if delta.final:
                finishes[index] = finish_reason(delta)
    finally:
        await fan.close()
    choices = [
        p.ChatChoice(index=i, message=p.ChatMessageOut(content="".join(texts[i])), finish_reason=finishes[i])
        for i in range(n)
    ]
    return p.ChatCompletion(
        id=ctx.id,
        created=ctx.created,
        model=ctx.model,
        choices=choices,
        usage=ctx.usage.usage(),
        system_fingerprint=ctx.fingerprint,
    )


@post(
    "/chat/completions",
    summary="Create a chat completion",
    status_code=200,
    operation_class=StreamingOperation,
    responses={
        **ERRORS,
        200: ResponseSpec(
            data_container=p.ChatCompletion,
            description="The completion; with `stream: true`, a text/event-stream of chat.completion.chunk events",
        ),
    },
)
async def create_chat_completion(
    data: p.ChatCompletionRequest, request: Request[Any, Any, Any], engines: EngineRegistry, fingerprint: str
) -> p.ChatCompletion | sse.EventStream:
    """Generate the assistant's next message for a conversation."""
    engine = await engines.acquire(data.model)
    requests = chat_requests(data, iter(engine.next_request_id, None))
    n = len(requests)
    include_usage = bool(data.stream and data.stream_options and data.stream_options.include_usage)
    ctx = ChatContext(data.model, fingerprint, n, include_usage)
    fan = FanIn(engine, requests)
    await fan.start()
    if data.stream:
        return sse.EventStream(_events(fan, ctx))
    return await unless_disconnected(request, _collect(fan, ctx, n))


router = Router(path="/v1", route_handlers=[create_chat_completion], tags=["chat"])
