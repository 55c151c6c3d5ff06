"""The Messages API's request limits: how many messages and tools, and how large a schema, one
request may send (settings `max_messages`, `max_tools`, `max_schema_*`, `max_enum_values`), checked
after decoding and before translating, as the OpenAI routes do (server/inference/limits.py). A
refusal is a `LimitExceeded`, which this router's error mapping answers in Anthropic's shape."""

from __future__ import annotations

from server.dialects.anthropic import protocol as a
from server.inference.limits import check_count
from server.limits.schema import check_schema_bounds
from server.settings import LimitSettings


def check_messages_request(body: a.MessagesRequest | a.CountTokensRequest, limits: LimitSettings) -> None:
    """A Messages (or count_tokens) request's messages, tools and schemas within `limits`."""
    check_count(body.messages, limits.max_messages, "max_messages", "messages", "messages")
    check_count(body.tools, limits.max_tools, "max_tools", "tools", "tools")
    for i, tool in enumerate(body.tools or []):
        if tool.input_schema is not None:
            check_schema_bounds(tool.input_schema, limits, f"tools[{i}].input_schema")
    output = getattr(body, "output_config", None)
    if output is not None and output.format is not None:
        check_schema_bounds(output.format.schema, limits, "output_config.format.schema")
