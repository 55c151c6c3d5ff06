"""/api/version, /api/tags, /api/show, /api/ps and Ollama's error shape, with the official client."""

from __future__ import annotations

import httpx
import ollama
import pytest

from tests.conftest import DEFAULT_MODEL, HearthServer
from tests.server.conftest import EMBEDDING_MODEL


def test_version_answers_get_and_the_head_probe(api: httpx.Client) -> None:
    version = api.get("/version")
    assert version.status_code == 200 and version.headers["content-type"].startswith("application/json")
    major, minor, *_ = version.json()["version"].split(".")
    assert (int(major), int(minor)) >= (0, 6)
    probe = api.head("/version")
    assert probe.status_code == 200 and probe.content == b""


def test_tags_list_the_chat_and_embedding_models(client: ollama.Client) -> None:
    models = {m.model: m for m in client.list().models}
    assert DEFAULT_MODEL in models and EMBEDDING_MODEL in models
    chat = models[DEFAULT_MODEL]
    assert chat.details is not None and chat.details.format == "gguf" and chat.details.family == "llama"
    assert chat.size is not None and chat.size > 10_000_000
    assert chat.digest is not None and len(chat.digest) == 64
    assert chat.modified_at is not None
    embedding = models[EMBEDDING_MODEL].details
    assert embedding is not None and embedding.format == "openvino"


def test_show_has_model_info_context_length_and_capabilities(
    client: ollama.Client, ollama_server: HearthServer
) -> None:
    shown = client.show(f"{DEFAULT_MODEL}:latest")
    assert shown.capabilities is not None and {"completion", "tools"} <= set(shown.capabilities)
    assert "embedding" not in shown.capabilities
    info = shown.modelinfo or {}
    arch = info["general.architecture"]
    served = httpx.get(f"{ollama_server.api_url}/models/{DEFAULT_MODEL}").json()["context_length"]
    assert info[f"{arch}.context_length"] == served
    assert "{{" in (shown.template or "") or "{%" in (shown.template or "")
    assert shown.parameters is not None and "temperature" in shown.parameters
    assert shown.details is not None and shown.details.parameter_size == "135M"
    embedding = client.show(EMBEDDING_MODEL)
    assert embedding.capabilities == ["embedding"]


def test_ps_lists_a_loaded_model_with_its_context(client: ollama.Client) -> None:
    client.generate(model=DEFAULT_MODEL, prompt="Hi", options={"num_predict": 2})
    running = {m.model: m for m in client.ps().models}
    assert DEFAULT_MODEL in running
    line = running[DEFAULT_MODEL]
    assert line.size is not None and line.size > 0 and line.size_vram == 0
    assert line.context_length is not None and line.context_length > 0
    assert line.expires_at is not None


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda c: c.show("no-such-model"), "show"),
        (lambda c: c.chat(model="no-such-model", messages=[{"role": "user", "content": "x"}]), "chat"),
        (lambda c: c.generate(model="no-such-model", prompt="x", stream=False), "generate"),
        (lambda c: c.embed(model="no-such-model", input="x"), "embed"),
        (lambda c: c.delete("no-such-model"), "delete"),
    ],
)
def test_unknown_models_are_404_in_ollamas_shape(client: ollama.Client, call: object, name: str) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        call(client)  # type: ignore[operator]
    assert raised.value.status_code == 404, name
    assert "no-such-model" in raised.value.error and "not found" in raised.value.error


ASK = [{"role": "user", "content": "x"}]


def test_bad_requests_are_400_with_an_error_string(api: httpx.Client) -> None:
    bodies = [
        ("/chat", b"{not json"),
        ("/chat", {"model": DEFAULT_MODEL, "messages": "hello"}),
        (
            "/chat",
            {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "x"}], "options": {"temperature": -1}},
        ),
        ("/chat", {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}),
        ("/chat", {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "x"}], "format": {"type": "nope"}}),
        ("/chat", {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "x"}], "keep_alive": "soon"}),
        ("/generate", {"model": DEFAULT_MODEL, "prompt": "x", "template": "{{ .Prompt }}"}),
        ("/generate", {"model": DEFAULT_MODEL, "prompt": "x", "images": ["aGk="]}),
        ("/embed", {"model": EMBEDDING_MODEL, "input": []}),
        ("/embed", {"model": DEFAULT_MODEL, "input": "a chat model does not embed"}),
        ("/show", {}),
        ("/copy", {"source": DEFAULT_MODEL, "destination": "../escape"}),
    ]
    for path, body in bodies:
        response = api.post(path, content=body) if isinstance(body, bytes) else api.post(path, json=body)
        assert response.status_code == 400, (path, body, response.text)
        error = response.json()
        assert set(error) == {"error"} and isinstance(error["error"], str) and error["error"], (path, body)
