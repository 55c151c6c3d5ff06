"""POST /v1/completions (legacy): a prompt string or a list of them, streamed or whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Router

from adapters.base import Delta
from server.http import sse
from server.http.openapi import streaming_post
from server.inference import protocol as p
from server.inference.call import Call, EngineDoor, event_stream
from server.inference.completions.protocol import Completion, CompletionChoice, CompletionLogprobs, CompletionRequest
from server.inference.completions.translate import (
    PromptChoice,
    completion_logprobs,
    from_completion_request,
    to_fim_requests,
)
from server.inference.translate import finish_reason


def to_chunk(
    call: Call,
    index: int,
    text: str,
    finish: p.FinishReason | None = None,
    logprobs: CompletionLogprobs | None = None,
) -> Completion:
    choice = CompletionChoice(index=index, text=text, finish_reason=finish, logprobs=logprobs)
    """One choice's piece of a streamed answer."""
    return Completion(**call.chunk_fields(), choices=[choice])


async def _chunks(call: Call, choices: list[PromptChoice], logprobs: bool) -> AsyncIterator[Completion]:
    started: set[int] = set()
    offsets = [len(choice.echo) for choice in choices]
    async for index, delta in call.deltas():
        text = delta.text
        if index not in started:
            started.add(index)
            text = choices[index].echo + text
        if text or delta.logprobs:
            lp = completion_logprobs([delta], offsets[index]) if logprobs else None
            offsets[index] += sum(len(t.token) for t in delta.logprobs)
            yield to_chunk(call, index, text, logprobs=lp)
        if delta.final:
            yield to_chunk(call, index, "", finish_reason(delta))


async def to_completion(call: Call, choices: list[PromptChoice], logprobs: bool) -> Completion:
    """The whole answer, once every choice has finished."""
    deltas: list[list[Delta]] = [[] for _ in choices]
    async for index, delta in call.deltas():
        deltas[index].append(delta)
    out = [
        CompletionChoice(
            index=i,
            text=choice.echo + "".join(d.text for d in parts),
            finish_reason=finish_reason(parts[-1]),
            logprobs=completion_logprobs(parts, len(choice.echo)) if logprobs else None,
        )
        for i, (choice, parts) in enumerate(zip(choices, deltas, strict=True))
    ]
    return Completion(**call.fields(), choices=out, usage=call.usage.usage())


@streaming_post(
    "/completions",
    "Create a completion (legacy)",
    Completion,
    "The completion; with `stream: true`, a text/event-stream of text_completion events",
)
async def create_completion(
    data: CompletionRequest, request: Request[Any, Any, Any], door: EngineDoor
) -> Completion | sse.EventStream:
    """Continue one or several text prompts."""
    requests, choices = from_completion_request(data, door.defaults(data.model, request))
    call = await door.generate(
        data.model,
        requests,
        request=request,
        priority=data.priority,
        keep_alive=data.keep_alive,
        prompt_param="prompt",
        prefix="cmpl",
        prompt_of_choice=[c.prompt_index for c in choices],
        include_usage=data.include_usage,
        prepare=lambda info, requests: to_fim_requests(requests, data, info.fim_tokens),
    )
    logprobs = data.logprobs is not None
    if data.stream:
        usage_chunk = lambda usage: Completion(**call.fields(), choices=[], usage=usage)  # noqa: E731
        return sse.EventStream(event_stream(call, _chunks(call, choices, logprobs), usage_chunk))
    return await call.whole(to_completion(call, choices, logprobs))


router = Router(path="/v1", route_handlers=[create_completion], tags=["completions"])
