"""End-to-end tests of the API the console adds: GET /v1/status/live (with the recent errors),
POST /v1/status/unload, GET /v1/audit and GET /v1/audit/verify, and the console's own page (GET and
HEAD) and files."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import DEFAULT_MODEL, HearthServer


def _live(server: HearthServer) -> dict[str, Any]:
    response = httpx.get(f"{server.api_url}/status/live", timeout=30)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _counters(snapshot: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in snapshot["counters"] if c["id"] == DEFAULT_MODEL)
    return found


def test_live_counters_grow_with_a_request(hearth_server: HearthServer, openai_client: openai.OpenAI) -> None:
    before = _live(hearth_server)
    assert before["object"] == "status.live"
    assert before["system_memory_total_bytes"] >= before["system_memory_used_bytes"] > 0
    assert DEFAULT_MODEL in [m["id"] for m in before["status"]["models"]]
    answer = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=8
    )
    assert answer.usage is not None
    after = _live(hearth_server)
    assert after["time"] > before["time"]
    old, new = _counters(before), _counters(after)
    assert new["completion_tokens"] - old["completion_tokens"] == answer.usage.completion_tokens
    assert new["prompt_tokens"] - old["prompt_tokens"] == answer.usage.prompt_tokens
    assert new["ttft_count"] == old["ttft_count"] + 1
    assert new["ttft_seconds_sum"] > old["ttft_seconds_sum"]
    assert new["requests"] == old["requests"] + 1
    assert new["errors"] == old["errors"]


def test_live_is_in_the_openapi_document(hearth_server: HearthServer) -> None:
    paths = httpx.get(f"{hearth_server.base_url}/openapi.json", timeout=30).json()["paths"]
    assert "get" in paths["/v1/status/live"]
    assert "post" in paths["/v1/status/unload"]
    assert "get" in paths["/v1/audit"]
    assert "get" in paths["/v1/audit/verify"]


def test_unload_returns_the_memory_and_the_model_loads_again(
    hearth_server: HearthServer, openai_client: openai.OpenAI
) -> None:
    openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    response = httpx.post(f"{hearth_server.api_url}/status/unload", json={"model": DEFAULT_MODEL}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == DEFAULT_MODEL
    assert body["state"] == "unloaded"
    assert body["pid"] is None
    assert body["memory_bytes"] == 0
    # On its next request it loads again.
    again = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert again.choices[0].message.content is not None
    status = httpx.get(f"{hearth_server.api_url}/status", timeout=30).json()
    (model,) = [m for m in status["models"] if m["id"] == DEFAULT_MODEL]
    assert model["state"] == "loaded"


def test_unload_of_a_busy_model_waits_for_its_requests(
    hearth_server: HearthServer, openai_client: openai.OpenAI
) -> None:
    """As `ollama stop`: the answer being generated finishes, then the model unloads (once: its
    keep-alive is unchanged for the next load)."""
    stream = openai_client.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse."}],
        max_tokens=40,
        stream=True,
    )
    with stream:
        next(iter(stream))
        response = httpx.post(f"{hearth_server.api_url}/status/unload", json={"model": DEFAULT_MODEL}, timeout=30)
        assert response.status_code == 200 and response.json()["state"] == "loaded"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text
    deadline = time.monotonic() + 30
    while _state(hearth_server) != "unloaded":
        assert time.monotonic() < deadline, "the model did not unload once idle"
        time.sleep(0.2)
    openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    time.sleep(1)
    assert _state(hearth_server) == "loaded"


def _state(server: HearthServer) -> str:
    status = httpx.get(f"{server.api_url}/status", timeout=30).json()
    return str(next(m for m in status["models"] if m["id"] == DEFAULT_MODEL)["state"])


def test_unload_rejects_bad_input(hearth_server: HearthServer) -> None:
    unknown = httpx.post(f"{hearth_server.api_url}/status/unload", json={"model": "no-such-model"}, timeout=30)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    for body in ({}, {"model": 3}, {"model": DEFAULT_MODEL, "extra": 1}):
        bad = httpx.post(f"{hearth_server.api_url}/status/unload", json=body, timeout=30)
        assert bad.status_code == 400, (body, bad.text)
        assert "error" in bad.json()


def test_audit_search_and_verify(hearth_server: HearthServer) -> None:
    httpx.get(f"{hearth_server.api_url}/status", timeout=30)
    verified = httpx.get(f"{hearth_server.api_url}/audit/verify", timeout=30).json()
    assert verified["ok"] is True
    assert verified["records"] > 0
    assert verified["broken"] is None
    found = httpx.get(f"{hearth_server.api_url}/audit", params={"event": "request", "limit": 5}, timeout=30).json()
    assert 0 < len(found["data"]) <= 5
    assert all(r["event"] == "request" for r in found["data"])
    seqs = [r["seq"] for r in found["data"]]
    assert seqs == sorted(seqs, reverse=True)
    assert "hash" not in found["data"][0]
    none = httpx.get(f"{hearth_server.api_url}/audit", params={"model": "never-asked-for"}, timeout=30).json()
    assert none["data"] == []
    bad = httpx.get(f"{hearth_server.api_url}/audit", params={"since": "yesterday"}, timeout=30)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "since"
    assert httpx.get(f"{hearth_server.api_url}/audit", params={"limit": 0}, timeout=30).status_code == 400


def test_console_page_and_files(hearth_server: HearthServer) -> None:
    page = httpx.get(f"{hearth_server.base_url}/", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<div id="root">' in page.text
    docs = httpx.get(f"{hearth_server.base_url}/docs", timeout=30).text
    assert "/console/vendor/swagger-ui-bundle.js" in docs
    assert "cdn." not in docs
    script = httpx.get(f"{hearth_server.base_url}/console/vendor/swagger-ui-bundle.js", timeout=30)
    assert script.status_code == 200
    assert script.headers["content-encoding"] == "gzip"
    # A client that does not take gzip gets the plain file.
    plain = httpx.get(
        f"{hearth_server.base_url}/console/favicon.svg", headers={"accept-encoding": "identity"}, timeout=30
    )
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    assert plain.text.startswith("<svg")
    for missing in ("/console/nope.js", "/console/../server/app.py", "/console/%2e%2e/bundle.json"):
        assert httpx.get(f"{hearth_server.base_url}{missing}", timeout=30).status_code == 404
    # HEAD answers like GET, without the body.
    head = httpx.head(f"{hearth_server.base_url}/", timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == page.headers["content-type"]
    assert head.headers["content-length"] == page.headers["content-length"]


def test_live_lists_recent_errors_without_request_content(
    hearth_server: HearthServer, openai_client: openai.OpenAI
) -> None:
    secret_prompt = "my secret prompt 7f3a"
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(
            model="no-such-model-7f3a", messages=[{"role": "user", "content": secret_prompt}], max_tokens=4
        )
    with pytest.raises(openai.BadRequestError):
        openai_client.chat.completions.create(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": secret_prompt}], max_tokens=-3
        )
    errors = _live(hearth_server)["recent_errors"]
    bad, missing = errors[0], errors[1]
    assert missing["status"] == 404 and missing["model"] == "no-such-model-7f3a"
    assert missing["path"] == "/v1/chat/completions" and missing["method"] == "POST"
    assert "no-such-model-7f3a" in missing["message"] and missing["request_id"]
    assert bad["status"] == 400 and "max_tokens" in bad["message"]
    assert bad["time"] >= missing["time"] > time.time() - 120
    assert secret_prompt not in str(errors)
    # The server's start was probed with GET /health (503 while loading): probes are not errors.
    assert all(e["path"] != "/health" for e in errors)
    # The ring is bounded (the setting's default, 50): the oldest go first.
    for _ in range(55):
        httpx.get(f"{hearth_server.api_url}/models/no-such-model-ring", timeout=30)
    errors = _live(hearth_server)["recent_errors"]
    assert len(errors) == 50 and all(e["path"] == "/v1/models/no-such-model-ring" for e in errors)


def test_tuning_read_apply_and_refusals(hearth_server: HearthServer, openai_client: openai.OpenAI) -> None:
    url = f"{hearth_server.api_url}/services/{DEFAULT_MODEL}/tuning"
    current = httpx.get(url, timeout=30).json()
    assert current["object"] == "service.tuning"
    tuning = current["tuning"]
    assert tuning["max_num_seqs"] >= 1
    assert tuning["kv_cache_precision"] in ("u8", "f16", "f32")
    changed = {**tuning, "max_num_seqs": 4}
    applied = httpx.put(url, json=changed, timeout=120)
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert body["tuning"]["max_num_seqs"] == 4
    assert body["status"]["state"] == "loaded"
    assert body["status"]["slots"] == 4
    answer = openai_client.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert answer.choices[0].message.content is not None
    # Bad values are a 400 in the OpenAI error shape; nothing is reloaded.
    for bad in ({**tuning, "max_num_seqs": 0}, {**tuning, "kv_cache_precision": "q3"}, {**tuning, "extra": 1}, {}):
        refused = httpx.put(url, json=bad, timeout=30)
        assert refused.status_code == 400, (bad, refused.text)
        assert "error" in refused.json()
    missing = httpx.get(f"{hearth_server.api_url}/services/no-such-model/tuning", timeout=30)
    assert missing.status_code == 404
    restored = httpx.put(url, json=tuning, timeout=120)
    assert restored.status_code == 200
    assert restored.json()["tuning"] == tuning
