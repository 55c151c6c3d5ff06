"""Fixtures of the embeddings and rerank tests: the packaged all-MiniLM-L6-v2 as OpenVINO IR, and a
server that serves it beside the default chat model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from hub.store import ArtifactStore
from tests.conftest import HearthServer, run_hearth

EMBEDDING_MODEL = "all-minilm-l6-v2"


@pytest.fixture(scope="session")
def embedding_model_path(minilm_home: Path) -> Path:
    """all-MiniLM-L6-v2 as OpenVINO IR, as the hub installed it (shared with tests/hub)."""
    return ArtifactStore(minilm_home / "models").entry_path(EMBEDDING_MODEL)


@pytest.fixture(scope="session")
def embedding_server(tmp_path_factory: pytest.TempPathFactory, embedding_model_path: Path) -> Iterator[HearthServer]:
    """A server with the default chat model and all-MiniLM-L6-v2 as its embedding model."""
    home = tmp_path_factory.mktemp("hearth-home-embeddings")
    with run_hearth(home, "--embedding-model-path", str(embedding_model_path)) as server:
        yield server


@pytest.fixture(scope="session")
def embedding_client(embedding_server: HearthServer) -> Iterator[openai.OpenAI]:
    """The official OpenAI client on the embedding server (no retries)."""
    with embedding_server.openai_client() as client:
        yield client
