"""Tool plans and the incremental tool-call parser (pure functions, no server)."""

from __future__ import annotations

import json

import msgspec
import pytest

from adapters.tool_prompt import call_begin, call_end
from server.inference import protocol as p
from server.inference.chat.protocol import ToolCallDelta
from server.inference.tool_calls import ToolCallParser, tool_plan

TOOLS = msgspec.convert(
    [
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "b"}},
    ],
    list[p.Tool],
)


def _call(name: str, arguments: dict[str, object]) -> str:
    return call_begin(name) + json.dumps(arguments) + call_end()


def test_plans_follow_tool_choice() -> None:
    assert not tool_plan(TOOLS, "none", None).active
    auto = tool_plan(TOOLS, None, None).constraint
    assert auto is not None and auto.trigger == "<tool_call>" and not auto.tags_only and not auto.single
    required = tool_plan(TOOLS, "required", False).constraint
    assert required is not None and required.tags_only and required.single and len(required.tags) == 2
    named = tool_plan(TOOLS, p.NamedToolChoice("function", p.FunctionName("b")), None).constraint
    assert named is not None and [t.begin for t in named.tags] == [call_begin("b")]
    # A function without parameters takes an empty object.
    assert json.loads(named.tags[0].parameters) == {"type": "object", "properties": {}}


def _feed_all(parser: ToolCallParser, text: str, size: int) -> tuple[str, list[ToolCallDelta]]:
    content, deltas = "", []
    for i in range(0, len(text), size):
        piece, new = parser.feed(text[i : i + size])
        content += piece
        deltas += new
    return content + parser.finish(), deltas


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_parser_splits_content_and_calls_at_any_chunking(size: int) -> None:
    text = "Let me check. " + _call("a", {"x": '}{"', "y": [1, {"z": 2}]}) + "\n" + _call("b", {})
    parser = ToolCallParser()
    content, deltas = _feed_all(parser, text, size)
    assert content == "Let me check."  # whitespace before a call is not content
    calls = parser.tool_calls()
    assert [c.function.name for c in calls] == ["a", "b"]
    assert json.loads(calls[0].function.arguments) == {"x": '}{"', "y": [1, {"z": 2}]}
    assert json.loads(calls[1].function.arguments) == {}
    starts = [d for d in deltas if d.id is not msgspec.UNSET]
    assert [(d.index, d.function.name) for d in starts] == [(0, "a"), (1, "b")]
    for index, call in enumerate(calls):
        pieces = [d.function.arguments for d in deltas if d.index == index]
        assert "".join(x for x in pieces if isinstance(x, str)) == call.function.arguments


def test_parser_text_only_and_partial_marker() -> None:
    parser = ToolCallParser()
    content, deltas = _feed_all(parser, "a < b and <tool is not a call \n", 2)
    assert content == "a < b and <tool is not a call \n" and not deltas and not parser.calls


def test_parser_drops_a_call_cut_off_before_its_arguments() -> None:
    parser = ToolCallParser()
    content, _ = _feed_all(parser, _call("a", {"k": 1}) + '\n<tool_call>\n{"na', 4)
    assert content == "" and len(parser.calls) == 1


def test_parse_tool_calls_of_a_whole_text() -> None:
    from server.inference.tool_calls import parse_tool_calls

    content, calls = parse_tool_calls("Sure.\n" + _call("b", {"q": "x"}))
    assert content == "Sure." and [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("b", {"q": "x"})
    ]
