"""The hub's job cancel, local path import and artifact verify over HTTP, against a real server
that pulls from a local fake Hub whose download the test holds in flight."""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.models import default_model_path
from tests.conftest import HearthServer, run_hearth
from tests.hub.fake_hub import FakeHub, FakeRepo, serve_hub

SLOW_REPO = "org/slow-GGUF"
SLOW_FILE = "slow-Q8_0.gguf"
# More than huggingface_hub's 10 MB read chunk, so one progress step arrives before the hold.
SLOW_BYTES = 12 * 1024 * 1024
HELD_AFTER = 11 * 1024 * 1024
DONE = ("succeeded", "failed", "cancelled")
MAX_IMPORT_FILES = 20


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[FakeHub]:
    files = {SLOW_FILE: b"GGUF" + bytes(SLOW_BYTES - 4)}
    with serve_hub({SLOW_REPO: FakeRepo(files=files)}) as hub:
        yield hub


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_hub: FakeHub) -> Iterator[HearthServer]:
    env = {"HF_ENDPOINT": fake_hub.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    home = tmp_path_factory.mktemp("hub-actions-home")
    with run_hearth(home, "--hub-max-import-files", str(MAX_IMPORT_FILES), env=env, preload=False) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: HearthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.base_url}/v1/hub", timeout=60) as client:
        yield client


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _wait(api: httpx.Client, job_id: str, until: Any = lambda job: job["status"] in DONE) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not get there: {api.get(f'/jobs/{job_id}').text}")


def _leftovers(server: HearthServer) -> list[str]:
    models = server.home / "models"
    return [
        str(p.relative_to(models))
        for folder in (".partial", ".downloads")
        if (models / folder).is_dir()
        for p in (models / folder).iterdir()
    ]


def test_cancel_a_running_pull_and_a_queued_one(server: HearthServer, api: httpx.Client, fake_hub: FakeHub) -> None:
    release = threading.Event()
    fake_hub.hold[SLOW_FILE] = (HELD_AFTER, release)
    try:
        running = api.post("/pull", json={"model": SLOW_REPO, "name": "slow"}).json()
        # Bytes have arrived: the download is in flight, held by the fake Hub.
        job = _wait(api, running["id"], lambda j: (j["progress"] or {}).get("done", 0) > 0)
        assert job["status"] == "running" and job["progress"]["total"] == SLOW_BYTES
        queued = api.post("/pull", json={"model": SLOW_REPO, "name": "slow-2"}).json()
        assert queued["status"] == "queued"

        cancelled = api.post(f"/jobs/{queued['id']}/cancel")
        assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
        answer = api.post(f"/jobs/{running['id']}/cancel")
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "cancelling"
    finally:
        release.set()
    final = _wait(api, running["id"])
    assert final["status"] == "cancelled" and final["error_code"] == "cancelled" and final["result"] is None
    assert _wait(api, queued["id"])["status"] == "cancelled"
    names = [m["name"] for m in api.get("/models").json()["data"]]
    assert "slow" not in names and "slow-2" not in names
    # Nothing half-written is left: no partial artifact, no download to resume.
    assert _leftovers(server) == []
    assert not (server.home / "models" / "slow").exists()

    error = _error(api.post(f"/jobs/{running['id']}/cancel"), 409)
    assert error["code"] == "job_finished"
    assert _error(api.post("/jobs/hubjob-nope/cancel"), 404)["code"] == "job_not_found"
    # A giant id is refused without being echoed back whole.
    giant = api.post("/jobs/" + "x" * 60_000 + "/cancel")
    assert _error(giant, 404)["code"] == "job_not_found" and len(giant.content) < 1000
    # The stream of a cancelled job ends with it.
    events = api.get(f"/jobs/{running['id']}/events").text
    assert '"type":"cancelled"' in events and events.rstrip().endswith("data: [DONE]")


def _hf_folder(root: Path) -> Path:
    """A minimal Hugging Face folder the importer recognises (config + one safetensors file)."""
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (root / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    return root


def test_import_a_local_file_and_folder_then_verify(server: HearthServer, api: httpx.Client, tmp_path: Path) -> None:
    gguf = default_model_path()
    job = api.post("/import", json={"path": str(gguf), "name": "local-smol"})
    assert job.status_code == 202, job.text
    assert job.json()["kind"] == "import"
    final = _wait(api, job.json()["id"])
    assert final["status"] == "succeeded", final
    manifest = final["result"]
    assert manifest["source"] == {"kind": "local", "ref": str(gguf.resolve()), "revision": None, "files": []}
    assert manifest["files"][0]["size"] == gguf.stat().st_size
    # The copy reported its bytes as a download does.
    assert final["progress"]["done"] == final["progress"]["total"] == gguf.stat().st_size

    folder = _hf_folder(tmp_path / "tiny-hf")
    final = _wait(api, api.post("/import", json={"path": str(folder)}).json()["id"])
    assert final["status"] == "succeeded", final
    assert final["result"]["name"] == "tiny-hf" and final["result"]["format"] == "hf"
    assert sorted(f["path"] for f in final["result"]["files"]) == ["config.json", "model.safetensors"]

    verified = api.post("/models/local-smol/verify")
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["ok"] is True and body["problems"] == [] and body["files"] == 1
    assert body["bytes"] == gguf.stat().st_size and body["object"] == "hub.verification"

    # One flipped byte in the artifact's file is found.
    stored = server.home / "models" / "local-smol" / manifest["files"][0]["path"]
    with stored.open("r+b") as f:
        f.seek(gguf.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    body = api.post("/models/local-smol/verify").json()
    assert body["ok"] is False and body["problems"] == [f"{manifest['files'][0]['path']}: sha256 differs"]
    # The listing keeps each artifact's latest verification.
    listed = api.get("/models").json()["verified"]
    assert [(v["name"], v["ok"]) for v in listed] == [("local-smol", False)]
    # A missing file too.
    (server.home / "models" / "tiny-hf" / "config.json").unlink()
    assert api.post("/models/tiny-hf/verify").json()["problems"] == ["config.json: missing"]

    assert _error(api.post("/models/nothing-here/verify"), 404)["code"] == "artifact_not_found"
    assert _error(api.post("/models/..bad/verify"), 400)["code"] == "invalid_name"
    for name in ("local-smol", "tiny-hf"):
        assert api.delete(f"/models/{name}").status_code == 200
    assert api.get("/models").json()["verified"] == []


def test_import_refuses_what_it_cannot_read(api: httpx.Client, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    outside = _hf_folder(tmp_path / "escapes")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"x")
    (outside / "extra.bin").symlink_to(secret)
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = _hf_folder(tmp_path / "broken-link")
    (broken / "gone.bin").symlink_to(broken / "nothing-there")
    crowded = _hf_folder(tmp_path / "crowded")
    for i in range(MAX_IMPORT_FILES):
        (crowded / f"extra-{i}.txt").write_text("x")
    cases = {
        "models/x.gguf": "relative path",
        str(tmp_path / "missing.gguf"): "does not exist",
        "/dev/null": "a device",
        str(fifo): "a FIFO",
        str(text): "",
        str(empty): "holds no model",
        str(outside): "outside the folder",
        str(broken): "cannot be read",
        str(crowded): f"more than {MAX_IMPORT_FILES} files",
        "/": "",
    }
    for path, says in cases.items():
        error = _error(api.post("/import", json={"path": path}), 400)
        assert error["param"] == "path" and error["code"] == "invalid_path", (path, error)
        assert says in error["message"], (path, error)
    assert _error(api.post("/import", json={"path": str(default_model_path()), "name": "../x"}), 400)["param"] == "name"
    assert _error(api.post("/import", json={}), 400)["type"] == "invalid_request_error"
    # Longer than PATH_MAX: refused at decoding, and the 3 MB path is not sent back.
    long_path = api.post("/import", json={"path": "/" + "a" * 3_000_000})
    assert _error(long_path, 400)["type"] == "invalid_request_error" and len(long_path.content) < 1000
    # None of them started a job.
    assert not any(j["kind"] == "import" and j["params"]["path"] in cases for j in api.get("/jobs").json()["data"])


def test_the_new_endpoints_are_in_the_openapi_document(server: HearthServer) -> None:
    paths = httpx.get(f"{server.base_url}/openapi.json").json()["paths"]
    assert "post" in paths["/v1/hub/jobs/{job_id}/cancel"]
    assert "post" in paths["/v1/hub/import"]
    assert "post" in paths["/v1/hub/models/{name}/verify"]


def test_with_keys_the_new_routes_need_an_admin_key(server: HearthServer, api: httpx.Client) -> None:
    """Last in the module: once a key exists every request needs one."""
    keys = f"{server.api_url}/keys"
    admin = httpx.post(keys, json={"name": "hub-admin", "scope": "admin"}, timeout=30).json()["key"]
    admin_header = {"authorization": f"Bearer {admin}"}
    inference = httpx.post(keys, json={"name": "app", "scope": "inference"}, headers=admin_header, timeout=30)
    inference_header = {"authorization": f"Bearer {inference.json()['key']}"}
    calls = [
        ("/import", {"path": str(default_model_path())}),
        ("/jobs/hubjob-nope/cancel", None),
        ("/models/nothing-here/verify", None),
    ]
    for path, body in calls:
        assert _error(api.post(path, json=body), 401)["code"] == "invalid_api_key"
        assert _error(api.post(path, json=body, headers=inference_header), 403)["type"] == "permission_error"
    assert _error(api.post("/models/nothing-here/verify", headers=admin_header), 404)["code"] == "artifact_not_found"
