"""POST /v1/completions (legacy): a prompt string or a list of them, streamed or whole."""

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
from server.translate import PromptChoice, UsageCounter, completion_requests, finish_reason, require_no_error


class CompletionContext:
    """The fixed fields every chunk of one completion repeats."""

    def __init__(self, model: str, fingerprint: str, choices: list[PromptChoice], include_usage: bool) -> None:
        self.id = f"cmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.fingerprint = fingerprint
        self.choices = choices
        self.include_usage = include_usage
        self.usage = UsageCounter([c.prompt_index for c in choices])

    def chunk(self, index: int, text: str, finish: p.FinishReason | None = None) -> p.Completion:
        chunk = p.Completion(
            id=self.id,
            created=self.created,
            model=self.model,
            system_fingerprint=self.fingerprint,
            choices=[p.CompletionChoice(index=index, text=text, finish_reason=finish)],
        )
        if self.include_usage:
            chunk.usage = None
        return chunk


async def _events(fan: FanIn, ctx: CompletionContext) -> AsyncIterator[bytes]:
    encoder = sse.EventEncoder()
    started: set[int] = set()
    try:
        async for index, delta in fan:
            require_no_error(delta, "prompt")
            ctx.usage.add(index, delta)
            text = delta.text
            if index not in started:
                started.add(index)
                text = ctx.choices[index].echo + text
            if text:
                yield encoder.event(ctx.chunk(index, text))
            if delta.final:
                yield encoder.event(ctx.chunk(index, "", finish_reason(delta)))
        if ctx.include_usage:
            yield encoder.event(
                p.Completion(
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


async def _collect(fan: FanIn, ctx: CompletionContext) -> p.Completion:
    texts = [[choice.echo] for choice in ctx.choices]
    finishes: list[p.FinishReason | None] = [None] * len(ctx.choices)
    try:
        async for index, delta in fan:
            require_no_error(delta, "prompt")
            ctx.usage.add(index, delta)
            texts[index].append(delta.text)
            if delta.final:
                finishes[index] = finish_reason(delta)
    finally:
        await fan.close()
    choices = [
        p.CompletionChoice(index=i, text="".join(texts[i]), finish_reason=finishes[i]) for i in range(len(texts))
    ]
    return p.Completion(
        id=ctx.id,
        created=ctx.created,
        model=ctx.model,
        system_fingerprint=ctx.fingerprint,
        choices=choices,
        usage=ctx.usage.usage(),
    )


@post(
    "/completions",
    summary="Create a completion (legacy)",
    status_code=200,
    operation_class=StreamingOperation,
    responses={
        **ERRORS,
        200: ResponseSpec(
            data_container=p.Completion,
            description="The completion; with `stream: true`, a text/event-stream of text_completion events",
        ),
    },
)
async def create_completion(
    data: p.CompletionRequest, request: Request[Any, Any, Any], engines: EngineRegistry, fingerprint: str
) -> p.Completion | sse.EventStream:
    """Continue one or several text prompts."""
    engine = await engines.acquire(data.model)
    requests, choices = completion_requests(data, iter(engine.next_request_id, None))
    include_usage = bool(data.stream and data.stream_options and data.stream_options.include_usage)
    ctx = CompletionContext(data.model, fingerprint, choices, include_usage)
    fan = FanIn(engine, requests, prompt_param="prompt")
    await fan.start()
    if data.stream:
        return sse.EventStream(_events(fan, ctx))
    return await unless_disconnected(request, _collect(fan, ctx))


router = Router(path="/v1", route_handlers=[create_completion], tags=["completions"])
