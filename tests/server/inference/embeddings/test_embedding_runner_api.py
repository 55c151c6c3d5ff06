"""The embedding model is an ordinary scheduled model: preloaded when its path is given, listed in
/v1/status with its runner's pid, confined like every runner, unloaded after its keep-alive, and
loaded again by the next call."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HearthServer, run_hearth
from tests.server.conftest import EMBEDDING_MODEL

KEEP_ALIVE_S = 8


@pytest.fixture(scope="module")
def short_lived_server(tmp_path_factory: pytest.TempPathFactory, embedding_model_path: Path) -> Iterator[HearthServer]:
    """A server whose embedding model unloads `KEEP_ALIVE_S` seconds after its last call (the
    chat model started with it is kept loaded, as a server for one model keeps it)."""
    home = tmp_path_factory.mktemp("hearth-home-embedding-runner")
    with run_hearth(
        home, "--embedding-model-path", str(embedding_model_path), "--keep-alive-s", str(KEEP_ALIVE_S)
    ) as server:
        yield server


def _embedding_status(server: HearthServer) -> dict[str, Any]:
    response = httpx.get(f"{server.api_url}/status", timeout=30)
    assert response.status_code == 200, response.text
    (model,) = [m for m in response.json()["models"] if m["id"] == EMBEDDING_MODEL]
    return dict(model)


def _wait_for_state(server: HearthServer, state: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (model := _embedding_status(server))["state"] != state:
        assert time.monotonic() < deadline, f"{EMBEDDING_MODEL} is still {model['state']}, not {state}"
        time.sleep(0.25)
    return model


def _embed(server: HearthServer) -> httpx.Response:
    return httpx.post(
        f"{server.api_url}/embeddings", json={"model": EMBEDDING_MODEL, "input": ["a hearth fire"]}, timeout=60
    )


def test_embedding_model_is_scheduled_confined_and_unloads(short_lived_server: HearthServer) -> None:
    """Preloaded with a runner pid whose worker runs under seccomp; unloaded after its keep-alive;
    loaded again (a new runner) by the next /v1/embeddings call."""
    first = _embedding_status(short_lived_server)
    assert first["state"] == "loaded" and first["pid"] is not None, first
    assert first["keep_alive_seconds"] == KEEP_ALIVE_S and first["estimated_bytes"] > 0
    if sys.platform.startswith("linux"):
        proc_status = Path(f"/proc/{first['pid']}/status").read_text()
        assert "Seccomp:\t2" in proc_status

    unloaded = _wait_for_state(short_lived_server, "unloaded", KEEP_ALIVE_S + 30)
    assert unloaded["pid"] is None and unloaded["memory_bytes"] == 0
    if sys.platform.startswith("linux"):
        assert not Path(f"/proc/{first['pid']}").exists()  # the worker process has exited

    # A wrong `dimensions` is refused from the model's files, before the queue: nothing loads.
    refused = httpx.post(
        f"{short_lived_server.api_url}/embeddings",
        json={"model": EMBEDDING_MODEL, "input": "a hearth fire", "dimensions": 100},
        timeout=60,
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "dimensions"
    assert _embedding_status(short_lived_server)["state"] == "unloaded"

    response = _embed(short_lived_server)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"][0]["embedding"]) == 384
    again = _embedding_status(short_lived_server)
    assert again["state"] == "loaded" and again["loads"] == first["loads"] + 1
    assert again["pid"] is not None and again["pid"] != first["pid"]


def test_wrong_endpoint_names_the_right_one(short_lived_server: HearthServer) -> None:
    """The embedding model asked for chat, and the chat model asked for embeddings, get a 400
    saying which endpoint serves them; the embedding model is listed in /v1/models."""
    chat = httpx.post(
        f"{short_lived_server.api_url}/chat/completions",
        json={"model": EMBEDDING_MODEL, "messages": [{"role": "user", "content": "hi"}]},
        timeout=60,
    )
    assert chat.status_code == 400 and "/v1/embeddings" in chat.json()["error"]["message"]
    models = httpx.get(f"{short_lived_server.api_url}/models", timeout=30).json()["data"]
    chat_model = models[0]["id"]
    assert EMBEDDING_MODEL in [m["id"] for m in models]
    embed = httpx.post(
        f"{short_lived_server.api_url}/embeddings", json={"model": chat_model, "input": "hi"}, timeout=60
    )
    assert embed.status_code == 400 and "is a chat model" in embed.json()["error"]["message"]


def test_an_installed_embedding_model_answers_on_first_use(
    tmp_path_factory: pytest.TempPathFactory, minilm_home: Path
) -> None:
    """A server whose embedding model setting names nothing installed still serves every embedding
    artifact its store holds, as /v1/models lists them: loaded on first use, then scheduled."""
    home = tmp_path_factory.mktemp("hearth-home-installed-embeddings")
    (home / "models").symlink_to(minilm_home / "models", target_is_directory=True)
    with run_hearth(home, "--embedding-model", "not-installed") as server:
        listed = [m["id"] for m in httpx.get(f"{server.api_url}/models", timeout=30).json()["data"]]
        assert EMBEDDING_MODEL in listed
        statuses = httpx.get(f"{server.api_url}/status", timeout=30).json()["models"]
        assert EMBEDDING_MODEL not in [m["id"] for m in statuses]
        response = _embed(server)
        assert response.status_code == 200, response.text
        assert len(response.json()["data"][0]["embedding"]) == 384
        loaded = _embedding_status(server)
        assert loaded["state"] == "loaded" and loaded["pid"] is not None
