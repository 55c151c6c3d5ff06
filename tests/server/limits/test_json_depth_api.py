"""Deeply nested JSON on every JSON route: once a 500 (RecursionError inside the decoder), now a 400
naming `max_json_depth`, answered at once, while /health keeps answering and the worker lives on."""

from __future__ import annotations

import time

import httpx
import psutil
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DEFAULT_MODEL, HearthServer
from tests.server.limits.conftest import HealthProbe, assert_refused, normal_chat, runner_pid

# Each route with a body that is valid but for one field, which gets the nested value (`@`).
TEMPLATES = [
    ("/v1/chat/completions", '{"model":"MODEL","messages":[{"role":"user","content":@}]}'),
    ("/v1/chat/completions", '{"model":"MODEL","messages":[{"role":"user","content":"x"}],"extra":@}'),
    (
        "/v1/chat/completions",
        '{"model":"MODEL","messages":[{"role":"user","content":"x"}],'
        '"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":@}}}',
    ),
    (
        "/v1/chat/completions",
        '{"model":"MODEL","messages":[{"role":"user","content":"x"}],'
        '"tools":[{"type":"function","function":{"name":"f","parameters":@}}]}',
    ),
    ("/v1/completions", '{"model":"MODEL","prompt":@}'),
    ("/v1/responses", '{"model":"MODEL","input":@}'),
    ("/v1/responses", '{"model":"MODEL","input":"x","metadata":@}'),
    ("/v1/embeddings", '{"model":"MODEL","input":@}'),
    ("/v1/rerank", '{"model":"MODEL","query":"q","documents":@}'),
    ("/tokenize", '{"messages":@}'),
    ("/detokenize", '{"tokens":@}'),
    ("/v1/hub/pull", '{"model":@}'),
    ("/v1/workflows/none/runs", '{"inputs":@}'),
]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", None]


@st.composite
def nested(draw: st.DrawFn) -> str:
    """Arrays and objects (and strings of brackets) nested past the limit, closed or not."""
    levels = draw(st.integers(65, 30_000))
    kinds = draw(st.lists(st.sampled_from(["[", '{"a":', '["]]}",', '{"x":"}]","a":']), min_size=1, max_size=4))
    opened = [kinds[i % len(kinds)] for i in range(levels)]
    closers = "".join("]" if o.startswith("[") else "}" for o in reversed(opened))
    if draw(st.booleans()):
        closers = closers[: draw(st.integers(0, len(closers)))]
    return "".join(opened) + "1" + closers


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(route=st.sampled_from(TEMPLATES), value=nested(), content_type=st.sampled_from(CONTENT_TYPES))
def test_nested_json_is_refused_at_once(
    raw: httpx.Client, health: HealthProbe, route: tuple[str, str], value: str, content_type: str | None
) -> None:
    path, template = route
    headers = {"content-type": content_type} if content_type else {}
    started = time.perf_counter()
    # A connection of its own: a server may close one after an early refusal.
    headers["connection"] = "close"
    body = template.replace("MODEL", DEFAULT_MODEL).replace("@", value)
    response = raw.post(path, content=body.encode(), headers=headers)
    assert time.perf_counter() - started < 1.0
    error = assert_refused(response, mentions="max_json_depth")
    assert error["code"] == "max_json_depth_exceeded"


def test_the_server_is_unharmed_afterwards(limited: HearthServer, raw: httpx.Client, health: HealthProbe) -> None:
    """Many large attacks in a row: the worker is the same process, a normal chat succeeds (its
    one slot is free) and the server's memory is back within 10% (measured after a first attack:
    the allocator keeps some of what a 4 MB body took once, ~10 MB here, but nothing grows)."""
    nested = "[" * 2_000_000 + "]" * 2_000_000
    body = f'{{"model":"{DEFAULT_MODEL}","messages":[{{"role":"user","content":{nested}}}]}}'.encode()
    normal_chat(raw)
    pid = runner_pid(raw)
    server = psutil.Process(limited.process.pid)
    for _ in range(2):
        assert_refused(raw.post("/v1/chat/completions", content=body), mentions="max_json_depth")
    before = server.memory_info().rss
    for _ in range(10):
        assert_refused(raw.post("/v1/chat/completions", content=body), mentions="max_json_depth")
    assert runner_pid(raw) == pid
    normal_chat(raw)
    assert server.memory_info().rss < before * 1.1


def test_brackets_inside_strings_are_not_nesting(raw: httpx.Client) -> None:
    """A text full of brackets is text: it is tokenized, not refused."""
    text = "[{" * 5_000 + "}]" * 5_000
    response = raw.post("/tokenize", json={"content": text})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["count"] > 0


def test_depth_within_the_limit_is_decoded(raw: httpx.Client) -> None:
    """A body nested just inside the limit reaches the route, which judges it on its merits."""
    value = "[" * 58 + "1" + "]" * 58  # 58 levels here, 6 around them: the body is 64 deep
    body = f'{{"model":"{DEFAULT_MODEL}","input":"x","metadata":{{"k":{value}}}}}'
    error = assert_refused(raw.post("/v1/responses", content=body.encode()))
    assert error["code"] != "max_json_depth_exceeded" and "metadata" in error["message"]
