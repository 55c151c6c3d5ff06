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


def test_a_call_arrives_whole_once_its_arguments_close() -> None:
    parser = ToolCallParser()
    text = _call("a", {"k": "v"})
    cut = text.index('"v"')
    assert parser.feed(text[:cut]) == ("", [])  # nothing of an unfinished call is sent
    content, deltas = parser.feed(text[cut:])
    (delta,) = deltas
    assert content == "" and delta.index == 0 and delta.id is not msgspec.UNSET and delta.type == "function"
    assert delta.function.name == "a" and json.loads(str(delta.function.arguments)) == {"k": "v"}


@pytest.mark.parametrize("tail", ["\n<", "\n<tool_", "\n<tool_call>", '\n<tool_call>\n{"name": "a", "arg', '{"k": 2'])
def test_a_cut_call_leaves_no_markup_and_is_not_returned(tail: str) -> None:
    """Generation cut (max_tokens) anywhere in a second call: only the whole first call is returned."""
    for size in (1, 5, 1000):
        parser = ToolCallParser()
        text = _call("a", {"k": 1}) + (tail if tail.startswith("\n") else "\n" + call_begin("a") + tail)
        content, deltas = _feed_all_cut(parser, text, size)
        assert content == "" and [c.function.name for c in parser.tool_calls()] == ["a"]
        assert len([d for d in deltas if d.id is not msgspec.UNSET]) == 1


def test_cut_text_keeps_its_content_but_not_a_partial_tag() -> None:
    parser = ToolCallParser()
    content, deltas = _feed_all_cut(parser, "Let me see. <tool_c", 3)
    assert content == "Let me see." and not deltas and not parser.calls


def _feed_all_cut(parser: ToolCallParser, text: str, size: int) -> tuple[str, list[ToolCallDelta]]:
    content, deltas = "", []
    for i in range(0, len(text), size):
        piece, new = parser.feed(text[i : i + size])
        content += piece
        deltas += new
    return content + parser.finish(cut=True), deltas


def test_a_repeated_call_ends_the_turn_and_is_dropped() -> None:
    parser = ToolCallParser()
    first = _call("a", {"city": "Paris", "unit": "c"})
    again = call_begin("a") + '{"unit": "c",  "city": "Paris"}' + call_end()  # same JSON value
    content, deltas = _feed_all(parser, "\n".join([first, _call("b", {}), again, _call("a", {"x": 1})]), 7)
    assert parser.ended and content == ""
    assert [(c.function.name, json.loads(c.function.arguments)) for c in parser.tool_calls()] == [
        ("a", {"city": "Paris", "unit": "c"}),
        ("b", {}),
    ]
    assert [d.index for d in deltas] == [0, 1]


def test_max_calls_ends_the_turn() -> None:
    parser = ToolCallParser(max_calls=2)
    text = "\n".join(_call("a", {"n": n}) for n in range(5))
    content, deltas = parser.feed(text)
    assert parser.ended and len(parser.tool_calls()) == 2 and len(deltas) == 2 and content == ""
    assert parser.feed(_call("b", {})) == ("", [])
