"""The scheduler end to end with the real default model, served as two services of one file.

`chat` (priority 10, max_tokens 8, temperature 0) and `batch` (context 512, one request at a
time, one waiting) both load on first use. The tests run in file order on one server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import HEARTH, HearthServer, run_hearth
from tests.openai_schema import validate

SERVICES = """\
services:
  - name: chat
    max_tokens: 8
    temperature: 0
    priority: 10
  - name: batch
    context: 512
    max_concurrency: 1
"""
LONG = {"max_tokens": 200, "ignore_eos": True, "temperature": 0}


@pytest.fixture(scope="module")
def services_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """A server with the two services above, a queue of one, and a 10-minute keep-alive."""
    home = tmp_path_factory.mktemp("hearth-services")
    (home / "services.yaml").write_text(SERVICES)
    args = ("--services", str(home / "services.yaml"), "--max-queue", "1", "--kv-cache-gb", "1")
    with run_hearth(home, *args, env={"HEARTH_KEEP_ALIVE_S": "600"}) as server:
        yield server


@pytest.fixture(scope="module")
def http(services_server: HearthServer) -> Iterator[httpx.Client]:
    """Raw HTTP to the services server."""
    with httpx.Client(base_url=services_server.base_url, timeout=180) as client:
        yield client


@pytest.fixture(scope="module")
def client(services_server: HearthServer) -> Iterator[openai.OpenAI]:
    """The official client on the services server."""
    with openai.OpenAI(base_url=services_server.api_url, api_key="unused", max_retries=0, timeout=180) as c:
        yield c


def status(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """GET /v1/status, by model id."""
    body = http.get("/v1/status").json()
    assert body["object"] == "status" and body["memory_budget_bytes"] > 0
    return {m["id"]: m for m in body["models"]}


def chat(http: httpx.Client, model: str, **extra: Any) -> httpx.Response:
    """One non-streamed chat completion."""
    timeout = extra.pop("timeout", 180)
    body = {"model": model, "messages": [{"role": "user", "content": "Count to ten."}], **extra}
    return http.post("/v1/chat/completions", json=body, timeout=timeout)


def test_services_are_listed_and_load_on_first_use(client: openai.OpenAI, http: httpx.Client) -> None:
    raw = client.models.with_raw_response.list().http_response.json()
    validate("ListModelsResponse", raw)
    assert {m["id"]: m["context_length"] for m in raw["data"]} == {"chat": 8192, "batch": 512}
    before = status(http)
    assert {m["state"] for m in before.values()} == {"unloaded"} and before["chat"]["pid"] is None
    answer = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Hi"}], extra_headers={"X-Request-Id": "first-load"}
    )
    # The service's max_tokens (8) applies when the request has none.
    assert answer.usage is not None and answer.usage.completion_tokens <= 8
    after = status(http)
    assert after["chat"]["state"] == "loaded" and after["chat"]["loads"] == 1
    assert psutil.pid_exists(after["chat"]["pid"]) and after["chat"]["memory_measured"]
    assert after["chat"]["memory_bytes"] > 50 * 2**20 and after["batch"]["state"] == "unloaded"


def test_two_services_serve_at_once_with_their_own_defaults(http: httpx.Client) -> None:
    results: dict[str, httpx.Response] = {}

    def call(model: str, extra: dict[str, Any]) -> None:
        results[model] = chat(http, model, **extra)

    threads = [
        threading.Thread(target=call, args=("chat", {"ignore_eos": True})),
        threading.Thread(target=call, args=("batch", {"max_tokens": 24, "ignore_eos": True})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for model, tokens in (("chat", 8), ("batch", 24)):
        body = results[model].json()
        validate("CreateChatCompletionResponse", body)
        assert body["model"] == model and body["usage"]["completion_tokens"] == tokens
    now = status(http)
    assert now["chat"]["pid"] != now["batch"]["pid"] and {m["state"] for m in now.values()} == {"loaded"}


def test_request_ids_are_returned_and_sane_ones_honoured(http: httpx.Client) -> None:
    mine = http.get("/v1/models", headers={"X-Request-Id": "trace-123"})
    assert mine.headers["x-request-id"] == "trace-123"
    fresh = http.get("/v1/models", headers={"X-Request-Id": "bad id\twith spaces"})
    assert fresh.headers["x-request-id"] != "bad id\twith spaces" and len(fresh.headers["x-request-id"]) == 32
    missing = chat(http, "nope")
    assert missing.status_code == 404 and missing.headers["x-request-id"]
    # No route at all: answered before any route middleware, still with an id (and counted).
    lost = http.get("/v1/nowhere", headers={"X-Request-Id": "lost-123"})
    assert lost.status_code == 404 and lost.headers["x-request-id"] == "lost-123"
    assert len(http.delete("/v1/models").headers["x-request-id"]) == 32  # 405


def test_bad_scheduling_fields_are_400(http: httpx.Client) -> None:
    for extra, param in (({"keep_alive": "soon"}, "keep_alive"), ({"priority": 5000}, "priority")):
        response = chat(http, "chat", **extra)
        assert response.status_code == 400, response.text
        validate("ErrorResponse", response.json())
        assert response.json()["error"]["param"] == param


def _stream(http: httpx.Client, model: str, started: threading.Event, lines: list[str]) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "Tell a story."}], "stream": True, **LONG}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line:
                lines.append(line)
            if len(lines) > 6:
                started.set()
    started.set()


def test_full_queue_is_429_and_a_client_that_leaves_is_dequeued(services_server: HearthServer) -> None:
    with httpx.Client(base_url=services_server.base_url, timeout=60) as http:
        started, lines = threading.Event(), list[str]()
        holder = threading.Thread(target=_stream, args=(http, "batch", started, lines))
        holder.start()
        assert started.wait(180)
        # A second batch request waits (max_concurrency 1); it gives up after 1 s.
        with pytest.raises(httpx.ReadTimeout):
            http.post(
                "/v1/chat/completions",
                json={"model": "batch", "messages": [{"role": "user", "content": "x"}]},
                timeout=httpx.Timeout(60, read=1.0),
            )
        deadline = time.monotonic() + 10
        while status(http)["batch"]["queued"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status(http)["batch"]["queued"] == 0
        waiter = threading.Thread(target=lambda: chat(http, "batch", max_tokens=2, timeout=180))
        waiter.start()
        while status(http)["batch"]["queued"] != 1:
            time.sleep(0.05)
        full = chat(http, "batch")
        assert full.status_code == 429, full.text
        validate("ErrorResponse", full.json())
        assert full.json()["error"]["code"] == "queue_full" and int(full.headers["retry-after"]) >= 1
        holder.join(120)
        waiter.join(120)
        assert lines[-1] == "data: [DONE]"


def test_a_runner_killed_mid_stream_is_contained(http: httpx.Client, client: openai.OpenAI) -> None:
    started, lines = threading.Event(), list[str]()
    stream = threading.Thread(target=_stream, args=(http, "batch", started, lines))
    stream.start()
    assert started.wait(180)
    victim = status(http)["batch"]["pid"]
    os.kill(victim, signal.SIGKILL)
    stream.join(60)
    events = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: {")]
    assert "error" in events[-1] and lines[-1] == "data: [DONE]", lines[-3:]
    validate("ErrorResponse", events[-1])
    assert events[-1]["error"]["code"] == "engine_unavailable"
    # The other service never noticed; the killed one loads again on its next request.
    assert client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Hi"}]).choices
    again = chat(http, "batch", max_tokens=3)
    assert again.status_code == 200, again.text
    now = status(http)["batch"]
    assert now["pid"] != victim and now["crashes"] == 1 and now["loads"] == 2


def test_unloading_returns_the_runner_memory(services_server: HearthServer, http: httpx.Client) -> None:
    runner = status(http)["batch"]
    assert runner["state"] == "loaded"
    tree_before = sum(psutil.Process(p).memory_info().rss for p in services_server.process_tree())
    assert chat(http, "batch", max_tokens=2, keep_alive=0).status_code == 200
    deadline = time.monotonic() + 15
    while status(http)["batch"]["state"] != "unloaded" and time.monotonic() < deadline:
        time.sleep(0.1)
    # "unloaded" is reported once the runner process has exited.
    assert status(http)["batch"]["state"] == "unloaded" and not psutil.pid_exists(runner["pid"])
    tree_after = sum(psutil.Process(p).memory_info().rss for p in services_server.process_tree())
    assert tree_before - tree_after >= 0.8 * runner["rss_bytes"], (tree_before, tree_after, runner)


def test_metrics_and_hearth_ps(services_server: HearthServer, http: httpx.Client) -> None:
    text = http.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("hearth_requests_total", endpoint="/v1/chat/completions", model="chat", status="200") >= 2
    assert value("hearth_requests_total", endpoint="/v1/chat/completions", model="batch", status="429") >= 1
    assert value("hearth_time_to_first_token_seconds_count", model="chat") >= 2
    assert value("hearth_time_per_output_token_seconds_count", model="batch") >= 1
    assert value("hearth_tokens_total", model="chat", direction="out") >= 8
    assert value("hearth_tokens_total", model="chat", direction="in") > 0
    assert value("hearth_model_loads_total", model="batch") == 2
    assert value("hearth_runner_crashes_total", model="batch") == 1
    assert value("hearth_model_memory_bytes", model="chat") > 50 * 2**20
    # The budget counts at least the estimate, whose KV cache the runner has not filled yet.
    assert value("hearth_model_reserved_bytes", model="chat") >= status(http)["chat"]["estimated_bytes"]
    assert value("hearth_model_loaded", model="batch") == 0
    assert value("hearth_scheduler_events_total", model="batch", event="rejected") >= 1
    assert value("hearth_requests_total", endpoint="unmatched", model="", status="404") >= 1
    assert value("hearth_requests_total", endpoint="unmatched", model="", status="405") >= 1
    assert not any(s[0] == "hearth_requests_total" and ("endpoint", "/v1/nowhere") in s[1] for s in samples)
    assert ("hearth_queue_depth", (("model", "chat"),)) in samples
    ps = subprocess.run(
        [str(HEARTH), "ps", "--port", str(services_server.port)], capture_output=True, text=True, timeout=30
    )
    assert ps.returncode == 0, ps.stderr
    rows = {line.split()[0]: line.split() for line in ps.stdout.splitlines()[1:-1]}
    assert rows["chat"][2] == "loaded" and rows["chat"][4] == str(status(http)["chat"]["pid"])
    assert rows["batch"][2] == "unloaded"
    log = Path(services_server.home / "logs" / "hearth.log").read_text().splitlines()
    entries = [json.loads(line) for line in log]
    assert any(e.get("request_id") == "trace-123" and e.get("status") == 200 for e in entries)
    assert any(e.get("request_id") == "lost-123" and e.get("status") == 404 for e in entries)
    # Lines logged while serving a request carry its id too: the load the first request caused.
    loads = [e for e in entries if e["logger"] == "server.serving.scheduler" and e["message"].startswith("loaded chat")]
    assert [e.get("request_id") for e in loads] == ["first-load"], loads
