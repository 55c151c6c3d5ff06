"""One real server for the Ollama API tests: the default chat model, all-MiniLM-L6-v2 as the
embedding model, and a local fake Hugging Face Hub to pull from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from tests.conftest import CLIENT_TIMEOUT_S, HearthServer, run_hearth
from tests.hub.fake_hub import FakeHub, FakeRepo, serve_hub

# A file the hub installs as a GGUF artifact (its header is all it reads before serving).
TINY_GGUF = b"GGUF" + bytes(256 * 1024)


@pytest.fixture(scope="session")
def fake_hub() -> Iterator[FakeHub]:
    """A fake Hub with one GGUF repo."""
    with serve_hub({"org/tiny-GGUF": FakeRepo(files={"tiny-Q8_0.gguf": TINY_GGUF, "README.md": b"hi"})}) as hub:
        yield hub


@pytest.fixture(scope="session")
def ollama_server(
    tmp_path_factory: pytest.TempPathFactory, embedding_model_path: Path, fake_hub: FakeHub
) -> Iterator[HearthServer]:
    """The server the Ollama tests share."""
    home = tmp_path_factory.mktemp("hearth-home-ollama")
    env = {"HF_ENDPOINT": fake_hub.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    with run_hearth(home, "--embedding-model-path", str(embedding_model_path), env=env) as server:
        yield server


@pytest.fixture(scope="session")
def client(ollama_server: HearthServer) -> ollama.Client:
    """The official Ollama client on the server."""
    return ollama.Client(host=ollama_server.base_url, timeout=CLIENT_TIMEOUT_S)


@pytest.fixture(scope="session")
def api(ollama_server: HearthServer) -> Iterator[httpx.Client]:
    """A raw client for what the Ollama client does not send (HEAD, bad bodies, extensions)."""
    with httpx.Client(base_url=f"{ollama_server.base_url}/api", timeout=CLIENT_TIMEOUT_S) as raw:
        yield raw
