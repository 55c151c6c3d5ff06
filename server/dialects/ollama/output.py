"""Ollama's answers: engine deltas -> /api/chat and /api/generate lines (NDJSON) or whole answers.

Both come from chat's `ChoiceOutput` (the same tool-call parser and `<think>` splitter as OpenAI's
endpoints), so streamed and whole answers agree. Ollama sends each tool call whole, with its
arguments as a JSON object: a call is sent once its arguments parse, and a call cut short by the
token limit is never sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.response import Stream
from litestar.response.base import ASGIResponse

from server.dialects.ollama import protocol as o
from server.dialects.ollama.errors import to_message
from server.http.errors import APIError
from server.inference.call import Call
from server.inference.chat.output import ChoiceOutput
from server.inference.tool_calls import ParsedCall

MEDIA_TYPE = "application/x-ndjson"


def now() -> str:
    """The current time as Ollama writes it (RFC 3339, UTC)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


@dataclass
class Timer:
    """When a call started and when its first token came (the door returns once it has)."""

    started: float = field(default_factory=time.perf_counter)
    first: float = 0.0

    def admitted(self) -> None:
        """The call was admitted, loaded and prefilled: its first delta is in."""
        self.first = time.perf_counter()


def _arguments(call: ParsedCall) -> dict[str, Any] | None:
    try:
        value = json.loads(call.arguments)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class Answer:
    """One Ollama answer being assembled: chat's output, plus which tool calls were sent."""

    model: str
    timer: Timer
    output: ChoiceOutput
    thinking: bool
    sent_calls: int = 0

    def done_reason(self) -> str:
        """Ollama's done_reason: `length` when the token limit cut the answer, else `stop`."""
        return "length" if self.output.finish == "length" else "stop"

    def new_calls(self, final: bool) -> list[o.ToolCall]:
        """Tool calls whose arguments are complete and that were not sent yet."""
        calls: list[o.ToolCall] = []
        for index, parsed in enumerate(self.output.parser.calls[self.sent_calls :], start=self.sent_calls):
            arguments = _arguments(parsed)
            if arguments is None:
                if final:
                    self.sent_calls = index + 1  # cut short: never a call
                    continue
                break
            calls.append(o.ToolCall(o.FunctionCall(name=parsed.name, arguments=arguments, index=index)))
            self.sent_calls = index + 1
        return calls

    def timings(self, call: Call) -> dict[str, Any]:
        """The final line's counts and durations."""
        end = time.perf_counter()
        usage = call.usage.usage()
        return {
            "done_reason": self.done_reason(),
            "total_duration": _ns(end - self.timer.started),
            "load_duration": 0,
            "prompt_eval_count": usage.prompt_tokens,
            "prompt_eval_duration": _ns(self.timer.first - self.timer.started),
            "eval_count": usage.completion_tokens,
            "eval_duration": _ns(end - self.timer.first),
        }

    def message(self, content: str, thinking: str, calls: list[o.ToolCall]) -> o.MessageOut:
        """An assistant message (or its piece) with what it carries."""
        message = o.MessageOut(role="assistant", content=content)
        if self.thinking and thinking:
            message.thinking = thinking
        if calls:
            message.tool_calls = calls
        return message


async def to_chat_chunks(call: Call, answer: Answer) -> AsyncIterator[o.ChatResponse]:
    """Every line of a streamed chat: text and thinking as they come, tool calls whole, then the
    final line with `done: true` and the counts."""
    async for _, delta in call.deltas():
        piece, _ = answer.output.feed(delta)
        calls = answer.new_calls(delta.final)
        content = piece.content or ""
        thinking = piece.reasoning_content or ""
        if content or (answer.thinking and thinking) or calls:
            message = answer.message(content, thinking, calls)
            yield o.ChatResponse(model=answer.model, created_at=now(), message=message, done=False)
        if delta.final:
            yield o.ChatResponse(
                model=answer.model,
                created_at=now(),
                message=o.MessageOut(role="assistant", content=""),
                done=True,
                **answer.timings(call),
            )


async def to_chat_response(call: Call, answer: Answer) -> o.ChatResponse:
    """The whole chat answer."""
    calls: list[o.ToolCall] = []
    async for _, delta in call.deltas():
        answer.output.feed(delta)
        calls += answer.new_calls(delta.final)
    out = answer.output
    message = answer.message("".join(out.content), "".join(out.thoughts), calls)
    return o.ChatResponse(model=answer.model, created_at=now(), message=message, done=True, **answer.timings(call))


async def to_generate_chunks(call: Call, answer: Answer) -> AsyncIterator[o.GenerateResponse]:
    """Every line of a streamed generation, then the final line."""
    async for _, delta in call.deltas():
        piece, _ = answer.output.feed(delta)
        content = piece.content or ""
        thinking = (piece.reasoning_content or "") if answer.thinking else ""
        if content or thinking:
            line = o.GenerateResponse(model=answer.model, created_at=now(), response=content, done=False)
            if thinking:
                line.thinking = thinking
            yield line
        if delta.final:
            yield o.GenerateResponse(
                model=answer.model, created_at=now(), response="", done=True, **answer.timings(call)
            )


async def to_generate_response(call: Call, answer: Answer) -> o.GenerateResponse:
    """The whole generation."""
    async for _, delta in call.deltas():
        answer.output.feed(delta)
    out = answer.output
    response = o.GenerateResponse(
        model=answer.model, created_at=now(), response="".join(out.content), done=True, **answer.timings(call)
    )
    thoughts = "".join(out.thoughts)
    if answer.thinking and thoughts:
        response.thinking = thoughts
    return response


class LineStream(Stream):
    """An `application/x-ndjson` response (Litestar's `Stream` would take the route's JSON type)."""

    def __init__(self, iterator: Any) -> None:
        super().__init__(iterator, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-cache"})

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        kwargs["media_type"] = MEDIA_TYPE
        return super().to_asgi_response(*args, **kwargs)


async def ndjson(lines: AsyncIterator[object], call: Call | None = None) -> AsyncIterator[bytes]:
    """One JSON object per line; an error after the stream started is a last `{"error": ...}` line,
    as Ollama sends it."""
    encoder = msgspec.json.Encoder()
    try:
        async for line in lines:
            yield encoder.encode(line) + b"\n"
    except APIError as error:
        yield encoder.encode(o.ErrorResponse(to_message(error))) + b"\n"
    finally:
        if call is not None:
            await call.close()
