"""Tool calling: OpenAI tools and tool_choice -> a prompt and a grammar; generated text -> tool calls.

The model writes calls in the Hermes format (`adapters.tool_prompt`), and generation is constrained
so that each call's arguments are a JSON document matching the function's `parameters` schema: the
grammar spells out `<tool_call>{"name": "<a listed function>", "arguments": ` itself and leaves the
model only the arguments. `ToolCallParser` reads calls back out of the text as it streams.
These are plain functions of the request's data, so the Responses API can reuse them.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec

from adapters.base import OutputConstraint, ToolTag
from adapters.tool_prompt import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, call_begin, call_end
from server.http.errors import invalid_request
from server.inference import protocol as p
from server.inference.chat.protocol import FunctionCallDelta, ToolCallDelta
from server.inference.reasoning import held_back
from server.inference.schemas import check_schema

# A function without `parameters` takes an empty object, as OpenAI documents.
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class ToolPlan:
    """What a request's tools mean for generation: the tools the prompt shows, and the grammar."""

    tools: tuple[dict[str, Any], ...] = ()
    constraint: OutputConstraint | None = None

    @property
    def active(self) -> bool:
        """Whether the model may call tools in this request."""
        return self.constraint is not None


def _tag(function: p.FunctionDefinition, index: int) -> ToolTag:
    parameters = function.parameters if function.parameters is not None else _NO_PARAMETERS
    schema = check_schema(parameters, f"tools[{index}].function.parameters")
    return ToolTag(begin=call_begin(function.name), parameters=schema, end=call_end())


def tool_plan(tools: list[p.Tool] | None, tool_choice: p.ToolChoice | None, parallel: bool | None) -> ToolPlan:
    """The prompt's tools and the grammar for `tools` under `tool_choice` (400 for what cannot be done)."""
    if not tools:
        if tool_choice is not None and tool_choice != "none":
            raise invalid_request("tool_choice requires tools.", param="tool_choice")
        return ToolPlan()
    names = [tool.function.name for tool in tools]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise invalid_request(f"Function names must be unique; '{duplicate}' appears twice.", param="tools")
    tags = tuple(_tag(tool.function, i) for i, tool in enumerate(tools))
    listed = tuple(msgspec.to_builtins(tool) for tool in tools)
    choice = tool_choice or "auto"
    if choice == "none":
        return ToolPlan()
    single = parallel is False
    if isinstance(choice, p.NamedToolChoice):
        if choice.function.name not in names:
            raise invalid_request(
                f"tool_choice names the function '{choice.function.name}', which is not in tools.",
                param="tool_choice",
            )
        forced = (tags[names.index(choice.function.name)],)
        return ToolPlan(listed, OutputConstraint(tags=forced, tags_only=True, single=True))
    if choice == "required":
        return ToolPlan(listed, OutputConstraint(tags=tags, tags_only=True, single=single))
    return ToolPlan(listed, OutputConstraint(tags=tags, trigger=TOOL_CALL_OPEN, single=single))


def with_answer_format(plan: ToolPlan, answer: OutputConstraint | None) -> OutputConstraint | None:
    """The grammar of a request with tools and a JSON answer format (chat's `response_format`, the
    Responses API's `text.format`): with `auto`, one tool call or one JSON document (agents ask for
    both: tools to call, then a typed final answer; xgrammar cannot offer repeated calls beside a
    document); a required or named call is a call, and the format waits for a later turn; without
    tools, just the format."""
    if plan.constraint is None or answer is None:
        return answer or plan.constraint
    if plan.constraint.tags_only:
        return plan.constraint
    return msgspec.structs.replace(plan.constraint, json_schema=answer.json_schema, trigger="", single=True)


def new_call_id() -> str:
    """A fresh tool-call id in OpenAI's style."""
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass
class ParsedCall:
    """A tool call read so far."""

    id: str
    name: str
    arguments: str = ""


_HEADER = re.compile(r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*')


def same_call(a: ParsedCall, b: ParsedCall) -> bool:
    """Whether two calls call the same function with the same arguments (as JSON values, so that
    spacing and key order do not make a repeated call look new)."""
    if a.name != b.name:
        return False
    try:
        return bool(json.loads(a.arguments) == json.loads(b.arguments))
    except json.JSONDecodeError:
        return a.arguments == b.arguments


@dataclass
class ToolCallParser:
    """Splits generated text into content and tool calls, incrementally.

    `feed` returns what the new text adds: content, and each call once it is complete (its index,
    id, name and whole arguments in one delta, as Ollama streams them), so a call that generation
    cuts off is never returned, streamed or not. Text that may be the start of a call's markup is
    held back. The turn ends (`ended`) at a call that repeats an earlier one exactly (it is
    dropped: small models repeat a call until the token limit) or when `max_calls` calls are in;
    whatever the model writes after that is not read."""

    max_calls: int = 8
    calls: list[ParsedCall] = field(default_factory=list)
    ended: bool = False
    _pending: ParsedCall | None = None
    _buffer: str = ""
    _state: str = "text"  # text | header | arguments | tail
    _depth: int = 0
    _in_string: bool = False
    _escaped: bool = False
    _pending_space: str = ""

    def feed(self, text: str) -> tuple[str, list[ToolCallDelta]]:
        """Content and tool-call deltas that `text` completes."""
        self._buffer += text
        content: list[str] = []
        deltas: list[ToolCallDelta] = []
        progressed = True
        while progressed and self._buffer and not self.ended:
            step = {
                "text": self._in_text,
                "header": self._in_header,
                "arguments": self._in_arguments,
                "tail": self._in_tail,
            }[self._state]
            progressed = step(content, deltas)
        if self.ended:
            self._buffer = ""
        return "".join(content), deltas

    def _content(self, text: str, before_call: bool) -> str:
        # Trailing whitespace is held back: before a call (and between calls) it is not content.
        text = self._pending_space + text
        kept = text.rstrip()
        self._pending_space = "" if before_call else text[len(kept) :]
        return kept

    def _in_text(self, content: list[str], deltas: list[ToolCallDelta]) -> bool:
        start = self._buffer.find(TOOL_CALL_OPEN)
        if start < 0:
            keep = held_back(self._buffer, TOOL_CALL_OPEN)
            content.append(self._content(self._buffer[: len(self._buffer) - keep], before_call=False))
            self._buffer = self._buffer[len(self._buffer) - keep :]
            return False
        content.append(self._content(self._buffer[:start], before_call=True))
        self._buffer = self._buffer[start + len(TOOL_CALL_OPEN) :]
        self._state = "header"
        return True

    def _in_header(self, content: list[str], deltas: list[ToolCallDelta]) -> bool:
        match = _HEADER.match(self._buffer)
        if match is None:
            return False
        self._pending = ParsedCall(id=new_call_id(), name=json.loads(match.group(1)))
        self._buffer = self._buffer[match.end() :]
        self._state, self._depth, self._in_string, self._escaped = "arguments", 0, False, False
        return True

    def _in_arguments(self, content: list[str], deltas: list[ToolCallDelta]) -> bool:
        call = self._pending
        assert call is not None
        if not call.arguments:
            self._buffer = self._buffer.lstrip()  # whitespace before the arguments object
        end = None
        for i, char in enumerate(self._buffer):
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                if self._depth == 0:
                    end = i + 1
                    break
        call.arguments += self._buffer if end is None else self._buffer[:end]
        self._buffer = "" if end is None else self._buffer[end:]
        if end is None:
            return False
        self._state, self._pending = "tail", None
        self._complete(call, deltas)
        return True

    def _complete(self, call: ParsedCall, deltas: list[ToolCallDelta]) -> None:
        if any(same_call(call, earlier) for earlier in self.calls):
            self.ended = True
            return
        self.calls.append(call)
        function = FunctionCallDelta(name=call.name, arguments=call.arguments)
        deltas.append(ToolCallDelta(index=len(self.calls) - 1, id=call.id, type="function", function=function))
        self.ended = len(self.calls) >= self.max_calls

    def _in_tail(self, content: list[str], deltas: list[ToolCallDelta]) -> bool:
        close = self._buffer.find(TOOL_CALL_CLOSE)
        if close < 0:
            return False
        self._buffer = self._buffer[close + len(TOOL_CALL_CLOSE) :]
        self._state = "text"
        return True

    def finish(self, cut: bool = False) -> str:
        """Content still held back when generation ended. A call still being written is dropped,
        and so is the start of one (`cut`: generation was cut off, so held-back text that may open
        a call is markup, not content); finish_reason says why."""
        rest = self._buffer if self._state == "text" and not self.ended else ""
        text, self._buffer, self._pending_space, self._pending = self._pending_space + rest, "", "", None
        if cut and rest:
            return ""
        return "" if self.calls and not text.strip() else text

    def tool_calls(self) -> list[p.ToolCall]:
        """Every call read, in OpenAI's shape."""
        return [p.ToolCall(id=c.id, function=p.FunctionCall(name=c.name, arguments=c.arguments)) for c in self.calls]


def parse_tool_calls(text: str) -> tuple[str, list[p.ToolCall]]:
    """A whole generated text -> its content and tool calls (for callers that do not stream)."""
    parser = ToolCallParser()
    content, _ = parser.feed(text)
    return content + parser.finish(), parser.tool_calls()
