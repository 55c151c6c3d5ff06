"""POST /v1/responses (whole or streamed as typed events), GET and DELETE /v1/responses/{id},
GET /v1/responses/{id}/input_items."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import msgspec
from litestar import Request, Router, delete, get, post
from litestar.openapi.datastructures import ResponseSpec

from adapters.base import ChatMessage
from server import protocol as p
from server import protocol_responses as r
from server import sse
from server.calls import Call
from server.disconnect import unless_disconnected
from server.engines import EngineRegistry
from server.errors import APIError
from server.fanin import FanIn
from server.openapi import ERRORS, NOT_FOUND, StreamingOperation
from server.response_store import ResponseStore, StoredResponse
from server.responses import conversation, finished, generation_request, new_id, new_response, refuse_unsupported
from server.translate import SamplingDefaults, finish_reason

Finalize = Callable[[str, p.FinishReason | None], r.Response]


def _usage(usage: p.Usage) -> r.ResponseUsage:
    return r.ResponseUsage(
        input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens, total_tokens=usage.total_tokens
    )


def _item(msg_id: str, text: str | None, finish: p.FinishReason | None = None) -> r.OutputMessage:
    if text is None:
        return r.OutputMessage(id=msg_id, status="in_progress", content=[])
    status: r.ItemStatus = "incomplete" if finish == "length" else "completed"
    return r.OutputMessage(id=msg_id, status=status, content=[r.OutputText(text)])


class _Events:
    """Frames stream events as OpenAI sends them: `event: <type>` and `data: <json>`, numbered."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._numbers = itertools.count()

    @property
    def next(self) -> int:
        """The sequence number of the next event."""
        return next(self._numbers)

    def frame(self, event: r.ResponseStreamEvent) -> bytes:
        """One SSE event."""
        kind = type(event).__struct_config__.tag
        return b"event: " + str(kind).encode() + b"\ndata: " + self._encoder.encode(event) + b"\n\n"


async def _stream(call: Call, response: r.Response, msg_id: str, finalize: Finalize) -> AsyncIterator[bytes]:
    events = _Events()
    ids: dict[str, Any] = {"item_id": msg_id, "output_index": 0, "content_index": 0}
    try:
        yield events.frame(r.ResponseCreatedEvent(sequence_number=events.next, response=response))
        yield events.frame(r.ResponseInProgressEvent(sequence_number=events.next, response=response))
        added = _item(msg_id, None)
        yield events.frame(r.ResponseOutputItemAddedEvent(sequence_number=events.next, output_index=0, item=added))
        yield events.frame(r.ResponseContentPartAddedEvent(sequence_number=events.next, part=r.OutputText(""), **ids))
        parts: list[str] = []
        finish: p.FinishReason | None = None
        async for _, delta in call.deltas():
            if delta.text:
                parts.append(delta.text)
                yield events.frame(r.ResponseTextDeltaEvent(sequence_number=events.next, delta=delta.text, **ids))
            if delta.final:
                finish = finish_reason(delta)
        text = "".join(parts)
        yield events.frame(r.ResponseTextDoneEvent(sequence_number=events.next, text=text, **ids))
        yield events.frame(r.ResponseContentPartDoneEvent(sequence_number=events.next, part=r.OutputText(text), **ids))
        done = _item(msg_id, text, finish)
        yield events.frame(r.ResponseOutputItemDoneEvent(sequence_number=events.next, output_index=0, item=done))
        final = finalize(text, finish)
        if final.status == "incomplete":
            yield events.frame(r.ResponseIncompleteEvent(sequence_number=events.next, response=final))
        else:
            yield events.frame(r.ResponseCompletedEvent(sequence_number=events.next, response=final))
    except APIError as error:
        detail = error.detail
        event = r.ResponseErrorEvent(
            sequence_number=events.next, message=detail.message, code=detail.code or detail.type, param=detail.param
        )
        yield events.frame(event)
    finally:
        await call.fan.close()


@post(
    "/responses",
    summary="Create a model response",
    status_code=200,
    operation_class=StreamingOperation,
    responses={
        **ERRORS,
        200: ResponseSpec(
            data_container=r.Response, description="The response; with `stream: true`, typed server-sent events"
        ),
    },
)
async def create_response(
    data: r.CreateResponse,
    request: Request[Any, Any, Any],
    engines: EngineRegistry,
    fingerprint: str,
    sampling: SamplingDefaults,
    response_store: ResponseStore,
) -> r.Response | sse.EventStream:
    """Generate the model's next message for text or message input, optionally continuing a stored
    response (`previous_response_id`)."""
    refuse_unsupported(data)
    engine = await engines.acquire(data.model)
    remembered, messages, input_items = conversation(data, response_store)
    engine_request = generation_request(data, messages, iter(engine.next_request_id, None), sampling)
    fan = FanIn(engine, [engine_request], prompt_param="input")
    await fan.start()
    call = Call(
        prefix="resp", model=data.model, fingerprint=fingerprint, fan=fan, prompt_of_choice=[0], include_usage=False
    )
    response = new_response(data, sampling)
    msg_id = new_id("msg")

    def finalize(text: str, finish: p.FinishReason | None) -> r.Response:
        final = finished(response, _item(msg_id, text, finish), finish == "length", _usage(call.usage.usage()))
        if final.store:
            turns = (*remembered, ChatMessage("assistant", text))
            response_store.put(StoredResponse(final, turns, tuple(input_items)))
        return final

    if data.stream:
        return sse.EventStream(_stream(call, response, msg_id, finalize))

    async def whole() -> r.Response:
        texts, finishes = await call.collect()
        return finalize(texts[0], finishes[0])

    return await unless_disconnected(request, whole())


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
