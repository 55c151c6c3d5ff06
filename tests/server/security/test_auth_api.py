"""Every authentication path against a real keyed server, with the official OpenAI client: no key,
wrong key, expired, revoked, wrong scope, per-key limits, loopback without keys, refusing to bind
publicly without keys; CORS preflights; the audit records the calls leave."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from server.security.audit import parse, read_records, verify
from tests.conftest import DEFAULT_MODEL, HearthServer, free_port
from tests.openai_schema import validate
from tests.server.security.conftest import ALLOWED_ORIGIN, KeyedServer

HEARTH = Path(sys.executable).with_name("hearth")


def _client(server: HearthServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api_url, api_key=key, max_retries=0, timeout=60)


def _chat(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Say hi"}], max_tokens=4, temperature=0
    )


def _records(home: Path, until: Callable[[list[dict[str, Any]]], bool] | None = None) -> list[dict[str, Any]]:
    """The audit records, waiting (the writer is asynchronous) until `until` holds."""
    deadline = time.monotonic() + 10
    while True:
        records = [parse(line) for _, _, line in read_records(home / "audit")]
        if until is None or until(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def test_no_key_is_401_invalid_api_key(keyed: KeyedServer) -> None:
    # The OpenAI client always sends a key, so a keyless request is a raw one.
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    response = httpx.post(f"{keyed.server.api_url}/chat/completions", json=body, timeout=30)
    assert response.status_code == 401
    body = response.json()
    validate("ErrorResponse", body)
    assert body["error"]["code"] == "invalid_api_key" and body["error"]["type"] == "authentication_error"
    assert response.headers["www-authenticate"].startswith("Bearer")
    # Every protected route, not only chat: the middleware covers the whole app.
    for method, path in [("GET", "/v1/models"), ("POST", "/v1/completions"), ("GET", "/v1/keys")]:
        raw = httpx.request(method, keyed.server.base_url + path, json={}, timeout=30)
        assert raw.status_code == 401, (method, path, raw.text)


def test_wrong_key_is_401(keyed: KeyedServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        _chat(_client(keyed.server, keyed.inference[:-2] + "xx"))
    error = caught.value.response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert keyed.inference[10:-4] not in error["message"]  # the message does not echo the key


def test_expired_key_is_401(keyed: KeyedServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        _chat(_client(keyed.server, keyed.expired))
    assert "expired" in caught.value.response.json()["error"]["message"]


def test_valid_keys_by_bearer_and_x_api_key(keyed: KeyedServer) -> None:
    completion = _chat(_client(keyed.server, keyed.inference))
    assert completion.choices[0].message.content
    raw = httpx.get(f"{keyed.server.api_url}/models", headers={"x-api-key": keyed.inference}, timeout=30)
    assert raw.status_code == 200 and raw.headers["x-request-id"]
    # Public: probes and the API description need no key.
    assert httpx.get(f"{keyed.server.base_url}/health", timeout=30).status_code == 200
    assert httpx.get(f"{keyed.server.base_url}/openapi.json", timeout=30).status_code == 200


def test_wrong_scope_is_403(keyed: KeyedServer) -> None:
    raw = httpx.get(f"{keyed.server.api_url}/keys", headers={"authorization": f"Bearer {keyed.inference}"}, timeout=30)
    assert raw.status_code == 403, raw.text
    validate("ErrorResponse", raw.json())
    assert raw.json()["error"]["type"] == "permission_error"
    admin = httpx.get(f"{keyed.server.api_url}/keys", headers={"authorization": f"Bearer {keyed.admin}"}, timeout=30)
    assert admin.status_code == 200
    listed = admin.json()["data"]
    assert {k["name"] for k in listed} >= {"app", "old", "limited"}
    assert keyed.inference not in admin.text and keyed.admin not in admin.text


def test_revoked_key_is_401_at_once(keyed: KeyedServer) -> None:
    """A key revoked with the CLI while the server runs is refused on its next request."""
    home = ["--home", str(keyed.server.home)]
    created = subprocess.run(
        [HEARTH, "keys", *home, "create", "--name", "temp", "--scope", "inference"], capture_output=True, text=True
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert _client(keyed.server, key).models.list().data
    revoked = subprocess.run([HEARTH, "keys", *home, "revoke", "temp"], capture_output=True, text=True)
    assert revoked.returncode == 0, revoked.stderr
    with pytest.raises(openai.AuthenticationError):
        _client(keyed.server, key).models.list()


def test_keys_api_creates_and_revokes(keyed: KeyedServer) -> None:
    admin = {"authorization": f"Bearer {keyed.admin}"}
    url = f"{keyed.server.api_url}/keys"
    created = httpx.post(url, json={"name": "via-api", "scope": "inference", "expires": "1d"}, headers=admin)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert _client(keyed.server, key).models.list().data
    duplicate = httpx.post(url, json={"name": "via-api", "scope": "inference"}, headers=admin)
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "key_exists"
    bad = httpx.post(url, json={"name": "../x", "scope": "inference"}, headers=admin)
    assert bad.status_code == 400
    assert httpx.delete(f"{url}/via-api", headers=admin).status_code == 200
    assert httpx.delete(f"{url}/via-api", headers=admin).status_code == 404
    with pytest.raises(openai.AuthenticationError):
        _client(keyed.server, key).models.list()


def test_request_limit_is_429_with_retry_after(keyed: KeyedServer) -> None:
    client = _client(keyed.server, keyed.limited)
    for _ in range(3):
        client.models.list()
    with pytest.raises(openai.RateLimitError) as caught:
        client.models.list()
    response = caught.value.response
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    validate("ErrorResponse", response.json())
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert _client(keyed.server, keyed.inference).models.list().data  # other keys are not limited


def test_cors_preflight_and_allowlist(keyed: KeyedServer) -> None:
    url = f"{keyed.server.api_url}/chat/completions"
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    allowed = httpx.options(url, headers={"origin": ALLOWED_ORIGIN, **preflight}, timeout=30)
    assert allowed.status_code in (200, 204), allowed.text
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    other = httpx.options(url, headers={"origin": "https://evil.example", **preflight}, timeout=30)
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"
    simple = httpx.get(
        f"{keyed.server.api_url}/models",
        headers={"origin": ALLOWED_ORIGIN, "authorization": f"Bearer {keyed.inference}"},
        timeout=30,
    )
    assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_loopback_needs_no_key_while_none_exist(hearth_server: HearthServer) -> None:
    """The shared server has no keys: a loopback client is served without one."""
    assert not (hearth_server.home / "keys.json").exists()
    assert httpx.get(f"{hearth_server.api_url}/models", timeout=30).status_code == 200


def test_cors_is_off_by_default(hearth_server: HearthServer) -> None:
    preflight = {"origin": ALLOWED_ORIGIN, "access-control-request-method": "POST"}
    response = httpx.options(f"{hearth_server.api_url}/chat/completions", headers=preflight, timeout=30)
    assert "access-control-allow-origin" not in response.headers


def test_refuses_to_bind_publicly_without_keys(tmp_path: Path) -> None:
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    result = subprocess.run(
        [HEARTH, "serve", "--home", str(tmp_path), "--host", "0.0.0.0", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr and "--insecure" in result.stderr


def test_audit_records_calls_and_refusals(keyed: KeyedServer) -> None:
    completion = _chat(_client(keyed.server, keyed.inference))
    with pytest.raises(openai.AuthenticationError):
        _client(keyed.server, "hearth-wrong").models.list()

    def done(records: list[dict[str, Any]]) -> bool:
        return any(r.get("event") == "request" and r.get("completion_tokens") for r in records) and any(
            r.get("event") == "refused" for r in records
        )

    records = _records(keyed.server.home, done)
    calls = [r for r in records if r["event"] == "request" and r.get("endpoint") == "/v1/chat/completions"]
    call = calls[-1]
    assert call["key"] == "app" and call["model"] == DEFAULT_MODEL and call["device"] == "CPU"
    assert call["status"] == 200 and call["client"] == "127.0.0.1" and call["latency_ms"] > 0
    assert completion.usage is not None
    assert any(
        r["prompt_tokens"] == completion.usage.prompt_tokens
        and r["completion_tokens"] == completion.usage.completion_tokens
        for r in calls
    )
    assert "request_sha256" not in call and "request_text" not in call  # text is off by default
    refused = [r for r in records if r["event"] == "refused"]
    assert refused and all(r["status"] in (401, 403, 429) for r in refused)
    text = (keyed.server.home / "audit" / "audit.jsonl").read_text()
    for secret in (keyed.admin, keyed.inference, keyed.limited, keyed.expired):
        assert secret not in text
    assert verify(keyed.server.home / "audit")[1] is None


def test_a_runner_that_dies_is_recorded_and_replaced(keyed: KeyedServer) -> None:
    """A worker killed by SIGSYS (what seccomp does to a runner that opens a socket) is recorded
    as a sandbox violation, and the next request gets a fresh worker."""
    workers = [pid for pid in keyed.server.process_tree() if pid != keyed.server.process.pid]
    assert workers, "no engine worker found"
    os.kill(workers[0], signal.SIGSYS)

    def recorded(records: list[dict[str, Any]]) -> bool:
        return any(r.get("event") == "runner_exit" and r.get("pid") == workers[0] for r in records)

    exits = [r for r in _records(keyed.server.home, recorded) if r["event"] == "runner_exit"]
    assert exits, "the worker's death is not in the audit log"
    assert exits[-1]["signal"] == "SIGSYS" and exits[-1]["sandbox_violation"] is True
    assert exits[-1]["model"] == DEFAULT_MODEL
    assert _chat(_client(keyed.server, keyed.inference)).choices[0].message.content is not None
    assert json.loads(httpx.get(f"{keyed.server.base_url}/health", timeout=30).text)["status"] == "ok"
