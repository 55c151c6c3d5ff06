"""The translation layer: OpenAI requests to GenerationRequests, engine deltas to usage."""

from __future__ import annotations

import msgspec
import pytest

from adapters.base import ChatMessage, Delta, EngineError, GenerationRequest
from server.http.errors import APIError
from server.inference import protocol as p
from server.inference.chat.protocol import ChatCompletionRequest
from server.inference.chat.translate import from_chat_request
from server.inference.completions.protocol import CompletionRequest
from server.inference.completions.translate import PromptChoice, from_completion_request, to_fim_requests
from server.inference.translate import OPENAI_DEFAULTS, UsageCounter, finish_reason, require_no_error
from server.settings import SamplingDefaults


def chat(**fields: object) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return msgspec.convert(body, ChatCompletionRequest)


def completion(**fields: object) -> CompletionRequest:
    return msgspec.convert({"model": "m", "prompt": "hi", **fields}, CompletionRequest)


def completion_requests(
    body: CompletionRequest, defaults: SamplingDefaults = OPENAI_DEFAULTS, fim: tuple[str, str, str] | None = None
) -> tuple[list[GenerationRequest], list[PromptChoice]]:
    """The whole translation of a completion, as the door runs it on a model with FIM tokens `fim`."""
    requests, choices = from_completion_request(body, defaults)
    return to_fim_requests(requests, body, fim), choices


def test_chat_defaults_follow_openai() -> None:
    (request,) = from_chat_request(chat())
    assert request.params.temperature == 1.0
    assert request.params.top_p == 1.0
    assert request.params.max_tokens is None
    assert request.messages == (ChatMessage("user", "hi"),)


def test_chat_roles_and_content_parts() -> None:
    body = chat(
        messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None},
        ]
    )
    (request,) = from_chat_request(body)
    assert request.messages == (
        ChatMessage("system", "be brief"),
        ChatMessage("system", "a\nb"),
        ChatMessage("user", "q"),
        ChatMessage("assistant", ""),
    )


def test_server_defaults_fill_only_what_the_request_leaves_out() -> None:
    defaults = SamplingDefaults(temperature=0.8, top_p=0.95, top_k=40, min_p=0.05)
    (omitted,) = from_chat_request(chat(), defaults)
    assert (omitted.params.temperature, omitted.params.top_p, omitted.params.top_k, omitted.params.min_p) == (
        0.8,
        0.95,
        40,
        0.05,
    )
    (explicit,) = from_chat_request(chat(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0), defaults)
    assert (explicit.params.temperature, explicit.params.top_p, explicit.params.top_k, explicit.params.min_p) == (
        1.0,
        1.0,
        0,
        0.0,
    )
    (legacy,), _ = completion_requests(completion(top_k=5), defaults)
    assert (legacy.params.temperature, legacy.params.top_k) == (0.8, 5)


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    (request,) = from_chat_request(chat(max_tokens=5, max_completion_tokens=7))
    assert request.params.max_tokens == 7


def test_stop_string_or_list() -> None:
    assert from_chat_request(chat(stop="x"))[0].params.stop == ("x",)
    assert from_chat_request(chat(stop=["x", "y"]))[0].params.stop == ("x", "y")


def test_n_gives_distinct_seeds_and_leaves_ids_to_the_door() -> None:
    requests = from_chat_request(chat(n=3, seed=10))
    assert [r.request_id for r in requests] == [0, 0, 0]  # the engine door stamps real ones
    assert [r.params.seed for r in requests] == [10, 11, 12]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": True, "top_logprobs": 1}, "top_logprobs"),
        ({"logprobs": True, "response_format": {"type": "json_object"}}, "logprobs"),
        ({"tool_choice": "auto"}, "tool_choice"),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            "tool_choice",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f"}},
                    {"type": "function", "function": {"name": "f"}},
                ]
            },
            "tools",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "allOf": []}}}]},
            "tools[0].function.parameters",
        ),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"logit_bias": {"1": 2.0}}, "logit_bias"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_unsupported_features_are_refused_with_their_param(fields: dict[str, object], param: str) -> None:
    with pytest.raises(APIError) as info:
        from_chat_request(chat(**fields))
    assert info.value.status == 400
    assert info.value.detail.param == param


def test_tools_and_a_response_format_make_one_grammar() -> None:
    """auto: one call or the JSON answer; required: a call (the format waits for a later turn)."""
    tools = [{"type": "function", "function": {"name": "f"}}]
    fmt = {"type": "json_object"}
    (auto,) = from_chat_request(chat(tools=tools, response_format=fmt))
    assert auto.constraint is not None and auto.constraint.json_schema and auto.constraint.tags
    assert auto.constraint.single and not auto.constraint.tags_only
    (required,) = from_chat_request(chat(tools=tools, response_format=fmt, tool_choice="required"))
    assert required.constraint is not None and required.constraint.tags_only and required.constraint.json_schema is None
    (none,) = from_chat_request(chat(tools=tools, response_format=fmt, tool_choice="none"))
    assert none.constraint is not None and none.constraint.json_schema and not none.constraint.tags


def test_completion_prompt_forms() -> None:
    requests, choices = completion_requests(completion(prompt=["a", "b"], n=2, echo=True))
    assert [r.prompt for r in requests] == ["a", "a", "b", "b"]
    assert [c.prompt_index for c in choices] == [0, 0, 1, 1]
    assert [c.echo for c in choices] == ["a", "a", "b", "b"]
    (request,), _ = completion_requests(completion(prompt=[5, 6, 7]))
    assert request.prompt_ids == (5, 6, 7)
    requests, _ = completion_requests(completion(prompt=[[1], [2, 3]]))
    assert [r.prompt_ids for r in requests] == [(1,), (2, 3)]
    assert requests[0].params.max_tokens == 16  # OpenAI's legacy default


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": []}, "prompt"),
        ({"prompt": [1, "a"]}, "prompt"),
        ({"prompt": [-1]}, "prompt"),
        ({"prompt": [True]}, "prompt"),
        ({"suffix": "x"}, "suffix"),
        ({"suffix": "x", "prompt": [1, 2]}, "suffix"),
        ({"logprobs": 1}, "logprobs"),
        ({"best_of": 3}, "best_of"),
        ({"prompt": [1, 2], "echo": True}, "echo"),
        ({"prompt": ["a"] * 3, "n": 100}, "prompt"),
    ],
)
def test_completion_refusals(fields: dict[str, object], param: str) -> None:
    with pytest.raises(APIError) as info:
        completion_requests(completion(**fields))
    assert info.value.detail.param == param


def test_usage_counts_each_prompt_once() -> None:
    counter = UsageCounter([0, 0, 1])
    counter.add(0, Delta(request_id=1, tokens=3, prompt_tokens=10))
    counter.add(1, Delta(request_id=2, tokens=4, prompt_tokens=10))
    counter.add(2, Delta(request_id=3, tokens=5, prompt_tokens=7))
    assert counter.usage() == p.Usage(prompt_tokens=17, completion_tokens=12, total_tokens=29)


def test_finish_reasons_and_errors() -> None:
    assert finish_reason(Delta(request_id=1, finish_reason="length")) == "length"
    assert finish_reason(Delta(request_id=1, finish_reason="stop")) == "stop"
    assert finish_reason(Delta(request_id=1)) is None
    with pytest.raises(APIError) as info:
        require_no_error(Delta(request_id=1, error=EngineError("context_length_exceeded", "too long")), "prompt")
    assert (info.value.status, info.value.detail.code, info.value.detail.param) == (
        400,
        "context_length_exceeded",
        "prompt",
    )
    with pytest.raises(APIError) as info:
        require_no_error(Delta(request_id=1, error=EngineError("engine_unavailable", "gone")))
    assert info.value.status == 503
