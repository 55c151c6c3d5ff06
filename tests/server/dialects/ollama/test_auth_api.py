"""Ollama's API behind Hearth's keys: the same bearer keys and scopes as OpenAI's, refusals in
Ollama's error shape, and the version probe public."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import ollama
import pytest

from server.security.auth import required_scope
from server.security.keys import KeyStore
from tests.conftest import DEFAULT_MODEL, HearthServer, run_hearth


@pytest.mark.parametrize(
    ("method", "path", "need"),
    [
        ("GET", "/api/version", "public"),
        ("HEAD", "/api/version", "public"),
        ("POST", "/api/chat", "inference"),
        ("POST", "/api/generate", "inference"),
        ("POST", "/api/embed", "inference"),
        ("POST", "/api/embeddings", "inference"),
        ("POST", "/api/show", "inference"),
        ("GET", "/api/tags", "inference"),
        ("GET", "/api/ps", "inference"),
        ("POST", "/api/pull", "admin"),
        ("DELETE", "/api/delete", "admin"),
        ("POST", "/api/copy", "admin"),
        ("POST", "/api/create", "admin"),
        ("POST", "/api/blobs/sha256:00", "admin"),
        ("GET", "/api/chat", "admin"),
    ],
)
def test_scopes_of_the_ollama_endpoints(method: str, path: str, need: str) -> None:
    assert required_scope(method, path) == need


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HearthServer, str]]:
    home = tmp_path_factory.mktemp("hearth-ollama-keyed")
    inference, _ = KeyStore(home / "keys.json").create("app", "inference")
    with run_hearth(home, "--context-length", "128") as server:
        yield server, inference


def test_keys_and_scopes_apply_with_ollamas_error_shape(keyed: tuple[HearthServer, str]) -> None:
    server, key = keyed
    assert httpx.get(f"{server.base_url}/api/version").status_code == 200
    anonymous = ollama.Client(host=server.base_url)
    with pytest.raises(ollama.ResponseError) as raised:
        anonymous.list()
    assert raised.value.status_code == 401 and isinstance(raised.value.error, str)
    client = ollama.Client(host=server.base_url, headers={"Authorization": f"Bearer {key}"})
    assert DEFAULT_MODEL in [m.model for m in client.list().models]
    answer = client.generate(model=DEFAULT_MODEL, prompt="Hi", options={"num_predict": 2})
    assert answer.done and answer.eval_count == 2
    with pytest.raises(ollama.ResponseError) as raised:
        client.copy(DEFAULT_MODEL, "not-allowed")
    assert raised.value.status_code == 403 and "may not" in raised.value.error
