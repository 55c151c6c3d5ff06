"""Schemathesis over Hearth's OpenAPI document against the keyed server: with an admin key every
operation (including /v1/keys) answers < 500 and as documented; with no key every protected
operation answers 401 and nothing answers 5xx.

Bodies are not steered to the served model here: generation under fuzzing is covered by
tests/server/http/test_openapi_fuzz.py, and this file is about what keys change (and stays fast)."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

from server.security.auth import required_scope
from tests.server.http.test_openapi_fuzz import CHECKS, OpenApiCase, check_stream, full_schema
from tests.server.security.conftest import KeyedServer


def fuzz_settings(examples: int) -> settings:
    """Deterministic, generation only, as the unkeyed fuzzing runs."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


@full_schema.parametrize()
@fuzz_settings(15)
def test_fuzz_with_admin_key(case: OpenApiCase, keyed: KeyedServer) -> None:
    headers = {"authorization": f"Bearer {keyed.admin}"}
    response = case.call(base_url=keyed.server.base_url, headers=headers, timeout=60)
    assert response.status_code < 500, f"{case.method} {case.path} {case.body!r} -> {response.status_code}"
    assert response.status_code not in (401, 403), response.text[:300]
    if response.status_code == 200 and isinstance(case.body, dict) and case.body.get("stream") is True:
        check_stream(case, response)
        return
    case.validate_response(response, checks=CHECKS)


@full_schema.parametrize()
@fuzz_settings(3)
def test_fuzz_without_key(case: OpenApiCase, keyed: KeyedServer) -> None:
    response = case.call(base_url=keyed.server.base_url, timeout=60)
    assert response.status_code < 500
    if required_scope(case.method.upper(), case.formatted_path) != "public":
        # 405: a method the route does not have is refused by the router, before any handler.
        assert response.status_code in (401, 405), f"{case.method} {case.formatted_path} -> {response.status_code}"
