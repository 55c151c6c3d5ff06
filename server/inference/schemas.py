"""Which JSON schemas the grammar engine can enforce, checked before a request reaches it.

xgrammar (inside OpenVINO GenAI) silently ignores keywords it does not know, which would make
`strict` a lie, and fails inside the engine's batch step on a schema it cannot compile. So every
schema is checked here first: well-formed (jsonschema's meta-schema), local references only, and
only keywords the grammar enforces; anything else is a clear 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from adapters.schema_bounds import unsatisfiable
from server.http.errors import APIError, invalid_request

# Keywords xgrammar turns into grammar rules.
ENFORCED = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "$ref",
        "$defs",
        "definitions",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "pattern",
        "format",
    }
)
# Keywords that carry no constraint.
ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly"}
)
FORMATS = frozenset(
    {"email", "date", "time", "date-time", "duration", "uuid", "uri", "uri-reference", "ipv4", "ipv6", "hostname"}
)
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
# Regex features xgrammar's regex-to-grammar conversion cannot express.
_UNSUPPORTED_REGEX = re.compile(r"\(\?[=!<]|\\[1-9]|\\[bB]")


def _walk(schema: Any, root: dict[str, Any], path: str, param: str) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise invalid_request(f"{path} must be a JSON schema object.", param=param)
    for key, value in schema.items():
        where = f"{path}.{key}"
        if key in ANNOTATIONS:
            continue
        if key not in ENFORCED:
            raise invalid_request(
                f"The JSON schema keyword '{key}' (at {path}) is not supported by this server's "
                f"structured output. Supported keywords: {', '.join(sorted(ENFORCED))}.",
                param=param,
            )
        if key in _SCHEMA_MAPS:
            if not isinstance(value, dict):
                raise invalid_request(f"{where} must be an object.", param=param)
            for name, sub in value.items():
                _walk(sub, root, f"{where}.{name}", param)
        elif key in _SCHEMA_LISTS:
            for i, sub in enumerate(value):
                _walk(sub, root, f"{where}[{i}]", param)
        elif key in ("items", "additionalProperties") and not isinstance(value, bool):
            _walk(value, root, where, param)
        elif key == "$ref":
            _check_ref(value, root, where, param)
        elif key == "format" and value not in FORMATS:
            raise invalid_request(
                f"The string format '{value}' (at {path}) is not supported; supported: {', '.join(sorted(FORMATS))}.",
                param=param,
            )
        elif key == "pattern" and _UNSUPPORTED_REGEX.search(value):
            raise invalid_request(
                f"The pattern at {path} uses look-around, back-references or word boundaries, "
                "which structured output cannot enforce.",
                param=param,
            )


def _check_ref(ref: str, root: dict[str, Any], where: str, param: str) -> None:
    """Only references inside this schema ("#" or "#/$defs/name"), and they must resolve."""
    if not ref.startswith("#"):
        raise invalid_request(f"Only local $ref values ('#/...') are supported ({where}).", param=param)
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
        if node is None:
            raise invalid_request(f"The $ref '{ref}' ({where}) does not resolve inside the schema.", param=param)


def check_schema(schema: Any, param: str) -> str:
    """Validate `schema` for structured output; returns it serialized for the engine."""
    if not isinstance(schema, dict):
        raise invalid_request("The JSON schema must be an object.", param=param)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise invalid_request(f"Invalid JSON schema: {exc.message}", param=param) from exc
    try:
        _walk(schema, schema, "schema", param)
    except APIError:
        raise
    except (TypeError, AttributeError, re.error) as exc:
        raise invalid_request(f"Invalid JSON schema: {exc}", param=param) from exc
    problem = unsatisfiable(schema)
    if problem is not None:
        raise invalid_request(f"The JSON schema cannot be enforced: {problem}.", param=param)
    return json.dumps(schema)
