"""The /v1/hub API against a real server that serves an installed artifact by name, pulling from a
local fake Hub; and GET /v1/models listing installed artifacts."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from hub.models import default_model_path
from server.cli import main
from tests.conftest import HearthServer, parse_sse, run_hearth
from tests.hub.fake_hub import DEFAULT_SHA, FakeHub, FakeRepo, serve_hub

SERVED = "tiny-chat"
GGUF = b"GGUF" + bytes(4096)


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[FakeHub]:
    with serve_hub({"org/tiny-GGUF": FakeRepo(files={"tiny-Q8_0.gguf": GGUF, "README.md": b"hi"})}) as hub:
        yield hub


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_hub: FakeHub) -> Iterator[HearthServer]:
    home = tmp_path_factory.mktemp("hub-api-home")
    assert main(["import", str(default_model_path()), "--name", SERVED, "--home", str(home)]) == 0
    env = {"HF_ENDPOINT": fake_hub.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    with run_hearth(home, "--model", SERVED, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: HearthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.base_url}/v1/hub", timeout=60) as client:
        yield client


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def _wait(api: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_an_installed_artifact_is_served_by_name(server: HearthServer) -> None:
    with openai.OpenAI(base_url=server.api_url, api_key="unused", max_retries=0) as client:
        ids = [m.id for m in client.models.list().data]
        assert ids[0] == SERVED
        answer = client.chat.completions.create(
            model=SERVED, messages=[{"role": "user", "content": "Say hello"}], max_tokens=8, temperature=0
        )
        assert answer.choices[0].message.content


def test_pull_is_a_job_with_progress_and_the_artifact_is_listed(server: HearthServer, api: httpx.Client) -> None:
    response = api.post("/pull", json={"model": "org/tiny-GGUF", "name": "pulled"})
    assert response.status_code == 202
    job = response.json()
    assert job["object"] == "hub.job" and job["kind"] == "pull" and job["status"] in ("queued", "running", "succeeded")
    raw = api.get(f"/jobs/{job['id']}/events").text
    events = parse_sse(raw)
    assert any(e.get("type") == "progress" and e["done"] == len(GGUF) for e in events)
    final = events[-1]
    assert final["status"] == "succeeded" and final["result"]["name"] == "pulled"
    assert final["result"]["source"] == {
        "kind": "huggingface",
        "ref": "org/tiny-GGUF",
        "revision": DEFAULT_SHA,
        "files": ["tiny-Q8_0.gguf"],
    }
    assert [e["seq"] for e in events[:-1]] == sorted(e["seq"] for e in events[:-1])

    names = [m["name"] for m in api.get("/models").json()["data"]]
    assert names == ["pulled", SERVED]
    shown = api.get("/models/pulled").json()
    assert shown["files"][0]["size"] == len(GGUF) and shown["format"] == "gguf"
    model_ids = [m["id"] for m in httpx.get(f"{server.api_url}/models").json()["data"]]
    assert model_ids == [SERVED, "pulled"]
    assert httpx.get(f"{server.api_url}/models/pulled").json()["id"] == "pulled"

    deleted = api.delete("/models/pulled")
    assert deleted.status_code == 200 and deleted.json() == {"id": "pulled", "deleted": True, "object": "model"}
    assert [m["name"] for m in api.get("/models").json()["data"]] == [SERVED]
    assert not (server.home / "models" / "pulled").exists()


def test_failed_pulls_are_failed_jobs_with_a_reason(api: httpx.Client) -> None:
    job = api.post("/pull", json={"model": "org/absent", "format": "gguf"}).json()
    final = _wait(api, job["id"])
    assert final["status"] == "failed" and final["error_code"] == "repo_not_found"
    assert "'org/absent' was not found" in final["error"]
    job = api.post("/pull", json={"model": "org/tiny-GGUF", "revision": "v9", "name": "x"}).json()
    assert _wait(api, job["id"])["error_code"] == "revision_not_found"
    assert [j["id"] for j in api.get("/jobs").json()["data"]][-1] == job["id"]


def test_bad_requests_get_the_error_shape(api: httpx.Client) -> None:
    assert _error(api.post("/pull", json={"model": "no-such-alias"}), 400)["param"] == "model"
    assert _error(api.post("/pull", json={"model": "org/x", "name": "../up"}), 400)["code"] == "invalid_name"
    assert _error(api.post("/pull", json={"model": "org/x", "format": "exe"}), 400)["param"] == "format"
    assert _error(api.get("/models/nothing"), 404)["code"] == "artifact_not_found"
    assert _error(api.delete("/models/nothing"), 404)["code"] == "artifact_not_found"
    assert _error(api.delete("/models/.hidden"), 400)["code"] == "invalid_name"
    assert _error(api.delete(f"/models/{SERVED}"), 409)["code"] == "model_in_use"
    assert _error(api.get("/jobs/hubjob-nope"), 404)["code"] == "job_not_found"
    assert _error(api.post("/convert", json={"model": "nothing", "format": "onnx", "precision": "int4"}), 404)
    assert _error(api.post("/upload?filename=evil.exe", content=b"x"), 400)["param"] == "filename"
    assert _error(api.post("/upload?filename=..%2Fx.gguf", content=b"x"), 400)["param"] == "filename"
    assert _error(api.post("/upload?filename=empty.gguf", content=b""), 400)


def test_upload_of_a_gguf_and_of_an_archive(server: HearthServer, api: httpx.Client) -> None:
    data = default_model_path().read_bytes()
    job = api.post("/upload", params={"filename": "My-Model.Q4_1.gguf", "name": "uploaded"}, content=data).json()
    final = _wait(api, job["id"])
    assert final["status"] == "succeeded", final
    assert final["result"]["source"]["kind"] == "upload" and final["result"]["files"][0]["size"] == len(data)
    assert api.delete("/models/uploaded").status_code == 200

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as archive:
        info = tarfile.TarInfo("../../outside.gguf")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"GGUF"))
    job = api.post("/upload", params={"filename": "evil.tar.gz"}, content=evil.getvalue()).json()
    final = _wait(api, job["id"])
    assert final["status"] == "failed" and "unsafe archive entry" in final["error"]
    assert not (server.home / "outside.gguf").exists() and not (server.home / "models" / "outside.gguf").exists()
    assert not any((server.home / "models" / ".partial").iterdir())


def test_catalog_over_http(api: httpx.Client) -> None:
    body = api.get("/catalog").json()
    assert "cpu" in body["targets"] and len(body["data"]) >= 20
    default = next(item for item in body["data"] if item["entry"]["name"] == "smollm2-135m-instruct")
    assert default["suitable"][0]["format"] == "gguf"
    assert json.dumps(body)
