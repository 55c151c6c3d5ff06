"""What the request limits of issue 14 cost per request: the JSON depth pre-scan, the counts and
schema bounds, xgrammar's refusals checked in the server and again in the worker.

In-process microbenchmark (no server, no model): each check timed on the bodies real clients
send (a chat turn, a tool-calling request with four tools and a response format) and on the
worst a client may send within the default limits. Prints a markdown table of the median cost.

    .venv/bin/python -m benchmarks.security_checks [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import msgspec

from adapters.base import OutputConstraint, ToolTag
from adapters.schema_bounds import unsatisfiable
from adapters.structured import constraint_problem
from server.inference.chat.protocol import ChatCompletionRequest
from server.inference.limits import check_chat_request
from server.limits.json_body import check_json_depth
from server.settings import LimitSettings

LIMITS = LimitSettings()
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "hours": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 23}, "maxItems": 24},
    },
    "required": ["city"],
}
CHAT = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. Answer briefly; use [brackets] for notes."},
        {"role": "user", "content": "What is the weather in Paris tomorrow? {be precise}"},
    ],
    "max_tokens": 256,
}
TOOLS = {
    **CHAT,
    "tools": [{"type": "function", "function": {"name": f"tool_{i}", "parameters": WEATHER}} for i in range(4)],
    "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": WEATHER}},
}


def _deepest_allowed() -> bytes:
    """A 1 MB body that nests exactly to the limit everywhere: the scan's slowest input."""
    depth = LIMITS.max_json_depth - 4
    unit = "[" * depth + "1" + "]" * depth
    items = ",".join([unit] * (1_000_000 // len(unit)))
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()[:-1] + (
        f',"extra":[{items}]}}'.encode()
    )


def _case(name: str, call: Callable[[], Any], number: int, repeat: int) -> tuple[str, float]:
    times = timeit.repeat(call, number=number, repeat=repeat)
    return name, statistics.median(times) / number * 1e6


def main() -> None:
    """Time each check and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    chat_body, tools_body = msgspec.json.encode(CHAT), msgspec.json.encode(TOOLS)
    chat = msgspec.json.decode(chat_body, type=ChatCompletionRequest)
    tools = msgspec.json.decode(tools_body, type=ChatCompletionRequest)
    schema_text = json.dumps(WEATHER)
    constraint = OutputConstraint(tags=tuple(ToolTag("<tool_call>", schema_text, "</tool_call>") for _ in range(4)))
    worst = _deepest_allowed()
    rows = [
        _case(
            f"depth scan, chat body ({len(chat_body)} B)", lambda: check_json_depth(chat_body, LIMITS), 20_000, repeat
        ),
        _case(
            f"depth scan, tools body ({len(tools_body)} B)", lambda: check_json_depth(tools_body, LIMITS), 5_000, repeat
        ),
        _case("counts + schema bounds, chat", lambda: check_chat_request(chat, LIMITS), 20_000, repeat),
        _case(
            "counts + schema bounds, 4 tools + response format",
            lambda: check_chat_request(tools, LIMITS),
            2_000,
            repeat,
        ),
        _case(
            "xgrammar refusals (server), 5 schemas", lambda: [unsatisfiable(WEATHER) for _ in range(5)], 2_000, repeat
        ),
        _case("xgrammar refusals (worker), 4 tool schemas", lambda: constraint_problem(constraint), 2_000, repeat),
        _case(
            f"depth scan, worst allowed body ({len(worst) >> 10} KiB)",
            lambda: check_json_depth(worst, LIMITS),
            3,
            repeat,
        ),
    ]
    print("| check | median per request |\n|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:,.1f} µs |")


if __name__ == "__main__":
    main()
