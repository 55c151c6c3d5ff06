"""/api/pull, /api/copy, /api/create (with /api/blobs) and /api/delete with the official client,
mapped onto the hub; pulls come from a local fake Hugging Face Hub."""

from __future__ import annotations

import ollama
import pytest

from hub.models import default_model_path
from tests.conftest import DEFAULT_MODEL, HearthServer


def _names(client: ollama.Client) -> list[str]:
    return [m.model or "" for m in client.list().models]


def test_pull_streams_progress_then_installs(client: ollama.Client, ollama_server: HearthServer) -> None:
    lines = list(client.pull("org/tiny-GGUF", stream=True))
    statuses = [line.status for line in lines]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    progress = [line for line in lines if line.total]
    assert progress, statuses
    assert all(0 <= (line.completed or 0) <= (line.total or 0) for line in progress)
    assert progress[-1].completed == progress[-1].total
    installed = next(s for s in statuses if s and s.startswith("installed "))
    name = installed.removeprefix("installed ")
    assert name in _names(client)
    assert client.pull("org/tiny-GGUF").status == "success"  # a second pull is not an error
    client.delete(name)
    assert name not in _names(client)
    assert not (ollama_server.home / "models" / name).exists()


def test_a_failed_pull_is_an_error(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError):
        list(client.pull("org/absent-GGUF", stream=True))
    with pytest.raises(ollama.ResponseError) as raised:
        client.pull("not a name")
    assert raised.value.status_code in (400, 404)


def test_copy_serves_the_same_model_under_a_new_name_and_delete_removes_it(client: ollama.Client) -> None:
    assert client.copy(DEFAULT_MODEL, "smol-copy").status == "success"
    assert "smol-copy" in _names(client)
    assert client.show("smol-copy").capabilities == client.show(DEFAULT_MODEL).capabilities
    answer = client.generate(model="smol-copy", prompt="Hi", options={"num_predict": 3}, keep_alive=0)
    assert answer.response and answer.eval_count == 3
    with pytest.raises(ollama.ResponseError) as raised:
        client.copy(DEFAULT_MODEL, "smol-copy")
    assert raised.value.status_code == 400
    assert client.delete("smol-copy").status == "success"
    assert "smol-copy" not in _names(client)
    with pytest.raises(ollama.ResponseError) as raised:
        client.delete("smol-copy")
    assert raised.value.status_code == 404


def test_a_served_model_cannot_be_deleted(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        client.delete(DEFAULT_MODEL)
    assert raised.value.status_code in (404, 409)


def test_create_from_an_uploaded_gguf_and_from_a_model(client: ollama.Client) -> None:
    digest = client.create_blob(default_model_path())
    for status in client.create(model="smol-blob", files={"smol.gguf": digest}, stream=True):
        last = status.status
    assert last == "success"
    assert client.show("smol-blob").details.family == "llama"  # type: ignore[union-attr]
    assert client.create(model="smol-alias", from_="smol-blob").status == "success"
    assert {"smol-blob", "smol-alias"} <= set(_names(client))
    with pytest.raises(ollama.ResponseError) as raised:
        client.create(model="smol-bad", files={"smol.gguf": "sha256:" + "0" * 64})
    assert raised.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as raised:
        client.create(model="smol-sys", from_="smol-blob", system="You are a pirate.")
    assert raised.value.status_code == 400
    client.delete("smol-alias")
    client.delete("smol-blob")
    assert not {"smol-blob", "smol-alias"} & set(_names(client))
