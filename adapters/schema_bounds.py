"""JSON schemas the grammar engine would fail on, found before it sees them.

xgrammar (inside OpenVINO GenAI) turns a schema into a grammar inside the engine's batch step, and
a schema it refuses there (minItems > maxItems, minimum > maximum, an integer bound past 64 bits)
raises from `step()`: measured, the pipeline then refuses every later step, so one request took the
shared worker and every request in flight with it. These are xgrammar's own refusals (its
json_schema_converter.cc), checked in Python: by the server, for a 400 before the queue, and again
by the worker before `add_request`, so that a request no route checked fails alone.

Pure and iterative (no recursion: a schema's depth is the client's choice); no engine imports.
"""

from __future__ import annotations

import math
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# The counts (minLength, minItems, ...) become C ints in the grammar.
_COUNT_MAX = 2**31 - 1
# Keywords that make xgrammar ignore the type-specific ones beside them.
_OVERRIDING = frozenset({"$ref", "const", "enum", "anyOf", "oneOf", "allOf"})
_SUBSCHEMA_MAPS = frozenset({"properties", "$defs", "definitions"})
_SUBSCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SUBSCHEMA_ONE = frozenset({"items", "additionalProperties"})


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _COUNT_MAX


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    found = set()
    if "items" in schema or "prefixItems" in schema:
        found.add("array")
    if "properties" in schema or "additionalProperties" in schema:
        found.add("object")
    return found


def _integer_bound(value: object, name: str) -> tuple[int | None, str | None]:
    if not _number(value):
        return None, f"{name} must be a number"
    assert isinstance(value, int | float)
    if isinstance(value, float) and (not math.isfinite(value) or value != math.floor(value)):
        return None, f"{name} of an integer must be a whole number"
    # A float at ±2^63 is past int64 once converted (xgrammar's own check).
    if isinstance(value, float) and abs(value) >= 2.0**63:
        return None, f"{name} of an integer must lie between -2^63 and 2^63-1"
    whole = int(value)
    if not INT64_MIN <= whole <= INT64_MAX:
        return None, f"{name} of an integer must lie between -2^63 and 2^63-1"
    return whole, None


def _integer(schema: dict[str, Any]) -> str | None:
    bounds: dict[str, int] = {}
    for name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if name in schema:
            value, problem = _integer_bound(schema[name], name)
            if problem is not None:
                return problem
            assert value is not None
            bounds[name] = value
    if bounds.get("exclusiveMinimum") == INT64_MAX or bounds.get("exclusiveMaximum") == INT64_MIN:
        return "an exclusive bound leaves no 64-bit integer"
    lows = [bounds["minimum"]] if "minimum" in bounds else []
    if "exclusiveMinimum" in bounds:
        lows.append(bounds["exclusiveMinimum"] + 1)
    highs = [bounds["maximum"]] if "maximum" in bounds else []
    if "exclusiveMaximum" in bounds:
        highs.append(bounds["exclusiveMaximum"] - 1)
    low, high = max(lows, default=INT64_MIN), min(highs, default=INT64_MAX)
    if low > high:
        return "the integer range is empty (minimum greater than maximum)"
    step = schema.get("multipleOf")
    if step is not None:
        if not _number(step) or step <= 0:
            return "multipleOf must be a number greater than 0"
        if lows and highs and float(step).is_integer() and -(-low // int(step)) * int(step) > high:
            return "the integer range holds no multiple of multipleOf"
    return None


def _number_range(schema: dict[str, Any]) -> str | None:
    bounds: dict[str, float] = {}
    for name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if name in schema:
            if not _number(schema[name]):
                return f"{name} must be a number"
            bounds[name] = float(schema[name])
    if "multipleOf" in schema and (not _number(schema["multipleOf"]) or schema["multipleOf"] <= 0):
        return "multipleOf must be a number greater than 0"
    # Any lower bound against any upper bound; an exclusive one also rules out equality.
    for low_name, high_name in (
        ("minimum", "maximum"),
        ("minimum", "exclusiveMaximum"),
        ("exclusiveMinimum", "maximum"),
        ("exclusiveMinimum", "exclusiveMaximum"),
    ):
        if low_name in bounds and high_name in bounds:
            low, high = bounds[low_name], bounds[high_name]
            if low > high or (low == high and "exclusive" in low_name + high_name):
                return "the number range is empty (minimum greater than maximum)"
    return None


def _string(schema: dict[str, Any]) -> str | None:
    for name in ("minLength", "maxLength"):
        if name in schema and not _count(schema[name]):
            return f"{name} must be an integer between 0 and {_COUNT_MAX}"
    if "minLength" in schema and "maxLength" in schema and schema["minLength"] > schema["maxLength"]:
        return "minLength is greater than maxLength"
    return None


def _array(schema: dict[str, Any]) -> str | None:
    for name in ("minItems", "maxItems"):
        if name in schema and not _count(schema[name]):
            return f"{name} must be an integer between 0 and {_COUNT_MAX}"
    prefix = schema.get("prefixItems", [])
    prefix_size = len(prefix) if isinstance(prefix, list) else 0
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    if high is not None and low > high:
        return "minItems is greater than maxItems"
    if high is not None and high < prefix_size:
        return "maxItems is less than the number of prefixItems"
    if schema.get("items") is False and prefix_size < low:
        return "minItems is greater than the number of prefixItems, and no other items are allowed"
    return None


def _object(schema: dict[str, Any]) -> str | None:
    for name in ("minProperties", "maxProperties"):
        if name in schema and not _count(schema[name]):
            return f"{name} must be an integer between 0 and {_COUNT_MAX}"
    low, high = schema.get("minProperties", 0), schema.get("maxProperties")
    required = schema.get("required", [])
    if high is not None and low > high:
        return "minProperties is greater than maxProperties"
    if high is not None and isinstance(required, list) and len(set(map(str, required))) > high:
        return "maxProperties is less than the number of required properties"
    properties = schema.get("properties", {})
    closed = schema.get("additionalProperties") is False and "patternProperties" not in schema
    if closed and isinstance(properties, dict) and low > len(properties):
        return "minProperties is greater than the number of properties, and no others are allowed"
    return None


_CHECKS = {"integer": _integer, "number": _number_range, "string": _string, "array": _array, "object": _object}


def _node_problem(schema: dict[str, Any]) -> str | None:
    """What xgrammar would refuse in this one schema object (its subschemas aside)."""
    # xgrammar reads $ref first, then const, then enum, ...; only the first one present counts.
    if "enum" in schema and "$ref" not in schema and "const" not in schema:
        enum = schema["enum"]
        if not isinstance(enum, list) or not enum:
            return "enum must be a non-empty array"
    if not _OVERRIDING.isdisjoint(schema):
        return None
    for kind in _types(schema):
        check = _CHECKS.get(kind)
        problem = check(schema) if check is not None else None
        if problem is not None:
            return problem
    return None


# Where a subschema is: its parent's place and its own label, formatted only for an error.
_Place = tuple[Any, str]


def _where(place: _Place | str) -> str:
    labels: list[str] = []
    while not isinstance(place, str):
        place, label = place
        labels.append(label)
    return place + "".join(reversed(labels))


def unsatisfiable(schema: Any, path: str = "schema") -> str | None:
    """The first thing in `schema` the grammar engine would refuse, with where it is, or None."""
    todo: list[tuple[Any, _Place | str]] = [(schema, path)]
    while todo:
        node, place = todo.pop()
        if node is False:
            return f"{_where(place)} is `false`, which accepts no value"
        if not isinstance(node, dict):
            continue
        problem = _node_problem(node)
        if problem is not None:
            return f"{_where(place)}: {problem}"
        # `false` is fine where it only closes a list or an object (items, additionalProperties):
        # those are followed only when they hold a schema object.
        for key, value in node.items():
            if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
                todo.extend((sub, (place, f".{key}.{name}")) for name, sub in value.items())
            elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
                todo.extend((sub, (place, f".{key}[{i}]")) for i, sub in enumerate(value))
            elif key in _SUBSCHEMA_ONE and isinstance(value, dict):
                todo.append((value, (place, f".{key}")))
    return None
