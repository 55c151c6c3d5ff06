"""Engine deltas -> Anthropic content blocks, and the stream events that build them up.

Streamed and whole messages both go through `ContentBuilder`, so they always agree. Text, thinking
and tool calls are split by the chat machinery (`ChoiceOutput`, server/inference/chat/output.py).
A tool_use block is sent once its input is a complete JSON object (content_block_start with input
`{}`, one input_json_delta, content_block_stop), so a call cut off by `max_tokens` never reaches the
client as a call, streamed or not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from msgspec import UNSET

from adapters.base import Delta
from server.dialects.anthropic import protocol as a
from server.dialects.anthropic.errors import stream_error
from server.dialects.anthropic.translate import new_id, to_message, to_stop_reason
from server.http import sse
from server.http.errors import APIError
from server.inference.call import Call
from server.inference.chat.output import ChoiceOutput


@dataclass
class _PendingCall:
    """A tool call whose input is still being generated."""

    name: str
    arguments: str = ""
    sent: bool = False


def _complete_input(arguments: str) -> dict[str, Any] | None:
    """The call's input if its arguments are a whole JSON object yet, else None."""
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class ContentBuilder:
    """Feeds engine deltas; returns the content-block events each adds. `thinking` shows a reasoning
    model's thinking as thinking blocks (otherwise it is dropped)."""

    tools: bool = False
    reasoning: bool = False
    thinking: bool = False
    blocks: list[a.ContentBlock] = field(default_factory=list)
    stop_reason: a.StopReason | None = None
    stop_sequence: str | None = None
    _choice: ChoiceOutput = field(init=False)
    _calls: list[_PendingCall] = field(default_factory=list)
    _open: bool = False

    def __post_init__(self) -> None:
        self._choice = ChoiceOutput(tools=self.tools, reasoning=self.reasoning)

    def _close(self) -> list[a.StreamEvent]:
        if not self._open:
            return []
        self._open = False
        index = len(self.blocks) - 1
        events: list[a.StreamEvent] = []
        if isinstance(self.blocks[index], a.ThinkingBlock):
            events.append(a.ContentBlockDeltaEvent(index=index, delta=a.SignatureDelta(signature="")))
        events.append(a.ContentBlockStopEvent(index=index))
        return events

    def _append(self, kind: type[a.TextBlock] | type[a.ThinkingBlock], text: str) -> list[a.StreamEvent]:
        events: list[a.StreamEvent] = []
        last = self.blocks[-1] if self.blocks else None
        if not (self._open and type(last) is kind):
            events += self._close()
            block: a.TextBlock | a.ThinkingBlock = a.TextBlock("") if kind is a.TextBlock else a.ThinkingBlock("")
            self.blocks.append(block)
            self._open = True
            events.append(
                a.ContentBlockStartEvent(index=len(self.blocks) - 1, content_block=msgspec.structs.replace(block))
            )
        index = len(self.blocks) - 1
        current = self.blocks[index]
        delta: a.BlockDelta
        if isinstance(current, a.TextBlock):
            current.text += text
            delta = a.TextDelta(text)
        else:
            assert isinstance(current, a.ThinkingBlock)
            current.thinking += text
            delta = a.ThinkingDelta(text)
        events.append(a.ContentBlockDeltaEvent(index=index, delta=delta))
        return events

    def _tool_use(self, call: _PendingCall, payload: dict[str, Any]) -> list[a.StreamEvent]:
        events = self._close()
        call.sent = True
        block = a.ToolUseBlock(id=new_id("toolu"), name=call.name, input=payload)
        self.blocks.append(block)
        index = len(self.blocks) - 1
        started = a.ToolUseBlock(id=block.id, name=block.name, input={})
        return [
            *events,
            a.ContentBlockStartEvent(index=index, content_block=started),
            a.ContentBlockDeltaEvent(index=index, delta=a.InputJSONDelta(partial_json=json.dumps(payload))),
            a.ContentBlockStopEvent(index=index),
        ]

    def feed(self, delta: Delta) -> list[a.StreamEvent]:
        """The content-block events one engine delta adds."""
        out, _ = self._choice.feed(delta)
        events: list[a.StreamEvent] = []
        if out.reasoning_content is not UNSET and out.reasoning_content and self.thinking:
            events += self._append(a.ThinkingBlock, out.reasoning_content)
        if out.content is not UNSET and out.content:
            events += self._append(a.TextBlock, out.content)
        for piece in out.tool_calls if out.tool_calls is not UNSET else []:
            if piece.id is not UNSET:
                name = piece.function.name if piece.function.name is not UNSET else ""
                self._calls.append(_PendingCall(name=name or ""))
            call = self._calls[piece.index]
            if piece.function.arguments is not UNSET and piece.function.arguments and not call.sent:
                call.arguments += piece.function.arguments
                payload = _complete_input(call.arguments)
                if payload is not None:
                    events += self._tool_use(call, payload)
        if delta.final:
            events += self._close()
            called = any(isinstance(block, a.ToolUseBlock) for block in self.blocks)
            self.stop_reason = to_stop_reason(delta, called)
            self.stop_sequence = delta.stop_sequence if self.stop_reason == "stop_sequence" else None
        return events


class _Frames:
    """Frames events as Anthropic sends them: `event: <type>` and `data: <json>`."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()

    def frame(self, event: a.StreamEvent) -> bytes:
        kind = type(event).__struct_config__.tag
        return b"event: " + str(kind).encode() + b"\ndata: " + self._encoder.encode(event) + b"\n\n"


async def to_events(call: Call, builder: ContentBuilder, message_id: str, model: str) -> AsyncIterator[bytes]:
    """Every event of a streamed message: message_start and a ping at the first delta (when the
    prompt's usage is known), the blocks, message_delta with the stop reason and usage, message_stop;
    an error after the stream started ends it with an `error` event."""
    frames = _Frames()
    started = False
    try:
        async for _, delta in call.deltas():
            if not started:
                started = True
                usage = call.usage.usage()
                empty = to_message(message_id, model, [], None, None, usage)
                yield frames.frame(a.MessageStartEvent(message=empty))
                yield frames.frame(a.PingEvent())
            for event in builder.feed(delta):
                yield frames.frame(event)
        usage = call.usage.usage()
        yield frames.frame(
            a.MessageDeltaEvent(
                delta=a.MessageDeltaBody(stop_reason=builder.stop_reason, stop_sequence=builder.stop_sequence),
                usage=a.MessageDeltaUsage(output_tokens=usage.completion_tokens, input_tokens=usage.prompt_tokens),
            )
        )
        yield frames.frame(a.MessageStopEvent())
    except APIError as error:
        yield frames.frame(stream_error(error))
    finally:
        await call.close()


async def to_whole(call: Call, builder: ContentBuilder, message_id: str, model: str) -> a.Message:
    """The whole message, once generation has finished."""
    async for _, delta in call.deltas():
        builder.feed(delta)
    usage = call.usage.usage()
    return to_message(message_id, model, builder.blocks, builder.stop_reason, builder.stop_sequence, usage)


def event_stream(call: Call, builder: ContentBuilder, message_id: str, model: str) -> sse.EventStream:
    """The streamed answer as an SSE response."""
    return sse.EventStream(to_events(call, builder, message_id, model))
