"""Property-based fuzzing of every route in Hearth's own OpenAPI document, with schemathesis.

Runs against the separate `small_context_server` (context capped at 128 tokens) so that every
generation the fuzzer triggers is short. Every response must be < 500 and conform to the schema
Hearth publishes; streamed answers must be well-framed SSE whose chunks conform to OpenAI's
stream schemas.

Checks: not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance and negative_data_rejection (schema-violating bodies must be refused).
Not positive_data_acceptance: by design Hearth answers schema-valid requests with 4xx when they ask
for what it refuses (top_logprobs, unsupported JSON schemas, suffix without FIM tokens,
best_of != n, logit_bias: 400) or exceed the context (400 context_length_exceeded).

The schema is built at import from the app itself (`create_app(...).openapi_schema`, which loads
no model) and used with `@schema.parametrize()`: schemathesis' lazy `from_fixture` loader does not
work with this pytest (it sets `request.node._nodeid`, which pytest 9.2 nodes no longer have).
`test_openapi_document_served` checks that GET /openapi.json serves this same document.
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Iterator
from typing import Any, TypeAlias

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.errors import InvalidSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import DEFAULT_MODEL, HearthServer, parse_sse
from tests.openai_schema import COMPLETION_CHUNK, validate

OPENAPI_PATH = "/openapi.json"
EXAMPLES_PER_OPERATION = 60
# Generated requests that name the served model really generate; keep their fan-out small.
MAX_CHOICES = 2
MAX_NEW_TOKENS = 16

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# What `schema.parametrize()` hands the fuzz test: a case of one of the document's operations.
OpenApiCase: TypeAlias = schemathesis.Case[schemathesis.APIOperation[Any, Any, Any, Any]]


def hearth_document() -> dict[str, Any]:
    """Hearth's OpenAPI document as the app generates it (building the app loads no model).

    The fuzz tests are parametrized at collection time, before any server runs, so they take the
    document from the app itself; `test_openapi_document_served` checks that GET /openapi.json
    serves exactly this document."""
    from server.app import create_app
    from server.settings import Settings

    with warnings.catch_warnings():  # Litestar's deprecation notes about the app's handlers
        warnings.simplefilter("ignore")
        document: dict[str, Any] = create_app(Settings()).openapi_schema.to_schema()
    plain: dict[str, Any] = json.loads(json.dumps(document))
    return plain


DOCUMENT = hearth_document()
# /v1/keys is fuzzed on the keyed server only (tests/server/security/test_openapi_fuzz_keyed.py):
# here a created key would lock the shared key-less server for every later case.
KEYS_PATHS = r"^/v1/keys"
full_schema = schemathesis.openapi.from_dict(DOCUMENT)
schema = full_schema.exclude(path_regex=KEYS_PATHS)


def test_openapi_document_served(small_context_server: HearthServer) -> None:
    """GET /openapi.json serves Hearth's OpenAPI document, with every public route."""
    response = httpx.get(f"{small_context_server.base_url}{OPENAPI_PATH}", timeout=30)
    assert response.status_code == 200, f"GET {OPENAPI_PATH} -> {response.status_code} {response.text[:500]}"
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {"/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/models/{model}", "/health"} <= set(
        document["paths"]
    )
    assert document == DOCUMENT


def _operation(
    result: Ok[schemathesis.APIOperation[Any, Any, Any, Any]] | Err[InvalidSchema],
) -> schemathesis.APIOperation[Any, Any, Any, Any]:
    """The operation of one `get_all_operations()` result; an operation schemathesis could not
    load raises its error."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


def test_fuzz_covers_every_route() -> None:
    """The fuzzing below (and the keyed fuzzing, for /v1/keys) drives every operation of the document."""
    operations = {(op.method.upper(), op.path) for op in map(_operation, full_schema.get_all_operations())}
    assert operations == {
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("DELETE", "/v1/keys/{name}"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{model}"),
        ("GET", "/health"),
        ("GET", "/v1/hub/models"),
        ("GET", "/v1/hub/models/{name}"),
        ("DELETE", "/v1/hub/models/{name}"),
        ("GET", "/v1/hub/catalog"),
        ("POST", "/v1/hub/pull"),
        ("POST", "/v1/hub/convert"),
        ("POST", "/v1/hub/upload"),
        ("GET", "/v1/hub/jobs"),
        ("GET", "/v1/hub/jobs/{job_id}"),
        ("GET", "/v1/hub/jobs/{job_id}/events"),
        ("POST", "/v1/hub/jobs/{job_id}/cancel"),
        ("POST", "/v1/hub/import"),
        ("POST", "/v1/hub/models/{name}/verify"),
        ("GET", "/v1/system"),
        ("POST", "/tokenize"),
        ("POST", "/v1/tokenize"),
        ("POST", "/detokenize"),
        ("POST", "/v1/detokenize"),
        ("POST", "/v1/embeddings"),
        ("POST", "/rerank"),
        ("POST", "/v1/rerank"),
        ("POST", "/v2/rerank"),
        ("POST", "/v1/responses"),
        ("GET", "/v1/responses/{response_id}"),
        ("DELETE", "/v1/responses/{response_id}"),
        ("GET", "/v1/responses/{response_id}/input_items"),
        ("GET", "/v1/workflows/schema"),
        ("GET", "/v1/workflows"),
        ("POST", "/v1/workflows"),
        ("GET", "/v1/workflows/{name}"),
        ("PUT", "/v1/workflows/{name}"),
        ("DELETE", "/v1/workflows/{name}"),
        ("POST", "/v1/workflows/{name}/runs"),
        ("GET", "/v1/workflows/{name}/runs"),
        ("GET", "/v1/workflows/{name}/runs/{run_id}"),
        ("POST", "/v1/workflows/{name}/runs/{run_id}/cancel"),
        ("GET", "/v1/status"),
        ("POST", "/v1/status/unload"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1/files"),
        ("GET", "/v1/files"),
        ("GET", "/v1/files/{file_id}"),
        ("DELETE", "/v1/files/{file_id}"),
        ("GET", "/v1/files/{file_id}/content"),
        ("POST", "/v1/batches"),
        ("GET", "/v1/batches"),
        ("GET", "/v1/batches/{batch_id}"),
        ("POST", "/v1/batches/{batch_id}/cancel"),
        ("GET", "/v1/tuning"),
        ("GET", "/v1/status/live"),
        ("POST", "/v1/status/unload"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/audit/verify"),
        ("GET", "/v1/services/{name}/tuning"),
        ("PUT", "/v1/services/{name}/tuning"),
    }


def _request_validator(component: str) -> Draft202012Validator:
    """A validator for one of Hearth's own request components, refs resolved in its document."""
    resource = Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource("urn:hearth:openapi", resource)
    return Draft202012Validator({"$ref": f"urn:hearth:openapi#/components/schemas/{component}"}, registry=registry)


# Values the server refuses with 400 as out of range: the published schema must refuse them too,
# or schema-driven clients and fuzzers treat valid-looking requests as valid. (The limits on
# `stop` are settings, max_stop_sequences and max_stop_length, so the document cannot state them.)
OUT_OF_RANGE: list[tuple[str, str, dict[str, Any]]] = [
    ("/v1/chat/completions", "ChatCompletionRequest", {"temperature": -0.5}),
    ("/v1/chat/completions", "ChatCompletionRequest", {"temperature": 2.5}),
    ("/v1/chat/completions", "ChatCompletionRequest", {"top_p": -0.1}),
    ("/v1/chat/completions", "ChatCompletionRequest", {"top_logprobs": -1}),
    ("/v1/chat/completions", "ChatCompletionRequest", {"n": 0}),
    ("/v1/chat/completions", "ChatCompletionRequest", {"max_tokens": 0}),
    ("/v1/completions", "CompletionRequest", {"temperature": -1.0}),
    ("/v1/completions", "CompletionRequest", {"top_p": -0.5}),
    ("/v1/completions", "CompletionRequest", {"max_tokens": -1}),
    ("/v1/completions", "CompletionRequest", {"logprobs": -1}),
]


def test_published_constraints_match_server(small_context_server: HearthServer) -> None:
    """What the server refuses as out of range, Hearth's OpenAPI document declares invalid too."""
    mismatches: list[str] = []
    for route, component, override in OUT_OF_RANGE:
        body: dict[str, Any] = {"model": DEFAULT_MODEL, "max_tokens": 2}
        body.update({"messages": [{"role": "user", "content": "Hi"}]} if "chat" in route else {"prompt": "Hi"})
        body.update(override)
        response = httpx.post(f"{small_context_server.base_url}{route}", json=body, timeout=30)
        assert response.status_code == 400, f"{route} {override}: {response.status_code} {response.text[:300]}"
        assert response.json()["error"]["param"] == next(iter(override))
        if not list(_request_validator(component).iter_errors(body)):
            mismatches.append(f"{component} accepts {override}, which POST {route} refuses with 400")
    assert not mismatches, "Hearth's OpenAPI document is looser than the server:\n" + "\n".join(mismatches)


def test_documented_errors_are_openai_shaped() -> None:
    """Every 4xx/5xx response the document declares has OpenAI's error body (ErrorResponse);
    /health's 503 is the exception: it answers its own Health body, and the Anthropic dialect
    (/v1/messages) answers Anthropic's."""
    wrong: list[str] = []
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            for status, spec in operation.get("responses", {}).items():
                if not status.startswith(("4", "5")) or (path, status) == ("/health", "503"):
                    continue
                shape = "AnthropicErrorResponse" if path.startswith("/v1/messages") else "ErrorResponse"
                for media, content in spec.get("content", {}).items():
                    if content.get("schema") != {"$ref": f"#/components/schemas/{shape}"}:
                        wrong.append(f"{method.upper()} {path} {status} {media}: {json.dumps(content['schema'])[:200]}")
    assert not wrong, "\n".join(wrong)


@pytest.fixture(scope="session")
def case_counter() -> Iterator[int]:
    """Counts generated cases, to steer every other request body to the served model."""
    return itertools.count()


def steer(case: OpenApiCase, counter: Iterator[int]) -> None:
    """Make every other generated body name the served model (random names only ever reach the
    404 path), and keep what such a request generates small: at most MAX_CHOICES choices, and
    MAX_NEW_TOKENS tokens where the body sets no limit (a chat answer is otherwise bounded only by
    the context; `test_context_length_flag` covers that path)."""
    body = case.body
    if not isinstance(body, dict) or "model" not in body:
        return
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return  # a schema-violating body must stay as generated (negative_data_rejection)
    if next(counter) % 2:
        return
    body["model"] = DEFAULT_MODEL
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > MAX_CHOICES:
        body["n"] = MAX_CHOICES
    if "messages" in body and body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        body["max_tokens"] = MAX_NEW_TOKENS
    max_tokens = body.get("max_tokens")
    if case.path == "/v1/messages" and isinstance(max_tokens, int) and max_tokens > MAX_NEW_TOKENS:
        body["max_tokens"] = MAX_NEW_TOKENS  # Anthropic's max_tokens is required: bound what is sent


def check_stream(case: OpenApiCase, response: schemathesis.Response) -> None:
    """A 200 text/event-stream answer: OpenAI SSE framing, every chunk valid for its endpoint."""
    if case.path == "/v1/responses":
        # The Responses API frames typed events as `event: <type>` + `data: <json>`, without [DONE].
        for block in filter(None, response.text.split("\n\n")):
            event_line, data_line = block.split("\n")
            event = json.loads(data_line.removeprefix("data: "))
            assert event_line == f"event: {event['type']}"
            validate("ResponseStreamEvent", event)
        return
    if case.path == "/v1/messages":
        # Anthropic's events: `event: <type>` + `data: <json>`, message_start first, message_stop or
        # an error event last (tests/server/dialects/anthropic checks each event's fields).
        kinds = []
        for block in filter(None, response.text.split("\n\n")):
            event_line, data_line = block.split("\n")
            event = json.loads(data_line.removeprefix("data: "))
            assert event_line == f"event: {event['type']}"
            kinds.append(event["type"])
        assert kinds[0] == "message_start" and kinds[-1] in ("message_stop", "error"), kinds
        return
    chunks = parse_sse(response.text)
    schema = "CreateChatCompletionStreamResponse" if "chat" in case.path else COMPLETION_CHUNK
    for chunk in chunks:
        if "error" in chunk:  # an error after the stream started is sent in OpenAI's error shape
            validate("ErrorResponse", chunk)
        else:
            validate(schema, chunk)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_fuzz_openapi(case: OpenApiCase, small_context_server: HearthServer, case_counter: Iterator[int]) -> None:
    """Every generated request (valid and invalid) is answered < 500 and as the schema says."""
    steer(case, case_counter)
    response = case.call(base_url=small_context_server.base_url, timeout=60)
    assert response.status_code < 500, (
        f"{case.method} {case.path} {case.body!r} -> {response.status_code} {response.text[:300]}"
    )
    content_type = (response.headers.get("content-type") or [""])[0]
    if response.status_code == 200 and isinstance(case.body, dict) and case.body.get("stream") is True:
        # schemathesis cannot parse server-sent events: check their framing and chunks here.
        check_stream(case, response)
        assert content_type.startswith("text/event-stream"), f"a streamed answer served as {content_type!r}"
        return
    case.validate_response(response, checks=CHECKS)
