"""POST /v1/completions (legacy): a prompt string or a list of them, streamed or whole."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router

from server.http import sse
from server.http.openapi import streaming_post
from server.inference.call import EngineDoor, event_stream
from server.inference.completions.output import to_chunks, to_completion
from server.inference.completions.protocol import Completion, CompletionRequest
from server.inference.completions.translate import (
    from_completion_request,
    to_fim_requests,
)


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
        return sse.EventStream(event_stream(call, to_chunks(call, choices, logprobs), usage_chunk))
    return await call.whole(to_completion(call, choices, logprobs))


router = Router(path="/v1", route_handlers=[create_completion], tags=["completions"])
