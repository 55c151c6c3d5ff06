"""POST /v1/chat/completions: streamed (SSE) and whole answers from the same delta stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Router, post
from litestar.openapi.datastructures import ResponseSpec

from server.http import sse
from server.http.disconnect import unless_disconnected
from server.http.openapi import ERRORS, StreamingOperation
from server.inference import protocol as p
from server.inference.admission import admit
from server.inference.call import Call, event_stream
from server.inference.chat.output import ChoiceOutput, is_empty
from server.inference.fanin import FanIn
from server.inference.translate import chat_requests
from server.serving.metrics import Metrics
from server.serving.scheduler import Scheduler


def _chunk(
    call: Call,
    index: int,
    delta: p.ChoiceDelta,
    finish: p.FinishReason | None = None,
    logprobs: p.ChoiceLogprobs | None = None,
) -> p.ChatCompletionChunk:
    choice = p.ChunkChoice(index=index, delta=delta, finish_reason=finish, logprobs=logprobs)
    return p.ChatCompletionChunk(**call.chunk_fields(), choices=[choice])


async def _chunks(call: Call, outputs: list[ChoiceOutput]) -> AsyncIterator[p.ChatCompletionChunk]:
    started: set[int] = set()
    async for index, delta in call.deltas():
        if index not in started:
            started.add(index)
            yield _chunk(call, index, p.ChoiceDelta(role="assistant", content=""))
        out, logprobs = outputs[index].feed(delta)
        if not is_empty(out) or logprobs is not None:
            yield _chunk(call, index, out, logprobs=logprobs)
        if delta.final:
            yield _chunk(call, index, p.ChoiceDelta(), outputs[index].finish)


async def _whole(call: Call, outputs: list[ChoiceOutput]) -> p.ChatCompletion:
    async for index, delta in call.deltas():
        outputs[index].feed(delta)
    choices = [
        p.ChatChoice(index=i, message=out.message(), finish_reason=out.finish, logprobs=out.choice_logprobs())
        for i, out in enumerate(outputs)
    ]
    return p.ChatCompletion(**call.fields(), choices=choices, usage=call.usage.usage())


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
    data: p.ChatCompletionRequest,
    request: Request[Any, Any, Any],
    scheduler: Scheduler,
    metrics: Metrics,
    fingerprint: str,
) -> p.ChatCompletion | sse.EventStream:
    """Generate the assistant's next message for a conversation."""
    lease, watcher = await admit(request, data, scheduler, metrics)
    try:
        engine = lease.engine
        requests = chat_requests(data, iter(engine.next_request_id, None), lease.deployment.sampling)
        tools = any(r.constraint is not None and r.constraint.tags for r in requests)
        outputs = [
            ChoiceOutput(tools=tools, reasoning=engine.info.reasoning, logprobs=bool(data.logprobs)) for _ in requests
        ]
        fan = FanIn(engine, requests)
        await fan.start()
    except BaseException:
        watcher.done()
        raise
    call = Call(
        prefix="chatcmpl",
        model=data.model,
        fingerprint=fingerprint,
        fan=fan,
        prompt_of_choice=[0] * len(requests),
        include_usage=data.include_usage,
        watcher=watcher,
    )
    if data.stream:
        usage_chunk = lambda usage: p.ChatCompletionChunk(**call.fields(), choices=[], usage=usage)  # noqa: E731
        return sse.EventStream(event_stream(call, _chunks(call, outputs), usage_chunk))
    try:
        return await unless_disconnected(request, _whole(call, outputs))
    finally:
        await call.close()


router = Router(path="/v1", route_handlers=[create_chat_completion], tags=["chat"])
