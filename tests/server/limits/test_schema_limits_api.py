"""Pathological JSON schemas in response formats and tool parameters. Unsatisfiable bounds once
raised inside the engine's batch step and killed the shared worker (every request in flight: 503,
~15 s to reload); a 5 MB enum compiled for 54 s while other chats waited; a schema nested 200
objects deep was a 500. Now each is a 400 for that request alone, answered before the queue."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DEFAULT_MODEL
from tests.server.limits.conftest import HealthProbe, assert_refused, normal_chat, runner_pid

SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def unsatisfiable_bounds(draw: st.DrawFn) -> dict[str, Any]:
    """A schema whose bounds no value meets, or that xgrammar cannot represent."""
    low = draw(st.integers(1, 10**6))
    high = draw(st.integers(0, low - 1))
    past_int64 = draw(st.integers(2**63, 2**80) | st.floats(1e19, 1e300) | st.floats(-1e300, -1e19))
    return draw(
        st.sampled_from(
            [
                {"type": "array", "items": {"type": "integer"}, "minItems": low, "maxItems": high},
                {"type": "string", "minLength": low, "maxLength": high},
                {"type": "integer", "minimum": low, "maximum": high},
                {"type": "number", "minimum": low + 0.5, "maximum": high},
                {"type": "number", "exclusiveMinimum": low, "exclusiveMaximum": low},
                {"type": "integer", "exclusiveMinimum": high, "maximum": high},
                {"type": "object", "minProperties": low, "maxProperties": high},
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "maxProperties": 0},
                {"type": "integer", "minimum": past_int64},
                {"type": ["integer", "null"], "maximum": -abs(past_int64) - 1},
                {"type": "array", "prefixItems": [{"type": "string"}] * 3, "maxItems": 2},
            ]
        )
    )


@st.composite
def wrapped(draw: st.DrawFn, inner: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """`inner` placed at a random depth of an otherwise ordinary object schema."""
    schema = draw(inner)
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(["properties", "items", "anyOf"]))
        if key == "properties":
            schema = {"type": "object", "properties": {"ok": {"type": "string"}, "deep": schema}}
        elif key == "items":
            schema = {"type": "array", "items": schema}
        else:
            schema = {"anyOf": [{"type": "null"}, schema]}
    return schema


def _body(schema: dict[str, Any], as_tool: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    if as_tool:
        if schema.get("type") != "object":
            schema = {"type": "object", "properties": {"v": schema}}
        body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
        body["tool_choice"] = "required"
    else:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    return body


@SLOW
@given(schema=wrapped(unsatisfiable_bounds()), as_tool=st.booleans())
def test_unsatisfiable_bounds_are_a_400_for_that_request(
    raw: httpx.Client, health: HealthProbe, schema: dict[str, Any], as_tool: bool
) -> None:
    started = time.perf_counter()
    error = assert_refused(raw.post("/v1/chat/completions", json=_body(schema, as_tool), timeout=30))
    assert time.perf_counter() - started < 1.0
    assert error["param"] == ("tools[0].function.parameters" if as_tool else "response_format.json_schema.schema")


@st.composite
def oversized(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A schema past one of the size limits, and the setting that refuses it."""
    kind = draw(st.sampled_from(["enum", "bytes", "depth"]))
    if kind == "enum":
        values = draw(st.integers(1001, 6000))  # short values: within max_schema_bytes
        return {"type": "string", "enum": [str(i) for i in range(values)]}, "max_enum_values"
    if kind == "bytes":
        text = "x" * draw(st.integers(70_000, 3_000_000))
        return {"type": "string", "description": text}, "max_schema_bytes"
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(draw(st.integers(17, 28))):  # 2 levels each: 34-56 levels, within the body's 64
        schema = {"type": "object", "properties": {"a": schema}}
    return schema, "max_schema_depth"


@SLOW
@given(case=oversized(), as_tool=st.booleans())
def test_oversized_schemas_are_refused_by_their_limit(
    raw: httpx.Client, health: HealthProbe, case: tuple[dict[str, Any], str], as_tool: bool
) -> None:
    schema, setting = case
    started = time.perf_counter()
    error = assert_refused(raw.post("/v1/chat/completions", json=_body(schema, as_tool), timeout=30))
    assert time.perf_counter() - started < 1.0
    assert error["code"] == f"{setting}_exceeded", error


def test_a_5mb_enum_does_not_hold_up_a_concurrent_chat(raw: httpx.Client, health: HealthProbe) -> None:
    """The issue's 10,000-string enum: refused at once, while a small chat goes through."""
    enum = [f"{i:05d}" + "x" * 500 for i in range(10_000)]
    results: dict[str, float] = {}

    def small() -> None:
        started = time.perf_counter()
        normal_chat(raw)
        results["small"] = time.perf_counter() - started

    thread = threading.Thread(target=small)
    thread.start()
    started = time.perf_counter()
    body = _body({"type": "string", "enum": enum}, as_tool=False)
    error = assert_refused(raw.post("/v1/chat/completions", json=body, timeout=60))
    results["enum"] = time.perf_counter() - started
    thread.join(timeout=60)
    assert error["code"] == "max_schema_bytes_exceeded"
    assert results["enum"] < 2.0 and results["small"] < 15.0, results


def test_the_worker_survived_every_schema(raw: httpx.Client) -> None:
    """No schema above reached the engine: the same worker serves, a constrained answer works,
    and its crash count is still 0."""
    pid = runner_pid(raw)
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["n"]}
    response = raw.post("/v1/chat/completions", json={**_body(schema, as_tool=False), "max_tokens": 20}, timeout=60)
    assert response.status_code == 200, response.text
    models = {m["id"]: m for m in raw.get("/v1/status").json()["models"]}
    assert models[DEFAULT_MODEL]["crashes"] == 0 and runner_pid(raw) == pid
