"""A response's output items, built from engine deltas, with the typed stream events that build them.

Streamed and whole responses both go through `OutputBuilder`, so they always agree. Text and tool
calls are split by the chat completions machinery (`ChoiceOutput`, server/inference/chat/output.py); each
run of text becomes an assistant message item and each tool call a `function_call` item.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from adapters.base import ChatMessage, Delta
from server.inference import protocol as p
from server.inference.chat.output import ChoiceOutput
from server.inference.responses import protocol as r
from server.inference.responses.translate import new_id


class OutputBuilder:
    """Feeds engine deltas; returns the stream events each adds (sequence numbers set later)."""

    def __init__(self, tools: bool, max_tool_calls: int = 8) -> None:
        self._choice = ChoiceOutput(tools=tools, max_tool_calls=max_tool_calls)
        self.items: list[r.OutputItem] = []
        self.finish: p.FinishReason | None = None
        self._texts: list[str] = []
        self._open: int | None = None

    def _ids(self, index: int) -> dict[str, Any]:
        return {"sequence_number": 0, "item_id": self.items[index].id, "output_index": index}

    def _close(self) -> list[r.ResponseStreamEvent]:
        index, self._open = self._open, None
        if index is None:
            return []
        item = self.items[index]
        events: list[r.ResponseStreamEvent] = []
        if isinstance(item, r.OutputMessage):
            text = "".join(self._texts)
            part = r.OutputText(text)
            events += [
                r.ResponseTextDoneEvent(text=text, content_index=0, **self._ids(index)),
                r.ResponseContentPartDoneEvent(part=part, content_index=0, **self._ids(index)),
            ]
            status: r.ItemStatus = "incomplete" if self.finish == "length" else "completed"
            item = r.OutputMessage(id=item.id, status=status, content=[part])
        else:
            events.append(
                r.ResponseFunctionCallArgumentsDoneEvent(name=item.name, arguments=item.arguments, **self._ids(index))
            )
            item.status = "completed"
        self.items[index] = item
        events.append(r.ResponseOutputItemDoneEvent(sequence_number=0, output_index=index, item=item))
        return events

    def _open_item(self, item: r.OutputItem) -> list[r.ResponseStreamEvent]:
        events = self._close()
        self.items.append(item)
        self._open = len(self.items) - 1
        events.append(r.ResponseOutputItemAddedEvent(sequence_number=0, output_index=self._open, item=item))
        return events

    def _text(self, text: str) -> list[r.ResponseStreamEvent]:
        events: list[r.ResponseStreamEvent] = []
        if self._open is None or not isinstance(self.items[self._open], r.OutputMessage):
            self._texts = []
            events += self._open_item(r.OutputMessage(id=new_id("msg"), status="in_progress", content=[]))
            events.append(
                r.ResponseContentPartAddedEvent(
                    part=r.OutputText(""), content_index=0, **self._ids(len(self.items) - 1)
                )
            )
        self._texts.append(text)
        index = len(self.items) - 1
        events.append(r.ResponseTextDeltaEvent(delta=text, content_index=0, **self._ids(index)))
        return events

    def feed(self, delta: Delta) -> list[r.ResponseStreamEvent]:
        """The events one engine delta adds."""
        chunk, _ = self._choice.feed(delta)
        events: list[r.ResponseStreamEvent] = []
        if chunk.content is not UNSET and chunk.content:
            events += self._text(chunk.content)
        for call in chunk.tool_calls if chunk.tool_calls is not UNSET else []:
            if call.id is not UNSET:
                name = call.function.name if call.function.name is not UNSET else ""
                item = r.FunctionToolCall(
                    id=new_id("fc"), call_id=call.id, name=name, arguments="", status="in_progress"
                )
                events += self._open_item(item)
            arguments = call.function.arguments
            if arguments is not UNSET and arguments and self._open is not None:
                open_call = self.items[self._open]
                assert isinstance(open_call, r.FunctionToolCall)
                open_call.arguments += arguments
                events.append(r.ResponseFunctionCallArgumentsDeltaEvent(delta=arguments, **self._ids(self._open)))
        if delta.final or self.stopped:
            self.finish = self._choice.finish
            if not self.items:
                # Nothing was generated: the output is still one (empty) message.
                self._texts = []
                events += self._open_item(r.OutputMessage(id=new_id("msg"), status="in_progress", content=[]))
                events.append(
                    r.ResponseContentPartAddedEvent(
                        part=r.OutputText(""), content_index=0, **self._ids(len(self.items) - 1)
                    )
                )
            events += self._close()
        return events

    @property
    def stopped(self) -> bool:
        """Whether the output was decided before the engine finished (the caller cancels it)."""
        return self._choice.stopped

    def turn(self) -> ChatMessage:
        """The assistant turn this output adds to a stored conversation."""
        text = "".join(part.text for item in self.items if isinstance(item, r.OutputMessage) for part in item.content)
        calls = tuple(
            {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
            for item in self.items
            if isinstance(item, r.FunctionToolCall)
        )
        return ChatMessage("assistant", text, tool_calls=calls)
