"""JSON schemas (response formats, tool parameters) bounded before they are checked or compiled.

Checking a schema (jsonschema's meta-schema) recurses with its depth, and compiling one into a
grammar costs time with its size: a 5 MB `enum` of 10,000 strings took 54 s in the worker while
every other chat of the model waited. So size, depth and enum values are bounded first, by one
cheap pass: the size from msgspec's encoder, depth and enum values by an iterative walk.
"""

from __future__ import annotations

from typing import Any

import msgspec

from server.limits.refusal import LimitExceeded
from server.settings import LimitSettings


def check_schema_bounds(schema: Any, limits: LimitSettings, param: str) -> None:
    """Raise `LimitExceeded` naming `param` if `schema` is larger, deeper or holds more enum values
    than `limits` allow."""
    size = len(msgspec.json.encode(schema))
    if size > limits.max_schema_bytes:
        raise LimitExceeded(
            f"The JSON schema is {size} bytes", setting="max_schema_bytes", limit=limits.max_schema_bytes, param=param
        )
    deepest, values = _measure(schema)
    if deepest > limits.max_schema_depth:
        raise LimitExceeded(
            "The JSON schema nests objects and arrays too deeply",
            setting="max_schema_depth",
            limit=limits.max_schema_depth,
            param=param,
        )
    if values > limits.max_enum_values:
        raise LimitExceeded(
            f"The JSON schema lists {values} enum and const values",
            setting="max_enum_values",
            limit=limits.max_enum_values,
            param=param,
        )


def _measure(schema: Any) -> tuple[int, int]:
    """The nesting depth of `schema`'s objects and arrays, and how many enum/const values it lists."""
    deepest = values = 0
    todo: list[tuple[Any, int]] = [(schema, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            enum = node.get("enum")
            values += len(enum) if isinstance(enum, list) else 0
            values += "const" in node
            todo.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
    return deepest, values
