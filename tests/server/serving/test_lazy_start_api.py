"""A server started with `--no-preload-model` answers at once with nothing loaded and no helper
processes, loads the default model on its first request (and keeps to the server's keep-alive
then), and starts the workflow job processes only with the first job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import DEFAULT_MODEL, HearthServer, run_hearth
from tests.server.workflows.conftest import EXAMPLES


@pytest.fixture(scope="module")
def lazy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """The default model, not preloaded, with a keep-alive of 2 s."""
    with run_hearth(tmp_path_factory.mktemp("lazy"), "--keep-alive-s", "2", preload=False) as server:
        yield server


def _model(http: httpx.Client) -> dict[str, Any]:
    (model,) = [m for m in http.get("/v1/status").json()["models"] if m["id"] == DEFAULT_MODEL]
    assert isinstance(model, dict)
    return model


def _children(server: HearthServer) -> list[str]:
    return [" ".join(p.cmdline()) for p in psutil.Process(server.process.pid).children(recursive=True)]


def test_nothing_loads_until_the_first_request_then_the_keep_alive_applies(lazy_server: HearthServer) -> None:
    with httpx.Client(base_url=lazy_server.base_url, timeout=180) as http:
        health = http.get("/health")
        assert health.status_code == 200, health.text
        assert _model(http)["state"] == "unloaded"
        # Neither an engine worker nor the workflow job processes run yet.
        assert _children(lazy_server) == []

        answer = http.post(
            "/v1/chat/completions",
            json={"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        )
        assert answer.status_code == 200, answer.text
        loaded = _model(http)
        assert loaded["state"] == "loaded" and loaded["loads"] == 1
        assert any("adapters.worker_main" in c for c in _children(lazy_server))

        # Not the implicit keep-forever of a preloaded model: the server's keep-alive (2 s).
        deadline = time.monotonic() + 30
        while _model(http)["state"] != "unloaded":
            assert time.monotonic() < deadline, "the model was never unloaded after its keep-alive"
            time.sleep(0.5)


def test_the_job_processes_start_with_the_first_job(lazy_server: HearthServer) -> None:
    assert not any("job_worker" in c for c in _children(lazy_server))
    definition = (EXAMPLES / "summarize-translate.yaml").read_text()
    with httpx.Client(base_url=lazy_server.base_url, timeout=60) as http:
        stored = http.post("/v1/workflows", content=definition, headers={"Content-Type": "application/yaml"})
    assert stored.status_code == 201, stored.text  # checked in a job process
    assert any("job_worker" in c for c in _children(lazy_server))
