"""xgrammar's refusals, found in Python before a schema reaches the engine (no model needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import OutputConstraint, ToolTag
from adapters.schema_bounds import unsatisfiable
from adapters.structured import constraint_problem

BOUND = st.integers(-50, 50)


@given(
    minimum=st.none() | BOUND,
    maximum=st.none() | BOUND,
    exclusive_minimum=st.none() | BOUND,
    exclusive_maximum=st.none() | BOUND,
)
def test_an_integer_range_is_refused_exactly_when_it_is_empty(
    minimum: int | None, maximum: int | None, exclusive_minimum: int | None, exclusive_maximum: int | None
) -> None:
    bounds = {"minimum": minimum, "maximum": maximum}
    bounds |= {"exclusiveMinimum": exclusive_minimum, "exclusiveMaximum": exclusive_maximum}
    schema: dict[str, Any] = {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}
    members = [
        n
        for n in range(-60, 61)
        if (minimum is None or n >= minimum)
        and (maximum is None or n <= maximum)
        and (exclusive_minimum is None or n > exclusive_minimum)
        and (exclusive_maximum is None or n < exclusive_maximum)
    ]
    assert (unsatisfiable(schema) is None) == bool(members), schema


@given(low=st.integers(0, 20), high=st.integers(0, 20), key=st.sampled_from(["Items", "Length", "Properties"]))
def test_counts_are_refused_when_the_minimum_passes_the_maximum(low: int, high: int, key: str) -> None:
    kind = {"Items": "array", "Length": "string", "Properties": "object"}[key]
    schema = {"type": kind, f"min{key}": low, f"max{key}": high}
    assert (unsatisfiable(schema) is None) == (low <= high)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 1e30},
        {"type": "integer", "maximum": -(2**64)},
        {"type": "integer", "minimum": 1.5},
        {"type": "integer", "exclusiveMinimum": 2**63 - 1},
        {"type": "number", "minimum": 2, "exclusiveMaximum": 2},
        {"type": "string", "minLength": 2**40},
        {"type": "array", "prefixItems": [{}, {}], "items": False, "minItems": 3},
        {"type": "object", "properties": {"a": False}},
        {"type": "object", "required": ["a", "b"], "maxProperties": 1},
        {"type": "object", "additionalProperties": False, "properties": {"a": {}}, "minProperties": 2},
        {"enum": []},
        {"type": "integer", "minimum": 1, "maximum": 4, "multipleOf": 5},
    ],
)
def test_what_xgrammar_refuses_is_named(schema: dict[str, Any]) -> None:
    deep = {"type": "object", "properties": {"outer": {"type": "array", "items": schema}}}
    problem = unsatisfiable(deep)
    assert problem is not None and problem.startswith("schema.properties.outer.items")


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
        {"type": "array", "items": False},
        {"type": "object", "additionalProperties": False},
        {"$ref": "#/$defs/x", "minimum": 5, "maximum": 1, "$defs": {"x": {"type": "string"}}},
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        {"type": "number", "minimum": 0.5, "maximum": 0.5},
    ],
)
def test_what_xgrammar_accepts_is_not_refused(schema: dict[str, Any]) -> None:
    assert unsatisfiable(schema) is None


def test_depth_costs_no_recursion() -> None:
    schema: dict[str, Any] = {"type": "integer", "minimum": 3, "maximum": 1}
    for _ in range(20_000):
        schema = {"type": "array", "items": schema}
    assert unsatisfiable(schema) is not None


def test_the_worker_check_reads_every_schema_of_a_constraint() -> None:
    good = json.dumps({"type": "object"})
    bad = json.dumps({"type": "array", "minItems": 2, "maxItems": 1})
    assert constraint_problem(OutputConstraint(json_schema=good)) is None
    assert "response format" in str(constraint_problem(OutputConstraint(json_schema=bad)))
    tags = (ToolTag("<a>", good, "</a>"), ToolTag("<b>", bad, "</b>"))
    assert "tool 1" in str(constraint_problem(OutputConstraint(tags=tags)))
    assert "not a JSON schema" in str(constraint_problem(OutputConstraint(json_schema="{")))
