"""The OpenAI routes' request limits: how many messages and tools, and how large a schema, one
request may send (settings `max_messages`, `max_tools`, `max_schema_*`, `max_enum_values`).

Checked by each route right after decoding and before translating, so that nothing sizeable is
walked, checked by jsonschema or sent to a worker first. A refusal is a `LimitExceeded`, which
server/http/errors.py answers in OpenAI's shape, naming the limit's setting.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

from server.inference.chat.protocol import ChatCompletionRequest
from server.inference.responses.protocol import CreateResponse
from server.inference.tokenize.protocol import TokenizeRequest
from server.limits.refusal import LimitExceeded
from server.limits.schema import check_schema_bounds
from server.settings import LimitSettings


def check_count(items: Sized | None, limit: int, setting: str, param: str, what: str) -> None:
    """Refuse more than `limit` `items` (a list a client sent), naming `setting`."""
    if items is not None and len(items) > limit:
        raise LimitExceeded(f"The request has {len(items)} {what}", setting=setting, limit=limit, param=param)


def check_chat_request(body: ChatCompletionRequest, limits: LimitSettings) -> None:
    """A chat completion's messages, tools and schemas within `limits`."""
    check_count(body.messages, limits.max_messages, "max_messages", "messages", "messages")
    check_count(body.tools, limits.max_tools, "max_tools", "tools", "tools")
    for i, tool in enumerate(body.tools or []):
        if tool.function.parameters is not None:
            check_schema_bounds(tool.function.parameters, limits, f"tools[{i}].function.parameters")
    named = body.response_format.json_schema if body.response_format is not None else None
    if named is not None and named.schema_ is not None:
        check_schema_bounds(named.schema_, limits, "response_format.json_schema.schema")


def check_response_request(body: CreateResponse, limits: LimitSettings) -> None:
    """A Responses request's input items, tools and schemas within `limits`."""
    if isinstance(body.input, list):
        check_count(body.input, limits.max_messages, "max_messages", "input", "input items")
    check_count(body.tools, limits.max_tools, "max_tools", "tools", "tools")
    for i, tool in enumerate(body.tools or []):
        parameters: Any = tool.get("parameters")
        if parameters is not None:
            check_schema_bounds(parameters, limits, f"tools[{i}].parameters")


def check_tokenize_request(body: TokenizeRequest, limits: LimitSettings) -> None:
    """A tokenize request's messages within `limits`."""
    check_count(body.messages, limits.max_messages, "max_messages", "messages", "messages")
