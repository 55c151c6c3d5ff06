"""Integers past what the engine takes, in every integer field: once, 2^64 in `max_tokens` failed
to encode after admission and the call held its model's only slot forever (every later request:
503 queue_timeout). Now each is a 400 naming the field, and the one slot stays free."""

from __future__ import annotations

import time
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DEFAULT_MODEL
from tests.server.limits.conftest import HealthProbe, assert_refused, normal_chat, runner_pid

CHAT = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
COMPLETION = {"model": DEFAULT_MODEL, "prompt": "Hi", "max_tokens": 2}
RESPONSE = {"model": DEFAULT_MODEL, "input": "Hi", "max_output_tokens": 2}
# (route, a valid body, the integer field, the param the refusal names)
FIELDS: list[tuple[str, dict[str, Any], str, str]] = [
    *[
        ("/v1/chat/completions", CHAT, f, f)
        for f in ("max_tokens", "max_completion_tokens", "top_k", "n", "seed", "top_logprobs", "priority")
    ],
    *[("/v1/completions", COMPLETION, f, f) for f in ("max_tokens", "top_k", "n", "seed", "logprobs", "best_of")],
    *[("/v1/responses", RESPONSE, f, f) for f in ("max_output_tokens", "top_k", "seed")],
    ("/v1/embeddings", {"model": DEFAULT_MODEL, "input": "x"}, "dimensions", "dimensions"),
    ("/v1/rerank", {"model": DEFAULT_MODEL, "query": "q", "documents": ["a"]}, "top_n", "top_n"),
]
# Past int64 either way, or past the engines' C ints where the field is a count.
HUGE = st.integers(min_value=2**63, max_value=2**256) | st.integers(min_value=-(2**256), max_value=-(2**63) - 1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=HUGE)
def test_a_huge_integer_is_refused_and_frees_nothing_it_never_took(
    raw: httpx.Client, health: HealthProbe, field: tuple[str, dict[str, Any], str, str], value: int
) -> None:
    path, body, name, param = field
    started = time.perf_counter()
    response = raw.post(path, json={**body, name: value}, timeout=30)
    assert time.perf_counter() - started < 1.0
    error = assert_refused(response)
    assert error["param"] == param, error


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.integers(0, 100) | HUGE | st.integers(2**31, 2**63), min_size=1, max_size=5))
def test_token_ids_past_the_vocabulary_are_refused(raw: httpx.Client, ids: list[int]) -> None:
    """POST /detokenize with an id of 1e30 was a 500; an id past the model's vocabulary (49,152
    for the default model) is a 400 too, from the worker, which stays up."""
    response = raw.post("/detokenize", json={"tokens": ids}, timeout=30)
    if all(0 <= i <= 100 for i in ids):
        assert response.status_code == 200, response.text
        return
    error = assert_refused(response)
    assert error["param"].startswith("tokens"), error


def test_completion_token_prompts_past_the_range_are_refused(raw: httpx.Client) -> None:
    for prompt in ([2**64], [[1, 2], [2**70]], [-1]):
        body = {**COMPLETION, "prompt": prompt}
        assert assert_refused(raw.post("/v1/completions", json=body, timeout=30))["param"] == "prompt"


def test_the_only_slot_is_still_free_and_the_worker_the_same(raw: httpx.Client) -> None:
    """After every refusal above, with one slot: a normal chat is answered at once, by the same
    worker process, and the largest valid values still work."""
    pid = runner_pid(raw)
    for value in (2**64, 2**63, 2**31):
        assert_refused(raw.post("/v1/chat/completions", json={**CHAT, "max_tokens": value}, timeout=30))
    started = time.perf_counter()
    normal_chat(raw)
    assert time.perf_counter() - started < 15
    big = {**CHAT, "max_tokens": 2, "seed": 2**63 - 1, "top_k": 2**31 - 1}
    assert raw.post("/v1/chat/completions", json=big, timeout=60).status_code == 200
    assert raw.post("/detokenize", json={"tokens": [49_151]}, timeout=30).status_code == 200
    assert_refused(raw.post("/detokenize", json={"tokens": [49_152]}, timeout=30), mentions="tokens")
    assert runner_pid(raw) == pid
