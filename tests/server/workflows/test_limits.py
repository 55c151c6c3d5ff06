"""The scan that bounds a definition's nesting before YAML parsing: never below the real depth,
linear in the text, and quiet on what workflows are made of (block scalars, quoted templates)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from server.workflows.limits import LimitError, check_depth, check_size, nesting_depth


def depth_of(node: yaml.Node | None) -> int:
    """The real nesting depth of a composed YAML node."""
    if isinstance(node, yaml.MappingNode):
        return 1 + max((max(depth_of(k), depth_of(v)) for k, v in node.value), default=0)
    if isinstance(node, yaml.SequenceNode):
        return 1 + max((depth_of(v) for v in node.value), default=0)
    return 0


SCALARS = st.one_of(
    st.integers(),
    st.text(alphabet="ab{}[]'\"#:|>- \n,", max_size=12),
    st.just("{{ steps.x }}"),
    st.just("line [one\nline {two\n"),
)
VALUES: Any = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(alphabet="abk_", min_size=1, max_size=4), children, max_size=3),
    ),
    max_leaves=30,
)


@given(value=VALUES, flow=st.sampled_from([None, True, False]), style=st.sampled_from([None, "'", '"', "|"]))
@settings(max_examples=300, deadline=None)
def test_the_scan_never_counts_less_than_the_parser(value: Any, flow: bool | None, style: str | None) -> None:
    text = yaml.safe_dump({"root": value}, default_flow_style=flow, default_style=style, allow_unicode=True)
    real = depth_of(yaml.compose(text, Loader=yaml.SafeLoader))
    # Indentless block lists (`key:` then `- item` at the key's column) are the one form counted
    # once for two levels: the estimate stays within a factor of two.
    assert nesting_depth(text, 1000) * 2 >= real


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "{" * 50_000,
        "a: " + "[" * 50_000 + "]" * 50_000,
        "a: |\n  x\nb: " + "{k: " * 50_000,
        "- key: |\n  x: " + "{" * 50_000,
        "k: x # note |\n  " + "{" * 50_000,
        'k: "unclosed\n' + "{" * 50_000,
    ],
)
def test_deep_flow_is_caught_at_once(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(LimitError) as refused:
        check_depth(text, 32)
    assert time.perf_counter() - start < 0.1
    assert refused.value.code == "workflow_max_depth_exceeded" and refused.value.status == 400
    assert "`workflow_max_depth`" in refused.value.message


def test_workflow_shapes_are_not_over_counted() -> None:
    text = """\
name: kb
inputs: {question: {}, doc: {type: file}}
steps:
  read: {tool: extract_text, with: {file: "{{ inputs.doc }}"}}
  answer:
    model: smollm2-135m-instruct
    prompt: |
      Unbalanced [ and { in a prompt, and {{ steps.read }}:
        {% for x in [1, 2, [3]] %}{{ x }}{% endfor %}
    params: {max_tokens: 8, stop: ["}", "]"]}
"""
    assert nesting_depth(text, 32) <= 5


def test_size_is_checked_in_bytes() -> None:
    check_size("é" * 512, 1024)
    with pytest.raises(LimitError) as refused:
        check_size("é" * 513, 1024)
    assert refused.value.status == 413 and refused.value.code == "workflow_max_bytes_exceeded"
