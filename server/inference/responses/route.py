"""POST /v1/responses (whole or streamed as typed events), GET and DELETE /v1/responses/{id},
GET /v1/responses/{id}/input_items."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import msgspec
from litestar import Request, Router, delete, get

from server.http import sse
from server.http.errors import APIError
from server.http.openapi import NOT_FOUND, streaming_post
from server.inference import protocol as p
from server.inference.call import Call, EngineDoor
from server.inference.limits import check_response_request
from server.inference.responses import protocol as r
from server.inference.responses.history import ResponseStore, StoredResponse
from server.inference.responses.output import OutputBuilder
from server.inference.responses.translate import (
    conversation,
    finished,
    from_create_response,
    new_response,
    refuse_unsupported,
    tools_of,
)
from server.settings import LimitSettings

Finalize = Callable[[OutputBuilder], r.Response]


def _usage(usage: p.Usage) -> r.ResponseUsage:
    return r.ResponseUsage(
        input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens, total_tokens=usage.total_tokens
    )


class _Events:
    """Frames stream events as OpenAI sends them: `event: <type>` and `data: <json>`, numbered."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._numbers = itertools.count()

    def frame(self, event: r.ResponseStreamEvent) -> bytes:
        """One SSE event, given the next sequence number."""
        event.sequence_number = next(self._numbers)
        kind = type(event).__struct_config__.tag
        return b"event: " + str(kind).encode() + b"\ndata: " + self._encoder.encode(event) + b"\n\n"


async def _stream(call: Call, response: r.Response, output: OutputBuilder, finalize: Finalize) -> AsyncIterator[bytes]:
    events = _Events()
    try:
        yield events.frame(r.ResponseCreatedEvent(sequence_number=0, response=response))
        yield events.frame(r.ResponseInProgressEvent(sequence_number=0, response=response))
        async for _, delta in call.deltas():
            for event in output.feed(delta):
                yield events.frame(event)
            if output.stopped:
                await call.stop(0)
        final = finalize(output)
        if final.status == "incomplete":
            yield events.frame(r.ResponseIncompleteEvent(sequence_number=0, response=final))
        else:
            yield events.frame(r.ResponseCompletedEvent(sequence_number=0, response=final))
    except APIError as error:
        detail = error.detail
        yield events.frame(
            r.ResponseErrorEvent(
                sequence_number=0, message=detail.message, code=detail.code or detail.type, param=detail.param
            )
        )
    finally:
        await call.close()


@streaming_post(
    "/responses",
    "Create a model response",
    r.Response,
    "The response; with `stream: true`, typed server-sent events",
)
async def create_response(
    data: r.CreateResponse,
    request: Request[Any, Any, Any],
    door: EngineDoor,
    response_store: ResponseStore,
    limits: LimitSettings,
) -> r.Response | sse.EventStream:
    """Generate the model's next output (a message, or function calls when `tools` are given) for
    text or item input, optionally continuing a stored response (`previous_response_id`)."""
    check_response_request(data, limits)
    refuse_unsupported(data)
    plan = tools_of(data)
    remembered, messages, input_items = conversation(data, response_store)
    sampling = door.defaults(data.model, request)
    engine_request = from_create_response(data, messages, plan, sampling)
    call = await door.generate(data.model, [engine_request], request=request, prompt_param="input", prefix="resp")
    response = new_response(data, sampling)
    single = plan.constraint is not None and plan.constraint.single
    output = OutputBuilder(tools=plan.active, max_tool_calls=1 if single else sampling.max_tool_calls)

    def finalize(built: OutputBuilder) -> r.Response:
        final = finished(response, built.items, built.finish == "length", _usage(call.usage.usage()))
        if final.store:
            turns = (*remembered, built.turn())
            response_store.put(StoredResponse(final, turns, tuple(input_items)))
        return final

    if data.stream:
        return sse.EventStream(_stream(call, response, output, finalize))

    async def whole() -> r.Response:
        async for _, delta in call.deltas():
            output.feed(delta)
            if output.stopped:
                await call.stop(0)
        return finalize(output)

    return await call.whole(whole())


@get("/responses/{response_id:str}", summary="Retrieve a model response", responses=NOT_FOUND)
async def retrieve_response(response_id: str, response_store: ResponseStore) -> r.Response:
    """A stored response by id."""
    return response_store.get(response_id).response


@delete("/responses/{response_id:str}", summary="Delete a model response", status_code=200, responses=NOT_FOUND)
async def delete_response(response_id: str, response_store: ResponseStore) -> r.DeletedResponse:
    """Forget a stored response."""
    response_store.delete(response_id)
    return r.DeletedResponse(id=response_id)


@get("/responses/{response_id:str}/input_items", summary="List a response's input items", responses=NOT_FOUND)
async def list_input_items(
    response_id: str, response_store: ResponseStore, order: Literal["asc", "desc"] = "desc"
) -> r.InputItemList:
    """The input items of a stored response (its own input, not earlier turns), newest first unless
    `order=asc`, as OpenAI lists them."""
    items = list(response_store.get(response_id).input_items)
    if order == "desc":
        items.reverse()
    return r.InputItemList(data=items, first_id=items[0].id, last_id=items[-1].id)


router = Router(
    path="/v1",
    route_handlers=[create_response, retrieve_response, delete_response, list_input_items],
    tags=["responses"],
)
