"""The scope table and the per-key limits, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.security.auth import Authenticator, presented_key, required_scope
from server.security.keys import ApiKey, KeyStore
from server.security.limits import RateLimiter


@pytest.mark.parametrize(
    ("method", "path", "need"),
    [
        ("GET", "/health", "public"),
        ("GET", "/openapi.json", "public"),
        ("GET", "/docs", "public"),
        ("GET", "/docs/swagger", "public"),
        ("OPTIONS", "/v1/chat/completions", "public"),
        ("POST", "/health", "admin"),
        ("GET", "/metrics", "inference"),
        ("POST", "/v1/chat/completions", "inference"),
        ("POST", "/v1/completions", "inference"),
        ("POST", "/v1/embeddings", "inference"),
        ("POST", "/v1/responses", "inference"),
        ("POST", "/v1/messages", "inference"),
        ("POST", "/v1/messages/count_tokens", "inference"),
        ("DELETE", "/v1/messages", "admin"),
        ("GET", "/v1/models", "inference"),
        ("GET", "/v1/models/org/name", "inference"),
        ("DELETE", "/v1/models/x", "admin"),
        ("GET", "/v1/hub/models", "admin"),
        ("POST", "/v1/hub/pull", "admin"),
        # Naming a path on the server's machine, cancelling and verifying are hub changes too.
        ("POST", "/v1/hub/import", "admin"),
        ("POST", "/v1/hub/jobs/hubjob-1/cancel", "admin"),
        ("POST", "/v1/hub/models/x/verify", "admin"),
        ("POST", "/v1/keys", "admin"),
        ("PUT", "/v1/settings", "admin"),
        ("GET", "/v1/workflows", "inference"),
        ("POST", "/v1/workflows", "admin"),
        ("PUT", "/v1/workflows/summarize", "admin"),
        ("DELETE", "/v1/workflows/summarize", "admin"),
        ("POST", "/v1/workflows/summarize/runs", "inference"),
        ("GET", "/v1/workflows/summarize/runs/42", "inference"),
        # The console's page and files are public; what it calls is not.
        ("GET", "/", "public"),
        ("HEAD", "/", "public"),
        ("GET", "/console/assets/index-1234.js", "public"),
        ("GET", "/v1/status/live", "inference"),
        ("POST", "/v1/status/unload", "admin"),
        ("GET", "/v1/audit", "admin"),
        ("GET", "/v1/audit/verify", "admin"),
        ("GET", "/v1/services/x/tuning", "admin"),
        ("PUT", "/v1/services/x/tuning", "admin"),
        # Anything nobody has put in the table yet needs an admin key.
        ("GET", "/v1/something-new", "admin"),
        ("POST", "/console/x", "admin"),
        ("GET", "/v1/chat/completionsX", "admin"),
    ],
)
def test_required_scope(method: str, path: str, need: str) -> None:
    assert required_scope(method, path) == need


def test_presented_key() -> None:
    assert presented_key({b"authorization": b"Bearer abc"}) == "abc"
    assert presented_key({b"authorization": b"bearer  abc "}) == "abc"
    assert presented_key({b"x-api-key": b"xyz"}) == "xyz"
    assert presented_key({b"authorization": b"Basic abc"}) is None
    assert presented_key({b"authorization": b"Bearer "}) is None
    assert presented_key({}) is None


def test_request_limit_refills() -> None:
    limiter = RateLimiter()
    key = ApiKey(name="k", scope="inference", sha256="", prefix="", created=0, requests_per_minute=2)
    assert limiter.admit(key) is None
    assert limiter.admit(key) is None
    wait = limiter.admit(key)
    assert wait is not None and 1 <= wait <= 30


def test_token_limit_refuses_after_budget() -> None:
    limiter = RateLimiter()
    key = ApiKey(name="t", scope="inference", sha256="", prefix="", created=0, tokens_per_minute=100)
    assert limiter.admit(key) is None
    limiter.charge_tokens(key, 150)  # may overdraw: the call had already run
    wait = limiter.admit(key)
    assert wait is not None and wait >= 30  # 50 tokens in debt at 100/min: at least 30 s


def test_metrics_public_opens_metrics_alone(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    store.create("prometheus", "inference")
    closed = Authenticator(store)
    opened = Authenticator(store, metrics_public=True)
    assert closed.decide("GET", "/metrics", {}, "10.0.0.5").denied is not None
    assert opened.decide("GET", "/metrics", {}, "10.0.0.5").denied is None
    assert opened.decide("HEAD", "/metrics", {}, "10.0.0.5").denied is None
    for method, path in (("POST", "/metrics"), ("GET", "/v1/status"), ("POST", "/v1/chat/completions")):
        assert opened.decide(method, path, {}, "10.0.0.5").denied is not None, (method, path)
