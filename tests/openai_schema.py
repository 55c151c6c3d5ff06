"""Validate response bodies against OpenAI's published OpenAPI document.

The document lives outside the repository, at `../shared/reference/openai-openapi/openapi.json`
(next to the repo root). It mixes OpenAPI 3.1 (`anyOf [..., {"type": "null"}]`) with leftover
OpenAPI 3.0 `nullable: true`, which JSON Schema does not know; `rewrite_nullable` turns the latter
into the former so that Draft 2020-12 validation accepts the `null`s OpenAI itself sends.

Usage: `validate("CreateChatCompletionResponse", body)` raises `jsonschema.ValidationError`.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO_ROOT.parent / "shared" / "reference" / "openai-openapi" / "openapi.json"

# The id under which the whole OpenAI document is registered; `#/components/schemas/X` refs inside
# it resolve against this resource.
SPEC_URI = "urn:openai:openapi"

# Keywords that describe a schema rather than constrain it: they stay on the outer schema when a
# nullable schema is split into `anyOf [schema, null]`.
_ANNOTATIONS = frozenset({"title", "description", "default", "deprecated", "example", "examples", "readOnly"})

# Keywords whose value maps names (not keywords) to subschemas.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})

# OpenAI's document says a streamed legacy completion chunk has "the same shape" as the whole
# response, but its schema forbids what the real API streams: `finish_reason: null` before the
# last chunk, and `usage: null` on the chunks before the usage chunk (stream_options.include_usage).
# This component, registered next to the others, is CreateCompletionResponse with those two
# fields made nullable and nothing else changed.
COMPLETION_CHUNK = "CreateCompletionStreamChunk"


def rewrite_nullable(node: Any) -> Any:
    """Return a copy of `node` with every OpenAPI 3.0 `nullable` turned into JSON Schema.

    `{"type": "string", "enum": [...], "nullable": true}` becomes
    `{"anyOf": [{"type": "string", "enum": [...]}, {"type": "null"}]}` (the `enum` must move into
    the branch, or `null` would still be refused), and `{"$ref": X, "nullable": true}` becomes
    `{"anyOf": [{"$ref": X}, {"type": "null"}]}`. Descriptive keywords stay outside the `anyOf`.
    `nullable: false` is simply dropped.
    """
    if isinstance(node, list):
        return [rewrite_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: rewrite_nullable(sub) for name, sub in value.items()}
        elif key == "nullable" and isinstance(value, bool):
            continue
        else:
            out[key] = rewrite_nullable(value)
    if node.get("nullable") is not True:
        return out
    outer = {k: v for k, v in out.items() if k in _ANNOTATIONS or k.startswith("x-")}
    inner = {k: v for k, v in out.items() if k not in outer}
    if not inner:
        return out  # a bare `nullable: true` allows anything already
    if isinstance(inner.get("type"), str) and set(inner) == {"type"}:
        outer["type"] = [inner["type"], "null"]
        return outer
    outer["anyOf"] = [inner, {"type": "null"}]
    return outer


def _completion_chunk_schema(spec: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = copy.deepcopy(spec["components"]["schemas"]["CreateCompletionResponse"])
    choice = schema["properties"]["choices"]["items"]
    choice["properties"]["finish_reason"] = {"anyOf": [choice["properties"]["finish_reason"], {"type": "null"}]}
    schema["properties"]["usage"] = {"anyOf": [schema["properties"]["usage"], {"type": "null"}]}
    return schema


@cache
def spec() -> dict[str, Any]:
    """OpenAI's OpenAPI document, with `nullable` rewritten and the stream-chunk component added."""
    if not SPEC_PATH.is_file():
        raise FileNotFoundError(f"OpenAI's OpenAPI document is missing: {SPEC_PATH}")
    document: dict[str, Any] = rewrite_nullable(json.loads(SPEC_PATH.read_text()))
    document["components"]["schemas"][COMPLETION_CHUNK] = _completion_chunk_schema(document)
    return document


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(SPEC_URI, resource)
    return registry


@cache
def validator(component_name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator for `#/components/schemas/<component_name>`."""
    if component_name not in spec()["components"]["schemas"]:
        raise KeyError(f"no component schema named {component_name!r} in {SPEC_PATH}")
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/{component_name}"}
    return Draft202012Validator(schema, registry=_registry())


def validate(component_name: str, instance: Any) -> None:
    """Raise `jsonschema.ValidationError` (the most relevant one) unless `instance` conforms."""
    errors = sorted(validator(component_name).iter_errors(instance), key=lambda e: e.path)
    if errors:
        from jsonschema.exceptions import best_match

        error = best_match(errors)
        assert error is not None
        error.message = f"{component_name}: {error.message} (at {list(error.absolute_path)})"
        raise error
