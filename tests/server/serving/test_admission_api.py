"""Admission end to end with the real default model: a model without a concurrency limit admits as
many requests as its engine batches (`--max-num-seqs 2` here) and the rest wait in Hearth's queue
(one place, `--max-queue 1`), so the overflow is a 429; and an installed hub artifact that the
server was not started with answers on first use, as /v1/models promises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.models import DEFAULT_MODEL_ID, default_model_path
from server.cli import main
from tests.conftest import HearthServer, run_hearth
from tests.openai_schema import validate

INSTALLED = "other-chat"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """The default model on an engine of two sequences, a queue of one, and a second model
    installed in the hub but not named on the command line."""
    home = tmp_path_factory.mktemp("hearth-admission")
    assert main(["import", str(default_model_path()), "--name", INSTALLED, "--home", str(home)]) == 0
    with run_hearth(home, "--max-num-seqs", "2", "--max-queue", "1", "--kv-cache-gb", "1") as running:
        yield running


@pytest.fixture(scope="module")
def http(server: HearthServer) -> Iterator[httpx.Client]:
    """Raw HTTP to the server."""
    with httpx.Client(base_url=server.base_url, timeout=180) as client:
        yield client


def status(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """GET /v1/status, by model id."""
    return {m["id"]: m for m in http.get("/v1/status").json()["models"]}


def until(condition: Any, within: float = 60.0) -> None:
    """Wait until `condition()` holds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def body(model: str, **extra: Any) -> dict[str, Any]:
    """A chat request for `model`."""
    return {"model": model, "messages": [{"role": "user", "content": "Tell a story."}], **extra}


def hold(server: HearthServer, started: threading.Event, stop: threading.Event, lines: list[str]) -> None:
    """Stream a long answer until `stop` is set, then hang up (the slot is freed by the disconnect)."""
    long = body(DEFAULT_MODEL_ID, stream=True, max_tokens=2000, ignore_eos=True, temperature=0)
    with (
        httpx.Client(base_url=server.base_url, timeout=180) as client,
        client.stream("POST", "/v1/chat/completions", json=long) as response,
    ):
        for line in response.iter_lines():
            if line:
                lines.append(line)
                started.set()
            if stop.is_set():
                return
    started.set()


def test_overflow_beyond_the_engine_batch_waits_in_the_queue_then_is_429(
    server: HearthServer, http: httpx.Client
) -> None:
    model = status(http)[DEFAULT_MODEL_ID]
    assert (model["slots"], model["active"], model["queued"]) == (2, 0, 0)
    stop = threading.Event()
    holders = []
    for _ in range(2):
        started, lines = threading.Event(), list[str]()
        thread = threading.Thread(target=hold, args=(server, started, stop, lines))
        thread.start()
        assert started.wait(180) and lines[0].startswith("data: "), lines
        holders.append(thread)
    queued: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: queued.append(http.post("/v1/chat/completions", json=body(DEFAULT_MODEL_ID, max_tokens=4)))
    )
    try:
        waiter.start()
        until(lambda: status(http)[DEFAULT_MODEL_ID]["queued"] == 1)
        assert status(http)[DEFAULT_MODEL_ID]["active"] == 2
        for _ in range(2):
            full = http.post("/v1/chat/completions", json=body(DEFAULT_MODEL_ID, stream=True, max_tokens=4))
            assert full.status_code == 429, full.text
            validate("ErrorResponse", full.json())
            assert full.json()["error"]["code"] == "queue_full" and int(full.headers["retry-after"]) >= 1
    finally:
        stop.set()
        for thread in holders:
            thread.join(120)
        waiter.join(180)
    # The queued request ran once a holder hung up.
    assert [r.status_code for r in queued] == [200], [r.text for r in queued]
    until(lambda: status(http)[DEFAULT_MODEL_ID]["active"] == 0)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(http.get("/metrics").text)
        for s in family.samples
    }
    assert samples[("hearth_model_slots", (("model", DEFAULT_MODEL_ID),))] == 2
    rejected = ("hearth_scheduler_events_total", (("event", "rejected"), ("model", DEFAULT_MODEL_ID)))
    assert samples[rejected] == 2


def test_an_installed_model_answers_on_first_use_and_is_scheduled(http: httpx.Client) -> None:
    listed = [m["id"] for m in http.get("/v1/models").json()["data"]]
    assert listed.count(INSTALLED) == 1 and DEFAULT_MODEL_ID in listed
    assert INSTALLED not in status(http)
    answer = http.post("/v1/chat/completions", json=body(INSTALLED, max_tokens=4, temperature=0))
    assert answer.status_code == 200, answer.text
    validate("CreateChatCompletionResponse", answer.json())
    assert answer.json()["model"] == INSTALLED
    runner = status(http)[INSTALLED]
    assert runner["state"] == "loaded" and runner["pid"] and runner["loads"] == 1
    # The server's keep-alive (300 s by default), not the start-up model's "forever".
    assert runner["keep_alive_seconds"] == 300 and runner["slots"] == 2
    assert status(http)[DEFAULT_MODEL_ID]["pid"] != runner["pid"]
    # Listed once still, now as a served model; a name not installed is still a 404.
    listed = [m["id"] for m in http.get("/v1/models").json()["data"]]
    assert listed.count(INSTALLED) == 1
    missing = http.post("/v1/chat/completions", json=body("not-installed", max_tokens=4))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    metrics = http.get("/metrics").text
    assert f'hearth_requests_total{{endpoint="/v1/chat/completions",model="{INSTALLED}",status="200"}}' in metrics


def test_an_installed_model_can_be_removed_once_it_is_idle(http: httpx.Client) -> None:
    """Loaded, its artifact is in use (409); unloaded, it is let go and removed, and is a 404 after."""
    answer = http.post("/v1/chat/completions", json=body(INSTALLED, max_tokens=2, keep_alive="10m"))
    assert answer.status_code == 200, answer.text
    busy = http.delete(f"/v1/hub/models/{INSTALLED}")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "model_in_use"
    # keep_alive 0: unloaded as soon as the call is over.
    answer = http.post("/v1/chat/completions", json=body(INSTALLED, max_tokens=2, keep_alive=0))
    assert answer.status_code == 200, answer.text
    until(lambda: status(http)[INSTALLED]["state"] == "unloaded")
    removed = http.delete(f"/v1/hub/models/{INSTALLED}")
    assert removed.status_code == 200, removed.text
    assert INSTALLED not in status(http)
    assert INSTALLED not in [m["id"] for m in http.get("/v1/models").json()["data"]]
    gone = http.post("/v1/chat/completions", json=body(INSTALLED, max_tokens=2))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"
