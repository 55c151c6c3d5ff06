"""Chat completions: a request -> one `GenerationRequest` per choice, with its tools and response
format as a grammar."""

from __future__ import annotations

import msgspec

from adapters.base import GenerationRequest
from server.inference.chat.protocol import ChatCompletionRequest
from server.inference.tool_calls import tool_plan, with_answer_format
from server.inference.translate import (
    OPENAI_DEFAULTS,
    chat_messages,
    check_logprobs,
    refuse_unsupported,
    response_constraint,
    sampling_params,
    with_seed,
)
from server.settings import SamplingDefaults


def from_chat_request(
    body: ChatCompletionRequest, defaults: SamplingDefaults = OPENAI_DEFAULTS
) -> list[GenerationRequest]:
    """One `GenerationRequest` per requested choice (`n`), or a 400 for what is not supported.

    Request ids are placeholders: the engine door stamps real ones when it submits them."""
    plan = tool_plan(body.tools, body.tool_choice, body.parallel_tool_calls)
    constraint = with_answer_format(plan, response_constraint(body.response_format))
    check_logprobs(bool(body.logprobs), body.top_logprobs or 0, constraint is not None, "top_logprobs")
    n = body.n or 1
    refuse_unsupported(body.logit_bias, n)
    messages = chat_messages(body.messages)
    params = msgspec.structs.replace(
        sampling_params(body, body.max_completion_tokens or body.max_tokens, defaults), logprobs=bool(body.logprobs)
    )
    base = GenerationRequest(request_id=0, params=params, messages=messages, tools=plan.tools, constraint=constraint)
    return [with_seed(base, i) for i in range(n)]
